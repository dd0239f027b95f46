"""A user's dashboard notifications: list, read state, unread count, replay since an id."""
from peewee import fn

from server.errors import NotAuthenticated, NotFound

from ..notifications import Notification
from ..users import User

REPLAY_LIMIT = 500


def own(user):
    return Notification.select().where(Notification.user == user.id)


def list_notifications(user, is_read=None):
    query = own(user)
    if is_read is not None:
        query = query.where(Notification.is_read == is_read)
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def unread_count(user):
    return unread_count_for(user.id)


def unread_count_for(user_id):
    return Notification.select().where(Notification.user == user_id, Notification.is_read == False).count()  # noqa: E712


def mark_read(user, notification_id):
    notification = own(user).where(Notification.id == notification_id).first()
    if notification is None:
        raise NotFound("No such notification.")
    Notification.update(is_read=True).where(Notification.id == notification.id).execute()
    notification.is_read = True
    return notification


def mark_all_read(user):
    return Notification.update(is_read=True).where(
        Notification.user == user.id, Notification.is_read == False).execute()  # noqa: E712


def notifications_since(user_id, since_id, limit=REPLAY_LIMIT):
    """What a reconnecting socket missed, oldest first."""
    return list(Notification.select().where(Notification.user == user_id, Notification.id > since_id)
                .order_by(Notification.id).limit(limit))


def active_user_with_unread(user_id, session_version):
    """(user, unread count) in one query, for a socket's "ready"; refuses as `user_at_version` does."""
    unread = Notification.select(fn.COUNT(Notification.id)).where(
        Notification.user == User.id, Notification.is_read == False)  # noqa: E712
    user = User.select(User, unread.alias("unread")).where(User.id == user_id).first()
    if user is None or not user.is_active:
        raise NotAuthenticated("This account does not exist or is deactivated.")
    if session_version != user.session_version:
        raise NotAuthenticated("This session has ended; sign in again.", code="session_ended")
    return user, user.unread
