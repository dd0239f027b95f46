"""Dashboard notifications: one row per (event, recipient), so a replayed event creates nothing twice."""
import peewee

from .base import JSONField, TimestampedModel, UTCDateTimeField
from .service_requests import Event, ServiceRequest
from .users import User


class Notification(TimestampedModel):
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

    class Meta:
        indexes = (
            (("event", "user"), True),
            (("user", "is_read"), False),
            (("user", "created_at", "id"), False),  # the list, newest first
        )
