"""A user's dashboard notifications: list, read state, unread count, replay since an id."""
from peewee import fn

from models.foundation.clock import utcnow
from models.foundation.errors import NotFound

from ..notifications import Notification
from ..users import User
from .sessions import live_web_sessions, refusal_at_version

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
    if not notification.is_read:  # read_at stays the moment it first became read (sync reports it once)
        notification.read_at = utcnow()
        Notification.update(is_read=True, read_at=notification.read_at).where(
            Notification.id == notification.id, Notification.is_read == False).execute()  # noqa: E712
    notification.is_read = True
    return notification


def mark_all_read(user):
    return Notification.update(is_read=True, read_at=utcnow()).where(
        Notification.user == user.id, Notification.is_read == False).execute()  # noqa: E712


def notifications_since(user_id, since_id, limit=REPLAY_LIMIT):
    """What a reconnecting socket missed, oldest first."""
    return list(Notification.select().where(Notification.user == user_id, Notification.id > since_id)
                .order_by(Notification.id).limit(limit))


def active_users_with_unread(keys):
    """For sockets' "ready": {(user id, session version, web session or None): (user, unread count)
    or the NotAuthenticated `user_at_version` would raise}, for many keys in one query (two with
    dashboard sessions among them; handlers/web/coalesce.py).
    Only the columns a socket keeps are read (it holds its user for as long as it is open)."""
    unread = Notification.select(fn.COUNT(Notification.id)).where(
        Notification.user == User.id, Notification.is_read == False)  # noqa: E712
    users = {user.id: user for user in User.select(
        User.id, User.is_active, User.session_version, unread.alias("unread")).where(
        User.id.in_({key[0] for key in keys}))}
    live = live_web_sessions(keys)
    answers = {}
    for key in keys:
        user = users.get(key[0])
        answers[key] = refusal_at_version(user, key[1], key[2], live) or (user, user.unread)
    return answers
