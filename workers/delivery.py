"""The delivery stages, as jobs: events become notifications, notifications pushes and emails.

The database records what is done (models/notifications.py, Event): an event's `delivered_at`, each
row's `pushed_at` and `sent_to_email`. A job that dies at any instant leaves that record behind, and
its retry, a replay, or the sweep (workers/outbox.py::redrive) does what is left, once:
- deliver_events inserts every notification of several events in one INSERT ... ON CONFLICT DO
  NOTHING on the unique (event, user) index and marks the events delivered in the same transaction
  (also those without recipients). The rows it inserted come back already claimed for pushing (a
  lease); a retry or replay also claims whatever an earlier attempt left unpushed. It pushes the
  claimed rows (one Redis round trip), records them pushed, and queues every unsent email of the events.
- send_emails reads its batch first (no write ever runs while a read cursor is open: on SQLite that
  fails with "database is locked"), then for each email: claims it (a conditional UPDATE: unsent and
  unclaimed, so two senders never send one email), sends it over one reused SMTP connection, marks it
  sent. A refused email does not hold up the others; the job fails afterwards so the transport retries it.

What is left, honestly: a process that dies after the SMTP server accepted an email and before the
UPDATE that marks it (one statement, about a millisecond) sends that email again once its lease
expires; it carries the same Message-ID (workers/email.py), so a mail client shows one message. A
process that dies between publishing a push and recording it pushes that notification (same id)
again once its lease expires.
deliver_event and send_email are the one-item forms (embedded mode).
"""

import logging
import time
import zlib
from datetime import timedelta

from peewee import fn

from models.actions.notifications import notification_message
from models.catalog import Category
from models.db import database
from models.foundation.clock import utcnow
from models.notifications import Notification
from models.service_requests import Event, ServiceRequest
from models.users import User

from . import runtime
from .email import send_notification_email
from .notification_types import NOTIFICATION_TYPES, admins_cached, recipients, render

log = logging.getLogger("serviceman.delivery")

EMAIL_BATCH = 50  # emails per job: big enough to amortise a job, small enough to share among workers
# Leases: how long a claimed push or email is left to its claimer before another may take it over.
# Each must outlast the work it covers, or that work could be done twice.
PUSH_LEASE = timedelta(seconds=10)  # a publish takes milliseconds; Redis's socket timeout is 5 s
# One email, claimed one at a time: a healthy SMTP server answers in milliseconds, and smtplib gives
# up on an unanswered command after 30 s. Only an exchange slower than the lease that still succeeds
# could be sent twice (with the same Message-ID); a shorter lease re-sends the one email a killed
# worker had in hand sooner.
EMAIL_LEASE = timedelta(seconds=30)
# After a failed attempt the sweep waits this long before queuing the email again (the nth failure
# uses the nth delay, then the last); after EMAIL_MAX_ATTEMPTS claims it gives up (logged).
EMAIL_BACKOFF_SECONDS = (10, 30, 60, 300, 900)
EMAIL_MAX_ATTEMPTS = 10
# An accepted email is marked sent through a database outage for as long as its lease keeps others
# from sending it (a PostgreSQL restart or failover takes seconds); only then is it given up.
MARK_SENT_WITHIN = EMAIL_LEASE - timedelta(seconds=5)


class DeliveryError(Exception):
    """Some items of a batch failed; the others are done, and a retry redoes only the failed ones."""


def batch_job_id(stage, ids):
    """The same items give the same id (a re-queued batch replaces itself), different ones never collide."""
    return f"{stage}-{ids[0]}_{len(ids)}_{zlib.crc32(','.join(map(str, ids)).encode()):08x}"


def unread_counts(user_ids):
    counts = dict(
        Notification.select(Notification.user, fn.COUNT(Notification.id))
        .where(Notification.user.in_(list(user_ids)), Notification.is_read == False)
        .group_by(Notification.user)
        .tuples()
    )
    return {uid: counts.get(uid, 0) for uid in user_ids}


