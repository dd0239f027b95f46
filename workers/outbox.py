"""Publishing committed events, and the sweep that re-publishes any event left behind.

The Event table is the outbox: `published_at` is set once the transport accepted the event.
If Redis is down, or the process died between commit and publish, the row stays unpublished and
the sweep sends it later. Publishing twice is harmless: every consumer is idempotent.
"""
import logging
from datetime import timedelta

from models.notifications import Notification
from models.service_requests import Event
from server.clock import utcnow

from . import runtime

log = logging.getLogger("serviceman.outbox")
SWEEP_GRACE = timedelta(seconds=30)  # leave fresh events to the after-commit publish
SWEEP_BATCH = 500
# Embedded mode keeps email retries in memory; emails still unsent after the whole retry schedule
# (a restart lost them) are queued again, for a day.
EMAIL_RESEND_AFTER = timedelta(minutes=30)
EMAIL_RESEND_UNTIL = timedelta(days=1)


def publish(event_id):
    """Hand one event to the transport and mark it published. Raises if the transport fails."""
    runtime.transport().publish_event(event_id)
    Event.update(published_at=utcnow()).where(Event.id == event_id, Event.published_at.is_null()).execute()


def publish_committed(event_id):
    """After-commit hook: never fails the user's action; the sweep retries what did not go out."""
    if runtime.transport() is None:
        return
    try:
        runtime.run_job(publish, event_id)
    except Exception:
        log.warning("event %s not published now (the outbox sweep will retry)", event_id, exc_info=True)


def sweep_outbox(grace=SWEEP_GRACE, batch=SWEEP_BATCH):
    """Publish unpublished events older than `grace`; returns how many went out."""
    cutoff = utcnow() - grace
    pending = (Event.select(Event.id).where(Event.published_at.is_null(), Event.created_at <= cutoff)
               .order_by(Event.id).limit(batch))
    sent = 0
    for event in pending:
        publish(event.id)
        sent += 1
    if sent:
        log.info("outbox sweep published %d event(s)", sent)
    return sent


def requeue_unsent_emails(now=None):
    """Queue again the emails of notifications that should long have been sent; returns how many."""
    from .delivery import send_email

    now = now or utcnow()
    unsent = (Notification.select(Notification.id)
              .where(Notification.sent_to_email == False,  # noqa: E712
                     Notification.created_at <= now - EMAIL_RESEND_AFTER,
                     Notification.created_at >= now - EMAIL_RESEND_UNTIL)
              .order_by(Notification.id).limit(SWEEP_BATCH))
    count = 0
    for notification in unsent:
        runtime.transport().enqueue(send_email, notification.id, job_id=f"email-{notification.id}")
        count += 1
    return count
