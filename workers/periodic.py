"""Periodic jobs and their schedule: one table, run by `python -m server cron` (RQ's cron scheduler
enqueues them for the workers) or, in embedded mode, on timers inside the web process.

Each job is idempotent and safe to overlap with itself: it reads the database and goes through the
same exactly-once paths as everything else.
"""

import logging

from models.actions import payments, payouts, refunds, reminders, retention
from models.db import with_connection

from . import runtime
from .rq_retention import delete_orphaned_jobs

log = logging.getLogger("serviceman.periodic")


def reconcile_payments(older_than=None):
    """Re-verify payments still PENDING (a lost webhook never strands a paid booking)."""
    settings = runtime.settings()
    verify_after = settings.payment_reconcile_after if older_than is None else older_than
    counts = with_connection(
        payments.reconcile_payments, runtime.paystack(), verify_after, settings.payment_abandon_after
    )
    if counts["checked"]:
        log.info("reconcile payments: %s", counts)
    return counts


def reconcile_transfers(older_than=None):
    """Re-check serviceman transfers unanswered or in transit (a lost webhook or a timed-out call):
    settle them from Paystack's answer, or re-send one Paystack never got with the same reference."""
    settings = runtime.settings()
    after = settings.payout_reconcile_after if older_than is None else older_than
    counts = with_connection(payouts.reconcile_transfers, runtime.paystack(), after)
    if counts["checked"]:
        log.info("reconcile transfers: %s", counts)
    return counts


def reconcile_refunds(older_than=None):
    """Open refunds for paid-but-unusable payments, ask Paystack again for refunds it never accepted,
    and re-read those still processing (a lost refund.* webhook never strands a refund)."""
    settings = runtime.settings()
    after = settings.payment_reconcile_after if older_than is None else older_than
    counts = with_connection(refunds.reconcile_refunds, runtime.paystack(), after)
    if any(counts.values()):
        log.info("reconcile refunds: %s", counts)
    return counts


def send_booking_reminders():
    """Remind tomorrow's bookings (platform date); each request is reminded once, however runs overlap."""
    counts = with_connection(reminders.send_booking_reminders, runtime.settings().zone)
    if counts["sent"]:
        log.info("booking reminders: %s", counts)
    return counts


def apply_retention():
    """Delete what only grows (models/actions/retention.py) and, with Redis, orphaned RQ job records."""
    counts = with_connection(retention.apply_retention, runtime.settings())
    transport = runtime.transport()
    if getattr(transport, "redis", None) is not None:
        counts["rq_job"] = delete_orphaned_jobs(transport.redis, transport.queues)
    if any(counts.values()):
        log.info("retention: %s", counts)
    return counts


# (job, every N seconds)
SCHEDULE = [
    (reconcile_payments, 60),
    (reconcile_transfers, 60),
    (reconcile_refunds, 60),
    (send_booking_reminders, 15 * 60),
    (apply_retention, 3600),
]
