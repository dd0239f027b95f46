"""The stream dispatcher: reads committed events from the Redis stream with a consumer group and
turns them into RQ `deliver_events` jobs, up to `batch` events per job (whatever one read returned:
one event when they trickle in, so latency stays low; full batches when a backlog builds up).

An entry is acknowledged only after its job is enqueued. One that has failed MAX_DELIVERIES times
goes to the dead-letter stream, is logged and acknowledged, instead of being retried forever.

Dispatchers come and go (deploys, crashes, scaling), so each keeps a liveness key in Redis with a
short TTL (refreshed by a thread of its own). A dispatcher takes over at once the pending entries of
every consumer of the group whose liveness key is gone (one killed, or from an older deploy) and
then deletes that consumer, so names do not pile up in the group; entries of a live but stuck
consumer are taken over after RECLAIM_IDLE_MS. On SIGTERM a dispatcher finishes the read in hand,
acknowledges it, and leaves the group. When Redis comes back empty (a restart without persistence,
a failover), the group and the stream are created again and reading goes on; the events the old
stream held are re-published from the database (the outbox sweep).
"""

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

import redis

from models.db import database, with_connection
from models.foundation import log_context, metrics

from .delivery import batch_job_id, deliver_events
from .outages import Outage, is_database_outage, is_redis_outage
from .outbox import REDRIVE_EVERY_SECONDS, redrive
from .transport import DEAD_LETTER_STREAM, STREAM, STREAM_MAXLEN

log = logging.getLogger("serviceman.dispatcher")

GROUP = "dispatchers"
MAX_DELIVERIES = 5
RECLAIM_IDLE_MS = 60_000  # a live consumer's entry this long unacknowledged is taken over
LIVENESS_KEY = "serviceman:dispatchers:alive:"  # + consumer name; exists while that dispatcher runs
LIVENESS_TTL_SECONDS = 5
LIVENESS_REFRESH_SECONDS = 1
CLAIM_DEAD_EVERY_SECONDS = 1  # how often the group's consumers are checked for dead ones
BATCH = 100  # events per delivery job
SWEEP_EVERY_SECONDS = REDRIVE_EVERY_SECONDS  # the database re-drives what a queue lost within seconds

# Delivery jobs waiting in RQ beyond which the dispatcher leaves new events in the stream. Under load
# the backlog then stays where the next read takes it whole (one job for up to `batch` events)
# instead of piling up in RQ as one-event jobs that cost a job each; at a low rate the queue is
# empty and every event is queued the moment it arrives.
MAX_QUEUED_DELIVERIES = 2
BACKPRESSURE_PAUSE_SECONDS = 0.005


def default_consumer_name():
    """Stable for the life of the process; two processes never share one."""
    return f"{socket.gethostname()}-{os.getpid()}"


def is_missing_group(exc):
    """The stream or its consumer group is gone (Redis restarted empty, or a failover)."""
    text = str(exc)
    return isinstance(exc, redis.ResponseError) and ("NOGROUP" in text or "no such key" in text)


