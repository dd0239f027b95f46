"""Dashboard notifications: one row per (event, recipient), so a replayed event creates nothing twice.

Each row also records its delivery, so the database (not a queue) knows what is left to do:
- the push: `pushed_at` once published to the user's sockets; `push_claimed_until` is the lease of
  whoever is pushing it (a retry or the sweep pushes only rows unpushed and unclaimed);
- the email: `sent_to_email`/`email_sent_at` once the SMTP server accepted it; `email_claimed_until`
  is the lease of whoever is sending it (two senders never send one email), `email_attempts` counts
  the claims, and `email_redrive_after` is when the sweep may queue it again (after it queued it, or
  after a failed attempt: the sweep's backoff).
Partial indexes keep the sweep's questions ("what is left?") a scan of only the rows left to do.
"""

from typing import TYPE_CHECKING

import peewee

from .base import JSONField, TimestampedModel, UTCDateTimeField
from .service_requests import Event, ServiceRequest
from .users import User


class Notification(TimestampedModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        user_id: int
        event_id: int | None
        service_request_id: int | None

    user = peewee.ForeignKeyField(User, backref="notifications", on_delete="CASCADE")
    event = peewee.ForeignKeyField(Event, null=True, backref="notifications")
    notification_type = peewee.CharField(max_length=40)
    title = peewee.CharField(max_length=200)
    message = peewee.TextField()
    service_request = peewee.ForeignKeyField(ServiceRequest, null=True, backref="notifications")
    payload = JSONField(default=dict)
    is_read = peewee.BooleanField(default=False)
    sent_to_email = peewee.BooleanField(default=False)
    email_sent_at = UTCDateTimeField(null=True)
    pushed_at = UTCDateTimeField(null=True)
    push_claimed_until = UTCDateTimeField(null=True)
    email_claimed_until = UTCDateTimeField(null=True)
    email_attempts = peewee.IntegerField(default=0)
    email_redrive_after = UTCDateTimeField(null=True)
    read_at = UTCDateTimeField(null=True)  # when it became read (GET /api/sync/ tells the other devices)

    class Meta:
        indexes = (
            (("event", "user"), True),
            (("user", "is_read"), False),
            (("user", "created_at", "id"), False),  # the list, newest first
            (("user", "read_at"), False),  # sync: which became read since a cursor (migration 016)
        )


# The sweep's indexes (migration 014): only rows whose push or email is still to do are in them.
Notification.add_index(
    Notification.index(Notification.created_at, name="notification_unpushed").where(Notification.pushed_at.is_null())
)
Notification.add_index(
    Notification.index(Notification.created_at, name="notification_email_unsent").where(
        Notification.sent_to_email == False
    )
)