def push_unread_count(transport, user_id):
    """Tell the user's sockets their unread count (after a change of read state), through `transport`."""
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
    query = (
        ServiceRequest.select(ServiceRequest, Category, User)
        .join(Category)
        .switch(ServiceRequest)
        .join(User, on=ServiceRequest.client)
        .where(ServiceRequest.id.in_(ids))
    )
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
    return [
        {
            "user": uid,
            "event": event.id,
            "notification_type": kind.name,
            "title": title,
            "message": message,
            "service_request": request_id,
            "payload": payload,
        }
        for uid in recipients(kind, event, request)
    ]


def deliver_events(event_ids):
    """Create the events' notifications and mark the events delivered, push every row not pushed
    yet, queue every unsent email; returns the ids of the rows this call created."""
    events = list(Event.select().where(Event.id.in_(list(event_ids))).order_by(Event.id))
    fresh = [e for e in events if e.delivered_at is None]
    rows, failed = _render(fresh)
    now = utcnow()
    created = []
    with database.atomic():  # the rows and "delivered" together, or neither
        if rows:
            rows.sort(key=lambda row: (row["event"], row["user"]))  # one lock order for concurrent batches
            for row in rows:
                row["push_claimed_until"] = now + PUSH_LEASE  # what this call inserts, it pushes
            # RETURNING gives only the rows inserted here: a replay creates nothing twice.
            created = list(Notification.insert_many(rows).on_conflict_ignore().returning(Notification).execute())
        delivered = [e.id for e in fresh if e.id not in failed]
        if delivered:
            Event.update(delivered_at=now).where(Event.id.in_(delivered), Event.delivered_at.is_null()).execute()
    done = [e.id for e in events if e.id not in failed]
    # The usual case: every event was new and every row went in now, so nothing earlier is left to do.
    first_attempt = len(fresh) == len(events) and len(created) == len(rows)
    pending = created if first_attempt else created + claim_pushes(Notification.event.in_(done))
    push_claimed(pending)
    if first_attempt:
        queue_emails([n.id for n in created])
    else:
        queue_unsent_emails(done)
    if failed:
        raise DeliveryError(f"events {failed} were not delivered (the others were)")
    return [n.id for n in created]


def _render(events):
    """(notification rows, ids of events that could not be rendered) for these events."""
    requests = _requests_of(events)
    rows, failed = [], []
    with admins_cached():
        for event in events:
            try:
                rows += _rows_for(event, requests.get(event.service_request_id))
            except Exception:
                log.exception("event %s could not be rendered into notifications", event.id)
                failed.append(event.id)
    return rows, failed


def deliver_event(event_id):
    return deliver_events([event_id])


def lease_free(lease, now):
    """Nobody holds this lease: never taken, or expired."""
    return lease.is_null() | (lease < now)


def claim_pushes(*where, now=None):
    """Claim the unpushed, unclaimed notifications matching `where` for pushing (a conditional UPDATE,
    so concurrent claimers get disjoint rows); returns them."""
    now = now or utcnow()
    return list(
        Notification.update(push_claimed_until=now + PUSH_LEASE)
        .where(*where, Notification.pushed_at.is_null(), lease_free(Notification.push_claimed_until, now))
        .returning(Notification)
        .execute()
    )


def push_claimed(notifications):
    """Push notifications this process claimed, then record them pushed. Without a transport (or if
    the publish fails) they stay unpushed and the lease expires: a retry or the sweep pushes them."""
    if not notifications or runtime.transport() is None:
        return
    push_new(notifications)
    Notification.update(pushed_at=utcnow()).where(Notification.id.in_([n.id for n in notifications])).execute()


def queue_unsent_emails(event_ids):
    """Queue every unsent email of these events, a batch per job."""
    if not event_ids:
        return
    queue_emails(
        [
            n.id
            for n in Notification.select(Notification.id).where(
                Notification.event.in_(event_ids), Notification.sent_to_email == False
            )
        ]
    )


