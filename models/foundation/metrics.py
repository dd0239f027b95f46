"""Prometheus metrics every process kind records (web, dispatcher, worker, cron).

Recording is on only when METRICS_TOKEN is set (`enable()` at start-up): without it nothing is
served, so nothing is counted either. With PROMETHEUS_MULTIPROC_DIR set (before the process
starts: prometheus_client reads it at import), each process writes its values to files in that
directory and the web process's /metrics adds up every process of the machine, as
prometheus_client's multiprocess mode documents; without it each process keeps its own.

Names follow Prometheus's conventions: counters end in `_total`, durations are in seconds, and no
label ever holds a user, a reference or an id (a route is its template, a Paystack call its
endpoint with placeholders).
"""

import atexit
import os
import time
from typing import Any

# prometheus_client turns multiprocess mode on when the variable exists, even empty (and then writes
# its files to the working directory): an empty one means "not set", as for every other setting.
for _name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
    if not os.environ.get(_name, "x").strip():
        del os.environ[_name]

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402 (after the environment is settled)

_state = {"enabled": False, "process": "web"}

# Request latencies from a millisecond to the 10 s a client waits at most.
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter("serviceman_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "serviceman_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)
WEBSOCKETS_OPEN = Gauge(
    "serviceman_websockets_open", "Websockets open (past their handshake)", multiprocess_mode="livesum"
)
PUSHES = Counter("serviceman_pushes", "Messages written to websockets")
SYNC_POLLS_HELD = Gauge(
    "serviceman_sync_polls_held", "GET /api/sync/?wait= long-polls held open", multiprocess_mode="livesum"
)
JOB_DURATION = Histogram(
    "serviceman_job_duration_seconds",
    "Time a pipeline job ran (delivery, email, periodic)",
    ["job", "outcome"],
    buckets=JOB_BUCKETS,
)
JOB_FAILURES = Counter("serviceman_job_failures", "Pipeline job attempts that failed", ["job"])
EMAILS = Counter("serviceman_emails", "Emails handed to the SMTP server, or refused by it", ["outcome"])
PAYSTACK_DURATION = Histogram(
    "serviceman_paystack_request_duration_seconds", "Time Paystack took to answer", ["endpoint"], buckets=HTTP_BUCKETS
)
PAYSTACK_ERRORS = Counter(
    "serviceman_paystack_errors",
    "Paystack calls that failed: unavailable (network, timeout, 5xx, unreadable) or refused (4xx)",
    ["endpoint", "kind"],
)
PROCESSES = Gauge(
    "serviceman_processes",
    "Processes running, by kind (web, dispatcher, worker, cron)",
    ["process"],
    multiprocess_mode="livesum",
)
DB_POOL = Gauge(
    "serviceman_db_pool_connections",
    "Database connections of this process's pool",
    ["process", "state"],
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "serviceman_db_pool_max_connections", "The pool's size (DB_POOL_SIZE)", ["process"], multiprocess_mode="livesum"
)


def enable(process: str, on: bool = True) -> None:
    """Called at start-up: `process` is web, dispatcher, worker or cron."""
    if _state.get("counted"):
        PROCESSES.labels(_state["process"]).dec()
    _state.update(enabled=bool(on), process=process, pid=os.getpid(), counted=bool(on))
    if on:
        PROCESSES.labels(process).inc()
    if on and os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not _state.get("exit_hook"):
        from prometheus_client import multiprocess

        # This process's live gauges (sockets, pool) leave the sum when it exits.
        atexit.register(multiprocess.mark_process_dead, os.getpid())
        _state["exit_hook"] = True


def enabled() -> bool:
    return bool(_state["enabled"])


def process_kind() -> str:
    return str(_state["process"])


# (method, route, status) -> its counter and histogram: labels() costs more than inc()
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    if not _state["enabled"]:
        return
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:  # bounded: routes are templates, methods and statuses few
        children = _request_children[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
    children[0].inc()
    children[1].observe(seconds)


def sync_poll_held(change: int) -> None:
    """+1 as a long-poll starts waiting, -1 as it ends (answered, timed out, or its client gone)."""
    if _state["enabled"]:
        SYNC_POLLS_HELD.inc(change)


def socket_opened() -> None:
    if _state["enabled"]:
        WEBSOCKETS_OPEN.inc()


def socket_closed() -> None:
    if _state["enabled"]:
        WEBSOCKETS_OPEN.dec()


def pushed(count: int = 1) -> None:
    if _state["enabled"] and count:
        PUSHES.inc(count)


def job_ran(job: str, seconds: float, failed: bool) -> None:
    if _state["enabled"]:
        JOB_DURATION.labels(job, "failed" if failed else "ok").observe(seconds)
        if failed:
            JOB_FAILURES.labels(job).inc()


def email_handed_over(ok: bool) -> None:
    if _state["enabled"]:
        EMAILS.labels("sent" if ok else "failed").inc()


class timed_paystack_call:
    """`with timed_paystack_call(endpoint) as call: ...; call.failed(kind)`"""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __enter__(self) -> "timed_paystack_call":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if _state["enabled"]:
            PAYSTACK_DURATION.labels(self.endpoint).observe(time.perf_counter() - self.started)

    def failed(self, kind: str) -> None:
        if _state["enabled"]:
            PAYSTACK_ERRORS.labels(self.endpoint, kind).inc()


def observe_pool(database: Any) -> None:
    """Record how many of this process's pooled connections are in use and idle (Peewee's pool)."""
    if not _state["enabled"] or not hasattr(database, "_in_use") or os.getpid() != _state.get("pid"):
        return  # (a forked work-horse: its live gauges would outlive it, it never marks itself dead)
    process = _state["process"]
    DB_POOL.labels(process, "in_use").set(len(database._in_use))
    DB_POOL.labels(process, "idle").set(len(database._connections))
    DB_POOL_MAX.labels(process).set(database._max_connections or 0)
