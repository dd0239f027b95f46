"""The stream dispatcher: reads committed events from the Redis stream with a consumer group and
turns them into RQ `deliver_events` jobs, up to `batch` events per job (whatever one read returned:
one event when they trickle in, so latency stays low; full batches when a backlog builds up).

An entry is acknowledged only after its job is enqueued. Entries left pending by a dead consumer
are reclaimed with XAUTOCLAIM; one that has failed MAX_DELIVERIES times goes to the dead-letter
stream, is logged and acknowledged, instead of being retried forever.
"""
import logging
import socket
import time

import redis

from . import runtime
from .delivery import batch_job_id, deliver_events
from .outbox import REDRIVE_EVERY_SECONDS, redrive
from .transport import DEAD_LETTER_STREAM, STREAM, STREAM_MAXLEN

log = logging.getLogger("serviceman.dispatcher")

GROUP = "dispatchers"
MAX_DELIVERIES = 5
RECLAIM_IDLE_MS = 60_000
BATCH = 100  # events per delivery job
SWEEP_EVERY_SECONDS = REDRIVE_EVERY_SECONDS  # the database re-drives what a queue lost within seconds

# Delivery jobs waiting in RQ beyond which the dispatcher leaves new events in the stream. Under load
# the backlog then stays where the next read takes it whole (one job for up to `batch` events)
# instead of piling up in RQ as one-event jobs that cost a job each; at a low rate the queue is
# empty and every event is queued the moment it arrives.
MAX_QUEUED_DELIVERIES = 2
BACKPRESSURE_PAUSE_SECONDS = 0.005


class Dispatcher:
    def __init__(self, redis_client, transport, consumer=None, min_idle_ms=RECLAIM_IDLE_MS,
                 max_deliveries=MAX_DELIVERIES, batch=BATCH):
        self.redis = redis_client
        self.batch = max(1, batch)
        self.transport = transport
        self.consumer = consumer or f"{socket.gethostname()}-{id(self)}"
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.ensure_group()

    def ensure_group(self):
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def handle(self, entries):
        """Enqueue one delivery job for these (entry id, event id), then acknowledge them all.
        Raises (leaving them pending) on failure."""
        event_ids = [event_id for _, event_id in entries]
        self.transport.enqueue(deliver_events, event_ids, job_id=batch_job_id("deliver", event_ids))
        self.redis.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])

    def dead_letter(self, entry_id, fields, reason):
        log.error("dead-lettering stream entry %s (%s): %s", entry_id, reason, fields)
        body = {k: v for k, v in fields.items()}
        body.update({"original_id": entry_id, "reason": reason})
        self.redis.xadd(DEAD_LETTER_STREAM, body, maxlen=STREAM_MAXLEN, approximate=True)
        self.redis.xack(STREAM, GROUP, entry_id)

    def _process(self, entries):
        valid = []
        for entry_id, fields in entries:
            if fields is None:  # trimmed from the stream while pending: nothing left to deliver
                self.redis.xack(STREAM, GROUP, entry_id)
                continue
            try:
                valid.append((entry_id, int(fields.get(b"event_id") or fields.get("event_id"))))
            except (TypeError, ValueError):
                self.dead_letter(entry_id, fields, "entry has no valid event_id")
        handled = 0
        for start in range(0, len(valid), self.batch):
            chunk = valid[start:start + self.batch]
            try:
                self.handle(chunk)
                handled += len(chunk)
            except Exception:
                log.warning("stream entries %s..%s failed; they stay pending for a retry", chunk[0][0], chunk[-1][0],
                            exc_info=True)
        return handled

    def poll(self, block_ms=2000, count=None):
        """Read new entries for this consumer; returns how many were handled."""
        reply = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=count or max(100, self.batch),
                                      block=block_ms)
        return sum(self._process(entries) for _stream, entries in reply or [])

    def reclaim(self, count=100):
        """Take over entries another (dead) consumer left pending; dead-letter the hopeless ones."""
        _next, entries, *_deleted = self.redis.xautoclaim(STREAM, GROUP, self.consumer, self.min_idle_ms,
                                                          start_id="0-0", count=count)
        retry = []
        for entry_id, fields in entries:
            info = self.redis.xpending_range(STREAM, GROUP, min=entry_id, max=entry_id, count=1)
            deliveries = info[0]["times_delivered"] if info else 0
            if fields is not None and deliveries > self.max_deliveries:
                self.dead_letter(entry_id, fields, f"failed {deliveries - 1} times")
            else:
                retry.append((entry_id, fields))
        return self._process(retry)

    def run_forever(self, stop=lambda: False):
        last_sweep = 0.0
        log.info("dispatcher %s reading %s as group %s", self.consumer, STREAM, GROUP)
        while not stop():
            try:
                if time.monotonic() - last_sweep >= SWEEP_EVERY_SECONDS:
                    runtime.run_job(redrive)
                    self.reclaim()
                    last_sweep = time.monotonic()
                if self.transport.queue.count >= MAX_QUEUED_DELIVERIES:
                    time.sleep(BACKPRESSURE_PAUSE_SECONDS)  # the workers are busy: let the stream fill
                    continue
                self.poll()
            except (redis.ConnectionError, redis.TimeoutError):
                log.warning("Redis unavailable; the dispatcher retries in 2s", exc_info=True)
                time.sleep(2)  # back off while Redis is down; nothing is lost, the outbox keeps events
            except Exception:
                log.exception("dispatcher loop error")
                time.sleep(1)
