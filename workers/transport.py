"""The one seam between pipeline stages: Redis (stream, RQ, pub/sub) or in-process (embedded).

publish_event(event_id)          committed event -> dispatcher
enqueue(job, *args, job_id=...)  dispatcher / deliver / the domain -> a worker, with retries; `job` is a
                                 function or its dotted path ("workers.account_email.email_link_to_address":
                                 the domain names its jobs so, and imports nothing of workers/)
push(user_id, message)           worker -> whichever web process holds the user's sockets
push_many([(user_id, message)])  the same for a batch, in one round trip
announce_listing_changed()       any process -> every web process's public listing cache
"""

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from rq.utils import import_attribute

from models.db import with_connection
from models.foundation import log_context, metrics
from models.foundation.redis_clients import connect

from . import delivery

log = logging.getLogger("serviceman.transport")

STREAM = "serviceman:events"
DEAD_LETTER_STREAM = "serviceman:events:dead"
STREAM_MAXLEN = 100_000
QUEUE = "serviceman"
# Emails wait in a queue of their own, which workers take from only when no delivery is waiting:
# a backlog of emails never delays a push.
EMAIL_QUEUE = "serviceman-email"
RETRY_INTERVALS = (10, 30, 60, 300, 900)  # seconds between attempts of a failing job
REQUEST_ID_META = "request_id"  # job.meta key: the request(s) whose events the job works on


def job_function(job):
    """The function a job names: itself, or the one its dotted path names (RQ resolves the same path)."""
    return import_attribute(job) if isinstance(job, str) else job


def job_path(job):
    return job if isinstance(job, str) else f"{job.__module__}.{job.__qualname__}"


def channel_prefix(redis_url):
    """Pub/sub channels belong to the whole Redis server, whatever database a URL names: deployments
    (and test runs) sharing a server keep apart by their database number."""
    from redis.connection import parse_url

    return f"serviceman:{parse_url(redis_url).get('db', 0)}:"


def user_channel(redis_url, user_id):
    """A user's pushes, to whichever web process holds their sockets."""
    return f"{channel_prefix(redis_url)}user:{user_id}"


def listing_channel(redis_url):
    """Every web process follows it: "a commit may have changed the public listing"."""
    return f"{channel_prefix(redis_url)}listing"


class RedisTransport:
    def __init__(self, redis_url, retry_intervals=RETRY_INTERVALS):
        from rq import Queue

        self.redis = connect(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.redis_url = redis_url
        self.queue = Queue(QUEUE, connection=self.redis)
        self.email_queue = Queue(EMAIL_QUEUE, connection=self.redis)
        self.queues = [self.queue, self.email_queue]  # in the order a worker serves them
        self.retry_intervals = list(retry_intervals)

    def publish_event(self, event_id):
        # MAXLEN ~ keeps the stream bounded; the database outbox, not the stream, is the record.
        fields = {"event_id": str(event_id)}
        request_id = log_context.current_request_id()
        if request_id:  # the dispatcher and the worker name the request that caused the event in their logs
            fields["request_id"] = request_id
        self.redis.xadd(STREAM, fields, maxlen=STREAM_MAXLEN, approximate=True)

    def enqueue(self, job, *args, job_id):
        from rq import Retry

        retry = Retry(max=len(self.retry_intervals), interval=self.retry_intervals)
        queue = self.email_queue if getattr(job_function(job), "sends_email", False) else self.queue
        # result_ttl=0: nobody reads a job's return value, so RQ need not store it. The description (which
        # RQ logs at INFO for every job and stores beside it) names the function only: arguments may be
        # personal (the address a reset was asked for) and must never reach a log line.
        return queue.enqueue(
            job,
            *args,
            job_id=job_id,
            retry=retry,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
            description=f"{job_path(job)}(...)",
            meta={REQUEST_ID_META: log_context.current_request_id()},
        )

    def push(self, user_id, message):
        self.redis.publish(user_channel(self.redis_url, user_id), json.dumps(message, default=str))

    def push_many(self, messages):
        with self.redis.pipeline(transaction=False) as pipe:
            for user_id, message in messages:
                pipe.publish(user_channel(self.redis_url, user_id), json.dumps(message, default=str))
            pipe.execute()

    def announce_listing_changed(self):
        self.redis.publish(listing_channel(self.redis_url), b"")


class EmbeddedTransport:
    """Everything in this process: jobs on a small thread pool, retried on timers; pushes go
    straight to the local websocket hub."""

    def __init__(self, hub=None, retry_intervals=RETRY_INTERVALS, workers=2):
        self.hub = hub
        self.retry_intervals = list(retry_intervals)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")

    def publish_event(self, event_id):
        """Deliver now, so the outbox marks the event published only once its notifications exist:
        if this process dies first, the sweep delivers it after the restart."""
        delivery.deliver_event(event_id)

    def enqueue(self, fn, *args, job_id, attempt=0, request_id=None):
        self.pool.submit(self._run, fn, args, job_id, attempt, request_id or log_context.current_request_id())

    def _run(self, fn, args, job_id, attempt, request_id):
        with log_context.bound(request_id=request_id):  # the job's lines name the request that caused it
            self._attempt(fn, args, job_id, attempt, request_id)

    def _attempt(self, fn, args, job_id, attempt, request_id):
        started, name = time.perf_counter(), job_path(fn).rsplit(".", 1)[-1]
        try:
            with_connection(job_function(fn), *args)
        except Exception:
            metrics.job_ran(name, time.perf_counter() - started, failed=True)
            if attempt >= len(self.retry_intervals):
                log.exception("job %s failed for good after %d attempts", job_id, attempt + 1)
                return
            delay = self.retry_intervals[attempt]
            log.warning("job %s failed (attempt %d); retrying in %ss", job_id, attempt + 1, delay, exc_info=True)
            timer = threading.Timer(
                delay, self.enqueue, (fn, *args), {"job_id": job_id, "attempt": attempt + 1, "request_id": request_id}
            )
            timer.daemon = True
            timer.start()
        else:
            metrics.job_ran(name, time.perf_counter() - started, failed=False)

    def push(self, user_id, message):
        if self.hub is not None:
            self.hub.push_threadsafe(user_id, message)

    def push_many(self, messages):
        for user_id, message in messages:
            self.push(user_id, message)

    def announce_listing_changed(self):
        """One process: the listing cache is this process's own, already told."""

    def shutdown(self):
        self.pool.shutdown(wait=True)
