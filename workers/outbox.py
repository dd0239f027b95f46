"""Publishing committed events, and the sweep that re-drives from the database whatever a queue lost.

The Event table is the outbox: `published_at` is set once the transport accepted the event. If
Redis is down, or the process died between commit and publish, the row stays unpublished and the
sweep sends it later. Publishing twice is harmless: every consumer is idempotent.

`redrive()` is the sweep: the database is the source of truth, and the stream and the job queue are
only the fast path. Each pass (every REDRIVE_EVERY_SECONDS: the dispatcher in Redis mode, the web
process's timer in embedded mode) looks, through partial indexes that hold only unfinished rows, for
- events never published (after the grace) -> publish them;
- events published but never delivered (a job lost between the stream and a worker, a worker killed
  before its insert, a Redis that came back empty) -> deliver them here, then and there;
- notification rows never pushed (a worker killed between insert and publish), if still recent:
  a push older than PUSH_WINDOW is pointless, the dashboard has reloaded its list by then -> push them;
- emails never sent, not being sent and not held back after a failure -> queue them again.
Each grace leaves the fast path its time, so the sweep does not race it. Every step claims its rows
with a conditional UPDATE first, so several sweepers (dispatchers) never do one thing twice, and a
sweep that dies leaves only leases that expire.
"""

import logging
from datetime import timedelta

from models.actions.listing import listing_changed
from models.db import with_connection
from models.foundation.clock import utcnow
from models.notifications import Notification
from models.service_requests import Event

from . import runtime
from .delivery import (
    EMAIL_MAX_ATTEMPTS,
    DeliveryError,
    claim_pushes,
    deliver_events,
    lease_free,
    push_claimed,
    queue_emails,
)

log = logging.getLogger("serviceman.outbox")

REDRIVE_EVERY_SECONDS = 3
SWEEP_GRACE = timedelta(seconds=5)  # events and pushes: the fast path takes milliseconds
EMAIL_GRACE = timedelta(seconds=15)  # emails wait behind deliveries in a queue of their own
PUSH_WINDOW = timedelta(minutes=2)  # older pushes are left undone (the client has reloaded since)
REDRIVE_WINDOW = timedelta(days=1)  # older events and emails are left alone: a day late is too late
EVENT_REDRIVE_LEASE = timedelta(seconds=30)  # an event re-driven now is not taken again before this
EVENT_MAX_REDRIVES = 10  # an event that still cannot be delivered is a bug: logged each time, then left
EMAIL_REQUEUE_HOLD = timedelta(seconds=60)  # an email queued again is not queued again before this
SWEEP_BATCH = 500
EVENT_REDRIVE_BATCH = 100  # delivered here, in the sweeper's own process: a pass stays short


def publish(event_id):
    """Hand one event to the transport and mark it published. Raises if the transport fails."""
    runtime.transport().publish_event(event_id)
    Event.update(published_at=utcnow()).where(Event.id == event_id, Event.published_at.is_null()).execute()


def publish_committed(event_id):
    """After-commit hook: never fails the user's action; the sweep retries what did not go out."""
    if runtime.transport() is None:
        return
    try:
        with_connection(publish, event_id)
    except Exception:
        log.warning("event %s not published now (the outbox sweep will retry)", event_id, exc_info=True)


def announce_listing_changed(_event_id):
    """After-commit hook: a committed event may change a public card (the listing caches forget theirs)."""
    listing_changed(runtime.transport())


def sweep_outbox(grace=SWEEP_GRACE, batch=SWEEP_BATCH):
    """Publish unpublished events older than `grace`; returns how many went out."""
    cutoff = utcnow() - grace
    # Read first, then write: no UPDATE while a read cursor is open (SQLite: "database is locked").
    pending = [
        e.id
        for e in Event.select(Event.id)
        .where(Event.published_at.is_null(), Event.created_at <= cutoff)
        .order_by(Event.id)
        .limit(batch)
    ]
    for event_id in pending:
        publish(event_id)
    if pending:
        log.info("outbox sweep published %d event(s)", len(pending))
    return len(pending)


def redrive(now=None, grace=SWEEP_GRACE, email_grace=EMAIL_GRACE):
    """One pass of the sweep (see the module's docstring); returns what it did, by kind."""
    if runtime.transport() is None:
        return {}
    now = now or utcnow()
    counts = {
        "published": sweep_outbox(grace),
        "delivered": redeliver_events(now, grace),
        "pushed": repush(now, grace),
        "emails_queued": requeue_emails(now, email_grace),
    }
    if any(counts.values()):
        log.info("re-drive: %s", counts)
    return counts


def redeliver_events(now, grace=SWEEP_GRACE):
    """Deliver events published more than `grace` ago and still undelivered; returns how many."""
    candidates = (
        Event.select(Event.id)
        .where(
            Event.delivered_at.is_null(),
            Event.created_at >= now - REDRIVE_WINDOW,
            Event.published_at <= now - grace,
            lease_free(Event.redrive_claimed_until, now),
            Event.redrive_attempts < EVENT_MAX_REDRIVES,
        )
        .order_by(Event.created_at)
        .limit(EVENT_REDRIVE_BATCH)
    )
    claimed = sorted(
        e.id
        for e in Event.update(
            redrive_claimed_until=now + EVENT_REDRIVE_LEASE, redrive_attempts=Event.redrive_attempts + 1
        )
        .where(Event.id.in_(candidates), Event.delivered_at.is_null(), lease_free(Event.redrive_claimed_until, now))
        .returning(Event.id)
        .execute()
    )
    if claimed:
        log.warning("re-drive: events %s were published %s ago and are still undelivered", claimed, grace)
        try:
            deliver_events(claimed)
        except DeliveryError:
            pass  # logged per event; the others are delivered, and these are tried again after the lease
    return len(claimed)


def repush(now, grace=SWEEP_GRACE):
    """Push notifications created between PUSH_WINDOW and `grace` ago and never pushed; returns how many."""
    candidates = (
        Notification.select(Notification.id)
        .where(
            Notification.pushed_at.is_null(),
            Notification.created_at >= now - PUSH_WINDOW,
            Notification.created_at <= now - grace,
            lease_free(Notification.push_claimed_until, now),
        )
        .order_by(Notification.created_at)
        .limit(SWEEP_BATCH)
    )
    claimed = claim_pushes(Notification.id.in_(candidates), now=now)
    push_claimed(claimed)
    return len(claimed)


def requeue_emails(now, grace=EMAIL_GRACE):
    """Queue again the emails unsent `grace` after their notification, neither being sent nor held
    back after a failure, and tried fewer than EMAIL_MAX_ATTEMPTS times; returns how many."""
    unsent = Notification.sent_to_email == False
    free = (lease_free(Notification.email_claimed_until, now), lease_free(Notification.email_redrive_after, now))
    candidates = (
        Notification.select(Notification.id)
        .where(
            unsent,
            Notification.created_at.between(now - REDRIVE_WINDOW, now - grace),
            *free,
            Notification.email_attempts < EMAIL_MAX_ATTEMPTS,
        )
        .order_by(Notification.created_at)
        .limit(SWEEP_BATCH)
    )
    # Held back first: another sweeper's pass (or this one's next) does not queue them again.
    claimed = [
        n.id
        for n in Notification.update(email_redrive_after=now + EMAIL_REQUEUE_HOLD)
        .where(Notification.id.in_(candidates), unsent, *free)
        .returning(Notification.id)
        .execute()
    ]
    if claimed:
        try:
            queue_emails(claimed)
        except Exception:
            Notification.update(email_redrive_after=None).where(Notification.id.in_(claimed)).execute()
            raise
    return len(claimed)
