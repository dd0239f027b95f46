"""The RQ worker of `python -m server worker`: jobs run in this process, one after another.

RQ's default Worker forks a work-horse per job, and each horse opens its own PostgreSQL connection
and SMTP connection: about 30 ms of overhead on jobs that take a few. This worker forks nothing, so
the database pool, the SMTP connection (workers/email.py) and the imported code are reused.

What the fork bought is kept otherwise: a job that raises is retried by RQ as before; a worker
that dies mid-job leaves the job in RQ's started registry, where a thread keeps its heartbeat for
JOB_HEARTBEAT_SECONDS at a time; once that lapses, the next worker's maintenance (every
MAINTENANCE_SECONDS) retries it. Every job is idempotent, so a retried batch does again only what it
had not done.

Outages of PostgreSQL or Redis are ridden out, not died of:
- a job that fails because either is unreachable (or dropped a pooled connection) is put back at
  the front of its queue once the server answers again, without using up one of its retries;
- the worker waits for Redis (backoff with jitter, logged once per outage) instead of quitting, and
  `run_worker` starts a fresh RQ worker whenever RQ's own loop gave up on a Redis error anyway.
"""

import logging
import signal
import threading
import time

from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.utils import now

from models.db import database
from models.foundation import log_context, metrics

from . import runtime
from .outages import Outage, Stopping, StopWaiting, is_database_outage, is_outage, is_redis_outage, wait_until
from .transport import REQUEST_ID_META

log = logging.getLogger("serviceman.worker")

MAINTENANCE_SECONDS = 5  # RQ's default is 10 minutes: a dead worker's batch would wait that long
JOB_HEARTBEAT_SECONDS = 10  # a running job's claim; refreshed every third of it while the job runs
# RQ blocks on the queues for WORKER_TTL - 15 s and runs maintenance only between two waits: an idle
# worker with RQ's default (420 s) would look for a dead worker's job every 7 minutes.
WORKER_TTL_SECONDS = 20
# A job failing on an outage goes back to the queue's front this many times at most without using
# up a retry (a "database" error that is really the job's own fault must not loop forever).
MAX_OUTAGE_REQUEUES = 20
OUTAGE_REQUEUES = "outage_requeues"  # job.meta key


class JobInterrupted(Exception):
    """A job failed because a server it needs was unreachable: not the job's fault."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


class JobHeartbeat:
    """Keeps a running job's entry in the started registry (and the worker's key) alive from a
    thread: the entry lapses JOB_HEARTBEAT_SECONDS after the worker died, not minutes later."""

    def __init__(self, worker, job, ttl=JOB_HEARTBEAT_SECONDS):
        self.worker, self.job, self.ttl = worker, job, ttl
        self.execution = worker.execution
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id}", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(self.ttl / 3):
            try:
                with self.worker.connection.pipeline() as pipe:
                    self.worker.heartbeat(self.worker.worker_ttl + 60, pipeline=pipe)
                    if self.execution is not None:
                        # xx: an entry removed meanwhile (the job ended) is not added back
                        self.execution.heartbeat(self.job.started_job_registry, self.ttl, pipeline=pipe)
                    self.job.heartbeat(now(), self.ttl, pipeline=pipe, xx=True)
                    pipe.execute()
            except Exception:  # Redis down: the job itself will notice; this only extends a lease
                log.debug("heartbeat of job %s not sent", self.job.id, exc_info=True)

    def stop(self):
        self.stopped.set()
        self.thread.join(self.ttl)


class RidesOutOutages:
    """For both worker classes: wait for Redis instead of quitting, put a job whose run met an outage
    back at the front of its queue, and let a stop request (SIGTERM) end every wait."""

    max_connection_wait_time = 5.0  # RQ's own dequeue retries, capped

    def setup_outages(self):
        self.stopping = Stopping()
        self.stop_requested = False
        self.redis_outage = Outage("Redis", log)
        self.database_outage = Outage("PostgreSQL", log)

    def request_stop(self, signum, frame):
        self.stop_requested = True
        self.stopping.set()
        super().request_stop(signum, frame)

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's dequeue loop starts each round with a heartbeat: while Redis is down, wait here (logged
        once) rather than letting RQ log and retry every attempt."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        try:
            wait_until(lambda: super(RidesOutOutages, self).heartbeat(timeout), self.redis_outage, self.stopping)
        except StopWaiting:
            raise StopRequested() from None

    def perform_job(self, job, queue):
        """RQ's run of one job (in the work-horse with --fork), named in the logs by the request(s) that
        caused it and timed for the metrics."""
        started, ok = time.perf_counter(), False
        try:
            with log_context.bound(request_id=job_request_id(job)):
                ok = super().perform_job(job, queue)
            return ok
        finally:
            metrics.job_ran(job_name(job), time.perf_counter() - started, failed=not ok)
            metrics.observe_pool(database.obj)

    def execute_job(self, job, queue):
        """Run the job; a job that hit an outage (or whose bookkeeping in Redis did) goes back to the
        front of its queue once the server answers again. The job takes a pooled database connection
        when it first needs one (inside RQ's error handling), and it goes back to the pool afterwards."""
        failed_on_database = False
        try:
            with log_context.bound(request_id=job_request_id(job)):  # RQ's own lines about the job too
                super().execute_job(job, queue)
        except Exception as exc:
            cause = exc.cause if isinstance(exc, JobInterrupted) else exc
            if not is_outage(cause) or _outage_requeues(job) >= MAX_OUTAGE_REQUEUES:
                raise
            failed_on_database = is_database_outage(cause)
            runtime.release_connection(discard=failed_on_database)
            self.ride_out(cause)
            self.requeue_at_front(job, queue)
        finally:
            self.job_ended()
            runtime.release_connection(discard=failed_on_database)

    def job_ended(self):
        """After a job, however it ended."""

    def handle_exception(self, job, *exc_info):
        """Every failed attempt goes to error reporting (repeats of one failure kind are dropped there,
        server/error_reporting.py); an outage is the outage log's, not a bug report."""
        if not is_outage(exc_info[1]):
            report_job_failure(job, exc_info)
        super().handle_exception(job, *exc_info)

    def ride_out(self, exc):
        """Wait (backoff, logged once) until the server `exc` came from answers, or a stop is requested."""
        database = is_database_outage(exc)
        outage = self.database_outage if database else self.redis_outage
        outage.failed(exc)
        try:
            wait_until(runtime.ping_database if database else self.connection.ping, outage, self.stopping)
        except StopWaiting:
            pass  # a deploy: put the job back for the next worker if Redis lets us, then stop

    def requeue_at_front(self, job, queue):
        job.meta[OUTAGE_REQUEUES] = _outage_requeues(job) + 1
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe)
            # The same call RQ's own Job.retry makes for a retry without interval; it also writes
            # the job back, so a job whose Redis came back empty is not lost with it.
            queue._enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        log.info("job %s put back at the front of %s after an outage", job.id, queue.name)