def queue_emails(notification_ids):
    transport = runtime.transport()
    ids = sorted(notification_ids)
    for start in range(0, len(ids), EMAIL_BATCH):
        chunk = ids[start : start + EMAIL_BATCH]
        transport.enqueue(send_emails, chunk, job_id=batch_job_id("emails", chunk))


def send_emails(notification_ids):
    """Send the unsent emails among these notifications; returns how many this call sent."""
    settings = runtime.settings()
    # The whole batch is read before anything is written (see the module's docstring).
    batch = list(
        Notification.select(Notification, User)
        .join(User)
        .where(Notification.id.in_(list(notification_ids)), Notification.sent_to_email == False)
        .order_by(Notification.id)
    )
    sent, failed = 0, []
    for notification in batch:
        if not claim_email(notification.id):
            continue  # sent meanwhile, or another sender holds it
        try:
            channel = send_notification_email(settings, notification)
        except Exception as exc:
            release_email(notification)
            if isinstance(exc, OSError) and not _is_refusal(exc):
                raise  # the server is unreachable: the rest would fail the same way; retry them all later
            log.warning("email for notification %s not sent: %s", notification.id, exc)
            failed.append(notification.id)
            continue
        mark_email_sent(notification.id)
        sent += 1
        log.info(
            "email for notification %s %s user %s",
            notification.id,
            "sent to" if channel == "smtp" else "written to the log for",
            notification.user_id,
        )
    if failed:
        raise DeliveryError(f"emails of notifications {failed} not sent ({sent} others were)")
    return sent


send_emails.sends_email = True  # the transport queues it behind deliveries (workers/transport.py)


def claim_email(notification_id):
    """Take one unsent email for sending, for EMAIL_LEASE; False if it is sent or someone else holds it."""
    now = utcnow()
    return (
        Notification.update(email_claimed_until=now + EMAIL_LEASE, email_attempts=Notification.email_attempts + 1)
        .where(
            Notification.id == notification_id,
            Notification.sent_to_email == False,
            lease_free(Notification.email_claimed_until, now),
        )
        .execute()
        == 1
    )


def release_email(notification):
    """A failed attempt: free the email for the transport's retry, and hold it back from the sweep
    for the backoff. Best effort: if this write fails too, the lease simply expires."""
    attempts = notification.email_attempts + 1  # counting the claim just made
    delay = EMAIL_BACKOFF_SECONDS[min(attempts, len(EMAIL_BACKOFF_SECONDS)) - 1]
    if attempts >= EMAIL_MAX_ATTEMPTS:
        log.error("email for notification %s failed %d times; the sweep gives up on it", notification.id, attempts)
    try:
        Notification.update(email_claimed_until=None, email_redrive_after=utcnow() + timedelta(seconds=delay)).where(
            Notification.id == notification.id, Notification.sent_to_email == False
        ).execute()
    except Exception:
        log.warning(
            "could not release the email of notification %s (its lease will expire)", notification.id, exc_info=True
        )


def mark_email_sent(notification_id):
    """The server accepted it: record that, retrying a failing write (with backoff, capped at a
    second) while the email's lease still keeps anyone else from sending it: an accepted email left
    unmarked would be sent again once its lease expires."""
    deadline = time.monotonic() + MARK_SENT_WITHIN.total_seconds()
    attempt = 0
    while True:
        try:
            Notification.update(sent_to_email=True, email_sent_at=utcnow(), email_claimed_until=None).where(
                Notification.id == notification_id
            ).execute()
            return
        except Exception:
            if time.monotonic() >= deadline:
                log.exception("email for notification %s was sent but could not be marked sent", notification_id)
                raise
            runtime.release_connection(discard=True)  # a restart ended it: the next attempt connects afresh
            time.sleep(min(1.0, 0.1 * 2**attempt))  # the database, not an event, decides when this can succeed
            attempt += 1


def _is_refusal(exc):
    import smtplib

    return isinstance(exc, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused))


def send_email(notification_id):
    """Send one notification's email; marked sent only after the SMTP server accepted it."""
    return send_emails([notification_id]) == 1


send_email.sends_email = True
