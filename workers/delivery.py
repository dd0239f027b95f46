"""The delivery stages, as RQ jobs: an event becomes notifications, a notification an email.

Both are idempotent. deliver_event inserts one Notification per (event, recipient) with a unique
index, so a replayed event creates nothing twice; send_email returns early once sent_to_email is set.
"""
import logging

from models.actions.notifications import unread_count_for
from models.db import database
from models.notifications import Notification
from models.service_requests import Event
from server.clock import utcnow

from . import runtime
from .email import send_notification_email
from .notification_types import NOTIFICATION_TYPES, recipients, render

log = logging.getLogger("serviceman.delivery")


def notification_message(notification):
    """The websocket/REST representation of a notification."""
    from handlers.schemas.notifications import NotificationSchema

    return {"type": "notification", "notification": NotificationSchema().dump(notification)}


def push_unread_count(user_id):
    """Tell the user's sockets their unread count (after a delivery or a change of read state)."""
    transport = runtime.transport()
    if transport is not None:
        transport.push(user_id, {"type": "unread_count", "count": unread_count_for(user_id)})


def deliver_event(event_id):
    """Create the event's notifications, push the new ones, and queue an email for each unsent one."""
    event = Event.get_or_none(Event.id == event_id)
    kind = NOTIFICATION_TYPES.get(event.type) if event else None
    if kind is None:
        return []
    # Account events (serviceman vetting) concern no request.
    request = event.service_request if event.service_request_id else None
    request_id = request.id if request else None
    title, message, values = render(kind, event, request)
    user_ids = recipients(kind, event, request)
    if not user_ids:
        return []
    payload = {**(event.payload or {}), "service_request_id": request_id, "is_emergency": values["is_emergency"]}
    with database.atomic():
        existing = {n.user_id for n in Notification.select(Notification.user).where(Notification.event == event.id)}
        rows = [{"user": uid, "event": event.id, "notification_type": kind.name, "title": title, "message": message,
                 "service_request": request_id, "payload": payload} for uid in user_ids if uid not in existing]
        if rows:
            Notification.insert_many(rows).on_conflict_ignore().execute()
    created = list(Notification.select().where(Notification.event == event.id,
                                               Notification.user.in_([r["user"] for r in rows])))
    transport = runtime.transport()
    for notification in created:
        transport.push(notification.user_id, notification_message(notification))
        push_unread_count(notification.user_id)
    # Every unsent email is (re)queued, so a job that died after inserting rows loses none.
    for notification in Notification.select(Notification.id).where(
            Notification.event == event.id, Notification.sent_to_email == False):  # noqa: E712
        transport.enqueue(send_email, notification.id, job_id=f"email-{notification.id}")
    return [n.id for n in created]


def send_email(notification_id):
    """Send one notification's email; marked sent only after the SMTP server accepted it."""
    notification = Notification.get_or_none(Notification.id == notification_id)
    if notification is None or notification.sent_to_email:
        return False
    channel = send_notification_email(runtime.settings(), notification)
    Notification.update(sent_to_email=True, email_sent_at=utcnow()).where(
        Notification.id == notification_id).execute()
    log.info("email for notification %s %s user %s", notification_id,
             "sent to" if channel == "smtp" else "written to the log for", notification.user_id)
    return True
