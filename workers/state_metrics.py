"""Gauges read at scrape time from the database and Redis: what is waiting in the outbox, the
stream and the queues, and how many payments, refunds and payouts are in each state.

These describe the deployment, not one process, so they are asked where they are exposed (the web
process's /metrics) and never written to the multiprocess directory. A source that cannot be read
(the database or Redis is down) leaves its families out of that scrape instead of failing it:
`serviceman_state_up` says which.
"""

import logging
import time

from peewee import fn
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import ResponseError

from models.foundation.clock import utcnow
from models.money import Payment
from models.payouts import Payout
from models.refunds import Refund
from models.service_requests import Event

from .outbox import REDRIVE_WINDOW
from .transport import EMAIL_QUEUE, QUEUE, STREAM

log = logging.getLogger("serviceman.metrics")
GROUP = "dispatchers"  # workers/dispatcher.py's consumer group (not imported: the dispatcher pulls in RQ jobs)


def _age(moment, now):
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


def database_families():
    now = utcnow()
    waiting = (
        Event.select(fn.COUNT(Event.id), fn.MIN(Event.created_at))
        .where(Event.delivered_at.is_null(), Event.created_at > now - REDRIVE_WINDOW)
        .tuples()
        .get()
    )
    outbox = GaugeMetricFamily(
        "serviceman_outbox_events_waiting", "Events committed and not delivered yet (within the re-drive window)"
    )
    outbox.add_metric([], waiting[0] or 0)
    oldest = GaugeMetricFamily(
        "serviceman_outbox_oldest_event_age_seconds", "Age of the oldest event waiting in the outbox (0: none)"
    )
    oldest.add_metric([], _age(waiting[1], now))
    yield outbox
    yield oldest
    for model, name, what in (
        (Payment, "serviceman_payments", "Payments"),
        (Refund, "serviceman_refunds", "Refunds"),
        (Payout, "serviceman_payouts", "Payouts to servicemen"),
    ):
        family = GaugeMetricFamily(name, f"{what} by status", labels=["status"])
        for status, count in model.select(model.status, fn.COUNT(model.id)).group_by(model.status).tuples():
            family.add_metric([status], count)
        yield family


def _entry_ms(entry_id):
    entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(entry_id.split("-", 1)[0])


def redis_families(redis):
    waiting, oldest_ms = 0, None
    try:
        groups = [group for group in redis.xinfo_groups(STREAM) if _text(group["name"]) == GROUP]
    except ResponseError as exc:
        if "no such key" not in str(exc):
            raise
        groups = []  # no event published since Redis started empty
    for group in groups:
        pending = group.get("pending") or 0
        lag = group.get("lag") or 0
        waiting += pending + lag
        firsts = []
        if pending:
            summary = redis.xpending(STREAM, GROUP)
            if summary.get("min"):
                firsts.append(_entry_ms(summary["min"]))
        if lag:
            unread = redis.xrange(STREAM, min="(" + _text(group["last-delivered-id"]), count=1)
            firsts += [_entry_ms(entry_id) for entry_id, _fields in unread]
        if firsts:
            oldest_ms = min(firsts + ([oldest_ms] if oldest_ms is not None else []))
    stream = GaugeMetricFamily(
        "serviceman_stream_events_waiting", "Stream entries not yet acknowledged by a dispatcher (pending + unread)"
    )
    stream.add_metric([], waiting)
    age = GaugeMetricFamily(
        "serviceman_stream_oldest_event_age_seconds",
        "Age of the oldest stream entry waiting for a dispatcher (0: none)",
    )
    age.add_metric([], max(0.0, time.time() - oldest_ms / 1000) if oldest_ms is not None else 0.0)
    queues = GaugeMetricFamily("serviceman_queue_jobs_waiting", "RQ jobs waiting in each queue", labels=["queue"])
    for name in (QUEUE, EMAIL_QUEUE):
        queues.add_metric([name], redis.llen(f"rq:queue:{name}"))
    return [stream, age, queues]


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class StateCollector:
    """A prometheus_client custom collector; `redis` is None in embedded mode (no stream, no queues)."""

    def __init__(self, redis=None):
        self.redis = redis

    def collect(self):
        up = GaugeMetricFamily("serviceman_state_up", "Whether the scrape could read each source", labels=["source"])
        sources = [("database", lambda: list(database_families()))]
        if self.redis is not None:
            sources.append(("redis", lambda: redis_families(self.redis)))
        for source, read in sources:
            try:
                families = read()
            except Exception as exc:
                log.warning("metrics: %s not read (%s)", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up