class PipelineWorker(RidesOutOutages, SimpleWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        kwargs.setdefault("worker_ttl", WORKER_TTL_SECONDS)
        super().__init__(*args, **kwargs)
        self.setup_outages()
        self._job_outage = None
        self._job_heartbeat = None

    def get_heartbeat_ttl(self, job):
        return JOB_HEARTBEAT_SECONDS

    def prepare_job_execution(self, job, remove_from_intermediate_queue=False):
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        self._job_heartbeat = JobHeartbeat(self, job)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        self._stop_job_heartbeat()
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def job_ended(self):
        self._stop_job_heartbeat()

    def _stop_job_heartbeat(self):
        if self._job_heartbeat is not None:
            self._job_heartbeat.stop()
            self._job_heartbeat = None

    def handle_exception(self, job, *exc_info):
        if is_outage(exc_info[1]):
            self._job_outage = exc_info[1]  # logged once per outage, not with a traceback per job
            return
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        outage, self._job_outage = self._job_outage, None
        if outage is not None and _outage_requeues(job) < MAX_OUTAGE_REQUEUES:
            raise JobInterrupted(outage)  # to execute_job, which waits and puts the job back
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)


def report_job_failure(job, exc_info):
    """To Sentry when it is set up (a no-op otherwise), named by the job's function; its arguments
    are not attached (an account email's job holds an address). Sent before a work-horse exits."""
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_transaction_name(f"job {job_name(job)}")
        scope.set_tag("job", job_name(job))
        sentry_sdk.capture_exception(exc_info)
    sentry_sdk.flush(timeout=2)


def job_request_id(job):
    return (job.meta or {}).get(REQUEST_ID_META)


def job_name(job):
    """`deliver_events`, `send_emails`, `reconcile_payments`...: the job's function, without its module."""
    return (job.func_name or "unknown").rsplit(".", 1)[-1]


def _outage_requeues(job):
    return int((job.meta or {}).get(OUTAGE_REQUEUES) or 0)


class PipelineForkWorker(RidesOutOutages, Worker):
    """RQ's forking Worker (`worker --fork`). Heroku sends SIGTERM to every process of the dyno, the
    work-horse included: the horse ignores it and finishes its job while the worker waits for it
    (RQ's warm shutdown); Heroku's SIGKILL 30 s later is far beyond any of our jobs. A job the
    horse failed on an outage is retried by RQ (with its intervals)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        kwargs.setdefault("worker_ttl", WORKER_TTL_SECONDS)
        # the worker renews its horse's claim this often, for JOB_HEARTBEAT_SECONDS at a time
        kwargs.setdefault("job_monitoring_interval", JOB_HEARTBEAT_SECONDS // 3)
        super().__init__(*args, **kwargs)
        self.setup_outages()

    def get_heartbeat_ttl(self, job):
        return JOB_HEARTBEAT_SECONDS

    def execute_job(self, job, queue):
        # The horse must not inherit this process's pooled connections: a fork would share their
        # sockets, and after a database restart they are dead. Each horse opens its own.
        runtime.close_all_connections()
        super().execute_job(job, queue)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        """A work-horse that died mid-job (killed, out of memory, a crash in C) raised nothing to report:
        say so (once per job function, server/error_reporting.py), and count the failed attempt."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        metrics.job_ran(job_name(job), 0.0, failed=True)
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            scope.set_transaction_name(f"job {job_name(job)}")
            scope.set_tag("job", job_name(job))
            sentry_sdk.capture_message(
                f"the work-horse running {job_name(job)} died (wait status {ret_val})", level="error"
            )

    def setup_work_horse_signals(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_worker(make_worker, connection, burst=False, logging_level="INFO"):
    """Run RQ workers made by `make_worker()` until stopped: when RQ's loop gives up on a Redis
    error (RQ quits on one outside its dequeue), wait for Redis and start a fresh worker."""
    outage = Outage("Redis", log)
    stopping = Stopping()
    while True:
        worker = None
        try:
            worker = make_worker()
            worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
        except Exception as exc:
            if not is_redis_outage(exc):
                raise
            outage.failed(exc)
        if burst or (worker is not None and worker.stop_requested):
            return
        # RQ's handlers (installed by work()) talk to Redis; between workers a stop request only sets a flag
        stopping.install()
        if stopping.wait(outage.next_delay()):
            return
        log.warning("the RQ worker loop ended on an error; starting a fresh worker")
        try:
            wait_until(connection.ping, outage, stopping)
        except StopWaiting:
            return