class Dispatcher:
    def __init__(
        self,
        redis_client,
        transport,
        consumer=None,
        min_idle_ms=RECLAIM_IDLE_MS,
        max_deliveries=MAX_DELIVERIES,
        batch=BATCH,
    ):
        self.redis = redis_client
        self.batch = max(1, batch)
        self.transport = transport
        self.consumer = consumer or default_consumer_name()
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.redis_outage = Outage("Redis", log)
        self.database_outage = Outage("PostgreSQL", log)
        self._liveness = None
        self._request_ids = {}  # stream entry id -> the request id it was published with (for the logs)
        try:
            self.ensure_group()
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # Redis went away since the start-up check: run_forever creates the group once it answers

    def ensure_group(self):
        """Create the stream and the group when missing. From id 0: whatever was published since
        Redis came back empty (before the group existed again) is read too."""
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
            return True
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False

    @property
    def liveness_key(self):
        return LIVENESS_KEY + self.consumer

    def beat(self):
        """Say "this consumer is alive" for the next LIVENESS_TTL_SECONDS."""
        self.redis.set(self.liveness_key, b"1", ex=LIVENESS_TTL_SECONDS)

    def start_liveness(self):
        """Refresh the liveness key from a thread, so a long batch or a slow database never makes a
        live dispatcher look dead (and its entries be taken over)."""
        stopped = threading.Event()

        def beat_until_stopped():
            while not stopped.wait(LIVENESS_REFRESH_SECONDS):
                try:
                    self.beat()
                except redis.RedisError:
                    pass  # Redis is down: the loop reports the outage; nothing to be alive in meanwhile

        thread = threading.Thread(target=beat_until_stopped, name="dispatcher-liveness", daemon=True)
        thread.start()
        self._liveness = (stopped, thread)

    def stop_liveness(self):
        if self._liveness is not None:
            stopped, thread = self._liveness
            stopped.set()
            thread.join(LIVENESS_REFRESH_SECONDS + 1)
            self._liveness = None
        self.redis.delete(self.liveness_key)

    def handle(self, entries):
        """Enqueue one delivery job for these (entry id, event id), then acknowledge them all.
        Raises (leaving them pending) on failure."""
        event_ids = [event_id for _, event_id in entries]
        # The job carries the request ids the events were published with (its RQ meta): its lines name them.
        request_ids = log_context.joined(self._request_ids.get(entry_id) for entry_id, _ in entries)
        with log_context.bound(request_id=request_ids):
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
                request_id = fields.get(b"request_id") or fields.get("request_id")
                if request_id:
                    self._request_ids[entry_id] = as_text(request_id)
            except (TypeError, ValueError):
                self.dead_letter(entry_id, fields, "entry has no valid event_id")
        try:
            return self._handle_in_batches(valid)
        finally:
            self._request_ids.clear()

    def _handle_in_batches(self, valid):
        handled = 0
        for start in range(0, len(valid), self.batch):
            chunk = valid[start : start + self.batch]
            try:
                self.handle(chunk)
                handled += len(chunk)
            except Exception as exc:
                if is_redis_outage(exc):
                    raise  # the loop waits for Redis; these stay pending and are read again after
                log.warning(
                    "stream entries %s..%s failed; they stay pending for a retry",
                    chunk[0][0],
                    chunk[-1][0],
                    exc_info=True,
                )
        return handled

    def poll(self, block_ms=2000, count=None):
        """Read new entries for this consumer; returns how many were handled."""
        reply = self.redis.xreadgroup(
            GROUP, self.consumer, {STREAM: ">"}, count=count or max(100, self.batch), block=block_ms
        )
        return sum(self._process(entries) for _stream, entries in reply or [])

    def retry_own_pending(self):
        """Handle again what this consumer read but did not acknowledge (a failed enqueue, an outage,
        or a predecessor of the same name that was killed); returns how many were handled."""
        handled = 0
        while True:
            reply = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: "0"}, count=max(100, self.batch))
            entries = [entry for _stream, stream_entries in reply or [] for entry in stream_entries]
            count = self._process(entries)
            handled += count
            if count < len(entries) or len(entries) < max(100, self.batch):
                return handled  # done, or some failed again: they wait for the next round

    def reclaim(self, count=100):
        """Take over entries another (dead) consumer left pending; dead-letter the hopeless ones."""
        _next, entries, *_deleted = self.redis.xautoclaim(
            STREAM, GROUP, self.consumer, self.min_idle_ms, start_id="0-0", count=count
        )
        return self._process(self._retryable(entries))

    def _retryable(self, entries):
        retry = []
        for entry_id, fields in entries:
            info = self.redis.xpending_range(STREAM, GROUP, min=entry_id, max=entry_id, count=1)
            deliveries = info[0]["times_delivered"] if info else 0
            if fields is not None and deliveries > self.max_deliveries:
                self.dead_letter(entry_id, fields, f"failed {deliveries - 1} times")
            else:
                retry.append((entry_id, fields))
        return retry

    def dead_consumers(self):
        """The group's consumers, other than this one, whose liveness key is gone."""
        others = [as_text(consumer["name"]) for consumer in self.redis.xinfo_consumers(STREAM, GROUP)]
        others = [name for name in others if name != self.consumer]
        if not others:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for name in others:
                pipe.exists(LIVENESS_KEY + name)
            alive = pipe.execute()
        return [name for name, is_alive in zip(others, alive, strict=True) if not is_alive]

    def claim_from_dead_consumers(self, count=100):
        """Take over every pending entry of dead consumers at once (no idle time to wait out), then
        delete them from the group; returns how many entries were handled."""
        handled = 0
        for name in self.dead_consumers():
            while True:
                pending = self.redis.xpending_range(STREAM, GROUP, min="-", max="+", count=count, consumername=name)
                if not pending:
                    break
                ids = [entry["message_id"] for entry in pending]
                claimed = self.redis.xclaim(STREAM, GROUP, self.consumer, 0, ids)
                claimed_ids = {entry_id for entry_id, _fields in claimed}
                for entry_id in set(ids) - claimed_ids:  # trimmed from the stream: nothing to deliver
                    self.redis.xack(STREAM, GROUP, entry_id)
                handled += self._process(self._retryable(claimed))
            lost = self.redis.xgroup_delconsumer(STREAM, GROUP, name)
            if lost:  # it read again between our claim and the delete: the outbox sweep re-sends those
                log.error("consumer %s was deleted with %d entries pending", name, lost)
            log.info("took over from dead dispatcher %s and removed it from the group", name)
        return handled

    def leave(self):
        """On shutdown: stop saying "alive" and leave the group when nothing is pending here (if
        something is, the next dispatcher takes it over at once: our liveness key is gone)."""
        self.stop_liveness()
        pending = self.redis.xpending_range(STREAM, GROUP, min="-", max="+", count=1, consumername=self.consumer)
        if not pending:
            self.redis.xgroup_delconsumer(STREAM, GROUP, self.consumer)
        log.info(
            "dispatcher %s stopped (%s)",
            self.consumer,
            "left the group" if not pending else "its pending entries go to the next dispatcher",
        )

    @contextmanager
    def database_outage_tolerated(self):
        """The outbox sweep needs the database, the stream does not: a database outage is logged once
        and the sweep simply runs again next round."""
        try:
            yield
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            self.database_outage.failed(exc)
        else:
            self.database_outage.recovered()

    def run_forever(self, stop=lambda: False):
        last_sweep = last_claim = 0.0
        log.info("dispatcher %s reading %s as group %s", self.consumer, STREAM, GROUP)
        starting = True
        self.start_liveness()
        while not stop():
            try:
                if starting:  # also after an outage: Redis may have come back empty, or with our reads
                    self.beat()
                    self.ensure_group()
                    self.retry_own_pending()
                    starting = False
                if time.monotonic() - last_claim >= CLAIM_DEAD_EVERY_SECONDS:
                    self.claim_from_dead_consumers()
                    last_claim = time.monotonic()
                if time.monotonic() - last_sweep >= SWEEP_EVERY_SECONDS:
                    with self.database_outage_tolerated():
                        with_connection(redrive)
                    metrics.observe_pool(database.obj)
                    self.reclaim()
                    last_sweep = time.monotonic()
                if self.transport.queue.count >= MAX_QUEUED_DELIVERIES:
                    time.sleep(BACKPRESSURE_PAUSE_SECONDS)  # the workers are busy: let the stream fill
                    continue
                self.poll()
                self.redis_outage.recovered()
            except Exception as exc:
                if is_missing_group(exc):
                    if self.ensure_group():
                        log.warning("the consumer group was gone (Redis came back empty?): created it again")
                    continue
                if is_redis_outage(exc):
                    # Nothing is lost meanwhile: the outbox keeps events, our reads stay pending.
                    self.redis_outage.failed(exc)
                    starting = True
                    self._pause(self.redis_outage.next_delay(), stop)
                    continue
                log.exception("dispatcher loop error")
                self._pause(1, stop)
        try:
            self.leave()
        except redis.RedisError as exc:  # Redis is down as we stop: our liveness key expires by itself
            log.warning("dispatcher %s stopped without leaving the group (%s)", self.consumer, exc)

    @staticmethod
    def _pause(seconds, stop):
        """Sleep, but wake up early for a stop request (when `stop` can wait, as Stopping can)."""
        wait = getattr(stop, "wait", None)
        if wait is not None:
            wait(seconds)
        else:
            time.sleep(seconds)


def as_text(value):
    return value.decode() if isinstance(value, bytes) else value
