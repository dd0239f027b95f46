"""The delivery stages, as jobs: events become notifications, notifications emails.

Both work in batches and are idempotent, so a batch that dies part-way is simply run again:
- deliver_events inserts every notification of several events in one INSERT ... ON CONFLICT DO
  NOTHING on the unique (event, user) index and gets back only the rows it inserted, so a replayed
  event creates nothing twice and only new rows are pushed (one Redis round trip per batch). It then
  queues every still-unsent email of those events, so a job that died after inserting loses none.
- send_emails sends over one reused SMTP connection and marks each email sent right after the
  server accepted it (a retry skips those); a refused email does not hold up the others, and the
  job fails afterwards so the transport retries the ones left.
deliver_event and send_email are the one-item forms (embedded mode, the email sweep).
"""
import logging
import zlib

from peewee import fn

from models.catalog import Category
from models.notifications import Notification
from models.service_requests import Event, ServiceRequest
from models.users import User
from server.clock import utcnow

from . import runtime
from .email import send_notification_email
from .notification_types import NOTIFICATION_TYPES, admins_cached, recipients, render

log = logging.getLogger("serviceman.delivery")

EMAIL_BATCH = 50  # emails per job: big enough to amortise a job, small enough to share among workers


class DeliveryError(Exception):
    """Some items of a batch failed; the others are done, and a retry redoes only the failed ones."""


def batch_job_id(stage, ids):
    """The same items give the same id (a re-queued batch replaces itself), different ones never collide."""
    return f"{stage}-{ids[0]}_{len(ids)}_{zlib.crc32(','.join(map(str, ids)).encode()):08x}"


_schema = []


def notification_message(notification):
    """The websocket/REST representation of a notification."""
    if not _schema:  # one instance: building a marshmallow schema costs more than dumping with it
        from handlers.schemas.notifications import NotificationSchema

        _schema.append(NotificationSchema())
    return {"type": "notification", "notification": _schema[0].dump(notification)}


def unread_counts(user_ids):
    counts = dict(Notification.select(Notification.user, fn.COUNT(Notification.id))
                  .where(Notification.user.in_(list(user_ids)), Notification.is_read == False)  # noqa: E712
                  .group_by(Notification.user).tuples())
    return {uid: counts.get(uid, 0) for uid in user_ids}


def push_unread_count(user_id):
    """Tell the user's sockets their unread count (after a delivery or a change of read state)."""
    transport = runtime.transport()
    if transport is not None:
        transport.push(user_id, {"type": "unread_count", "count": unread_counts([user_id])[user_id]})


def push_new(notifications):
    """Each new notification to its user's sockets, then each user's unread count, in one batch."""
    transport = runtime.transport()
    if transport is None or not notifications:
        return
    user_ids = list(dict.fromkeys(n.user_id for n in notifications))
    messages = [(n.user_id, notification_message(n)) for n in notifications]
    messages += [(uid, {"type": "unread_count", "count": count}) for uid, count in unread_counts(user_ids).items()]
    transport.push_many(messages)


def _requests_of(events):
    """The events' requests with category and client, in one query (rendering reads both)."""
    ids = {e.service_request_id for e in events if e.service_request_id is not None}
    if not ids:
        return {}
    query = (ServiceRequest.select(ServiceRequest, Category, User)
             .join(Category).switch(ServiceRequest).join(User, on=ServiceRequest.client)
             .where(ServiceRequest.id.in_(ids)))
    return {r.id: r for r in query}


def _rows_for(event, request):
    kind = NOTIFICATION_TYPES.get(event.type)
    if kind is None or (request is None and event.service_request_id is not None):
        return []
    if request is not None:
        event.service_request = request
    request_id = request.id if request else None  # account events (serviceman vetting) concern no request
    title, message, values = render(kind, event, request)
    payload = {**(event.payload or {}), "service_request_id": request_id, "is_emergency": values["is_emergency"]}
    return [{"user": uid, "event": event.id, "notification_type": kind.name, "title": title, "message": message,
             "service_request": request_id, "payload": payload} for uid in recipients(kind, event, request)]


def deliver_events(event_ids):
    """Create the events' notifications, push the new ones, queue the unsent emails; returns new ids."""
    events = list(Event.select().where(Event.id.in_(list(event_ids))).order_by(Event.id))
    requests = _requests_of(events)
    rows, failed = [], []
    with admins_cached():
        for event in events:
            try:
                rows += _rows_for(event, requests.get(event.service_request_id))
            except Exception:
                log.exception("event %s could not be rendered into notifications", event.id)
                failed.append(event.id)
    created = []
    if rows:
        rows.sort(key=lambda row: (row["event"], row["user"]))  # one lock order for concurrent batches
        # One statement, so atomic by itself; RETURNING gives only the rows it inserted.
        created = list(Notification.insert_many(rows).on_conflict_ignore().returning(Notification).execute())
    push_new(created)
    if len(created) == len(rows):  # the usual case: every email of these events is one just created
        queue_emails([n.id for n in created])
    else:  # a replay or a retry: some emails may be unsent from an earlier attempt
        queue_unsent_emails([e.id for e in events if e.id not in failed])
    if failed:
        raise DeliveryError(f"events {failed} were not delivered (the others were)")
    return [n.id for n in created]


def deliver_event(event_id):
    return deliver_events([event_id])


def queue_unsent_emails(event_ids):
    """Queue every unsent email of these events, a batch per job."""
    if not event_ids:
        return
    queue_emails([n.id for n in Notification.select(Notification.id).where(
        Notification.event.in_(event_ids), Notification.sent_to_email == False)  # noqa: E712
        .order_by(Notification.id)])


def queue_emails(notification_ids):
    transport = runtime.transport()
    ids = sorted(notification_ids)
    for start in range(0, len(ids), EMAIL_BATCH):
        chunk = ids[start:start + EMAIL_BATCH]
        transport.enqueue(send_emails, chunk, job_id=batch_job_id("emails", chunk))


def send_emails(notification_ids):
    """Send the unsent emails among these notifications; returns how many were sent."""
    settings = runtime.settings()
    pending = (Notification.select(Notification, User).join(User)
               .where(Notification.id.in_(list(notification_ids)), Notification.sent_to_email == False)  # noqa: E712
               .order_by(Notification.id))
    sent, failed = 0, []
    for notification in pending:
        try:
            channel = send_notification_email(settings, notification)
        except Exception as exc:
            if isinstance(exc, OSError) and not _is_refusal(exc):
                raise  # the server is unreachable: the rest would fail the same way; retry them all later
            log.warning("email for notification %s not sent: %s", notification.id, exc)
            failed.append(notification.id)
            continue
        Notification.update(sent_to_email=True, email_sent_at=utcnow()).where(
            Notification.id == notification.id).execute()
        sent += 1
        log.info("email for notification %s %s user %s", notification.id,
                 "sent to" if channel == "smtp" else "written to the log for", notification.user_id)
    if failed:
        raise DeliveryError(f"emails of notifications {failed} not sent ({sent} others were)")
    return sent


send_emails.sends_email = True  # the transport queues it behind deliveries (workers/transport.py)


def _is_refusal(exc):
    import smtplib

    return isinstance(exc, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused))


def send_email(notification_id):
    """Send one notification's email; marked sent only after the SMTP server accepted it."""
    return send_emails([notification_id]) == 1


send_email.sends_email = True
