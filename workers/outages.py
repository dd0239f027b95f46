"""Riding out an outage of PostgreSQL or Redis in the long-running pipeline processes (dispatcher,
worker, cron): what counts as one, how long to wait before the next attempt, and what to log.

- `is_database_outage` / `is_redis_outage`: the errors of a server that is down, restarting or
  unreachable (a stale pooled connection included), as opposed to a bug or a refused credential.
- `Backoff`: capped exponential delays with full jitter, so a fleet that lost Redis at the same
  instant does not come back in lockstep.
- `Outage`: one per dependency; logs "unavailable" once when an outage starts and "back after N s"
  once when it ends (never once per attempt), and says whether the process is healthy.
- `Stopping`: SIGTERM/SIGINT set a flag that every wait here watches, so a deploy ends a process
  that is waiting for a server at once.
"""

import logging
import random
import signal
import threading
import time

log = logging.getLogger("serviceman.outages")

BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0


def is_database_outage(exc):
    """A connection-level database error: the server is down, restarting, or dropped our connection.
    (peewee wraps psycopg2's OperationalError/InterfaceError; a bad query is a ProgrammingError.)"""
    import peewee

    try:
        import psycopg2

        driver_errors = (psycopg2.OperationalError, psycopg2.InterfaceError)
    except ImportError:  # pragma: no cover - SQLite-only installs
        driver_errors = ()
    return isinstance(exc, (peewee.OperationalError, peewee.InterfaceError, *driver_errors))


def is_redis_outage(exc):
    """Redis down or unreachable. A refused password is a ConnectionError too, but no outage."""
    import redis

    if isinstance(exc, redis.AuthenticationError):
        return False
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))


def is_outage(exc):
    return is_database_outage(exc) or is_redis_outage(exc)


class Backoff:
    """Delays of FIRST, 2×FIRST, 4×FIRST... capped at CAP, each drawn uniformly below that ("full
    jitter"); `reset()` once the server answers again."""

    def __init__(self, first=BACKOFF_FIRST_SECONDS, cap=BACKOFF_CAP_SECONDS):
        self.first, self.cap = first, cap
        self.attempt = 0

    def next_delay(self):
        ceiling = min(self.cap, self.first * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self):
        self.attempt = 0


class Outage:
    """The state of one dependency ("PostgreSQL", "Redis") as this process sees it."""

    def __init__(self, name, logger=log):
        self.name = name
        self.log = logger
        self.since = None  # monotonic time the outage began, None while healthy
        self.backoff = Backoff()

    @property
    def healthy(self):
        return self.since is None

    def failed(self, exc):
        """An attempt failed with `exc`; logs only the first failure of an outage."""
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "unhealthy: %s unavailable (%s: %s); retrying with backoff until it is back",
                self.name,
                type(exc).__name__,
                _first_line(exc),
            )

    def recovered(self):
        """An attempt succeeded; logs the end of an outage once."""
        if self.since is not None:
            self.log.warning("healthy: %s is back after %.1fs", self.name, time.monotonic() - self.since)
            self.since = None
        self.backoff.reset()

    def next_delay(self):
        return self.backoff.next_delay()


def _first_line(exc):
    return (str(exc).strip().splitlines() or [""])[0]


class Stopping:
    """A stop request (SIGTERM from a deploy, SIGINT from Ctrl-C), as a flag waits can watch."""

    def __init__(self):
        self.event = threading.Event()

    def install(self, signals=(signal.SIGTERM, signal.SIGINT)):
        for signum in signals:
            signal.signal(signum, self._request)
        return self

    def _request(self, signum, frame):
        log.info("received %s: finishing the work in hand, then stopping", signal.Signals(signum).name)
        self.event.set()

    def __call__(self):
        return self.event.is_set()

    def set(self):
        self.event.set()

    def wait(self, seconds):
        """Sleep up to `seconds`, less if a stop is requested; True when stopping."""
        return self.event.wait(seconds)


def wait_until(attempt, outage, stopping=None, deadline=None):
    """Call `attempt()` until it returns without an outage error, waiting with backoff between
    tries; returns its value. Raises the last error when `deadline` (monotonic) passes, or
    `StopWaiting` when a stop is requested meanwhile. Errors that are no outage are raised at once."""
    while True:
        try:
            value = attempt()
        except Exception as exc:
            if not is_outage(exc):
                raise
            outage.failed(exc)
            delay = outage.next_delay()
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            if stopping is not None and stopping.wait(delay):
                raise StopWaiting() from exc
            if stopping is None:
                time.sleep(delay)
            continue
        outage.recovered()
        return value


class StopWaiting(Exception):
    """A stop was requested while waiting for a server."""
