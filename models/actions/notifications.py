"""A user's dashboard notifications: list, read state, unread count, replay since an id; and their
one representation, NotificationSchema, which the REST API (handlers/notifications.py), the websocket's
replay and the pipeline's pushes (workers/delivery.py) all dump with."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import peewee
from marshmallow import Schema, fields
from peewee import fn

from models.foundation.clock import EXAMPLE_BOOKING_DATE, utcnow
from models.foundation.errors import NotAuthenticated, NotFound

from ..notifications import Notification
from ..users import User
from .sessions import SessionKey, live_web_sessions, refusal_at_version

REPLAY_LIMIT = 500

# What serviceman #3 is told when request #1 is assigned to him (workers/notification_types.py).
EXAMPLE_ASSIGNED = {
    "serviceman_ids": [3, 4],
    "primary_serviceman_id": 3,
    "backup_serviceman_id": 4,
    "primary_name": "Emeka Okafor",
    "backup_name": "Tunde Adebayo",
    "service_request_id": 1,
    "is_emergency": False,
}


class NotificationSchema(Schema):
    id = fields.Integer(metadata={"example": 305})
    notification_type = fields.String(metadata={"example": "serviceman_assigned"})
    title = fields.String(
        metadata={"example": f"Booking #1: you are assigned to a Plumbing job on {EXAMPLE_BOOKING_DATE}"}
    )
    message = fields.String(
        metadata={
            "example": (
                "Client: Ada Obi, +234 800 000 0001. Address: 14 Admiralty Way, Lekki Phase 1, Lagos. Booking date: "
                f"{EXAMPLE_BOOKING_DATE}. The job: Kitchen sink pipe leaking under the cabinet. "
                "Primary: Emeka Okafor; backup: Tunde Adebayo."
            )
        }
    )
    service_request_id = fields.Integer(allow_none=True, metadata={"example": 1})
    payload = fields.Dict(metadata={"example": EXAMPLE_ASSIGNED})
    is_read = fields.Boolean(metadata={"example": False})
    sent_to_email = fields.Boolean(metadata={"example": True})
    email_sent_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


_schema = NotificationSchema()  # one instance: building a marshmallow schema costs more than dumping with it


def notification_message(notification: Notification) -> dict[str, Any]:
    """The websocket push of a notification: {"type": "notification", "notification": as the REST API shows it}."""
    return {"type": "notification", "notification": _schema.dump(notification)}


def own(user: User) -> peewee.ModelSelect[Notification]:
    return Notification.select().where(Notification.user == user.id)


def list_notifications(user: User, is_read: bool | None = None) -> peewee.ModelSelect[Notification]:
    query = own(user)
    if is_read is not None:
        query = query.where(Notification.is_read == is_read)
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def unread_count(user: User) -> int:
    return unread_count_for(user.id)


def unread_count_for(user_id: int) -> int:
    return Notification.select().where(Notification.user == user_id, Notification.is_read == False).count()


def mark_read(user: User, notification_id: int) -> Notification:
    notification = own(user).where(Notification.id == notification_id).first()
    if notification is None:
        raise NotFound("No such notification.")
    if not notification.is_read:  # read_at stays the moment it first became read (sync reports it once)
        notification.read_at = utcnow()
        Notification.update(is_read=True, read_at=notification.read_at).where(
            Notification.id == notification.id, Notification.is_read == False
        ).execute()
    notification.is_read = True
    return notification


def mark_all_read(user: User) -> int:
    return (
        Notification.update(is_read=True, read_at=utcnow())
        .where(Notification.user == user.id, Notification.is_read == False)
        .execute()
    )


def notifications_since(user_id: int, since_id: int, limit: int = REPLAY_LIMIT) -> list[Notification]:
    """What a reconnecting socket missed, oldest first."""
    return list(
        Notification.select()
        .where(Notification.user == user_id, Notification.id > since_id)
        .order_by(Notification.id)
        .limit(limit)
    )


def active_users_with_unread(keys: Collection[SessionKey]) -> dict[SessionKey, NotAuthenticated | tuple[Any, int]]:
    """For sockets' "ready": {(user id, session version, web session or None): (user, unread count)
    or the NotAuthenticated `user_at_version` would raise}, for many keys in one query (two with
    dashboard sessions among them; handlers/web/coalesce.py).
    Only the columns a socket keeps are read (it holds its user for as long as it is open)."""
    unread = Notification.select(fn.COUNT(Notification.id)).where(
        Notification.user == User.id, Notification.is_read == False
    )
    # Partial rows with the `unread` count as an extra attribute.
    users: dict[int, Any] = {
        user.id: user
        for user in User.select(User.id, User.is_active, User.session_version, unread.alias("unread")).where(
            User.id.in_({key[0] for key in keys})
        )
    }
    live = live_web_sessions(keys)
    answers: dict[SessionKey, NotAuthenticated | tuple[Any, int]] = {}
    for key in keys:
        user: Any = users.get(key[0])  # None: refusal_at_version refuses it
        answers[key] = refusal_at_version(user, key[1], key[2], live) or (user, user.unread)
    return answers
