"""The commonest start-up mistakes as one clear line each, instead of a traceback.

The CLI checks what a command needs before it starts (the database reachable and migrated, Redis
reachable, the port free) and turns the errors of those mistakes into `StartupError`s; `explain()`
words an exception that still escapes a command. URLs are shown without their passwords.
"""

import errno
import sqlite3
from urllib.parse import urlsplit

import peewee

from models import database as db
from models.foundation.redis_clients import connect
from server.migrations import router
from workers.outages import Backoff

CONNECT_TIMEOUT = 3  # seconds: an unreachable host should not look like a hang


class StartupError(RuntimeError):
    """A mistake in the set-up, said in one line."""


def where(url):
    """host:port/name of a URL, never its user or password."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url.split(":///", 1)[-1] or ":memory:"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or ''}"


def database_name(url):
    return urlsplit(url).path.lstrip("/")


def _first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def database_problem(exc, url, connecting=False):
    """The one line for a database error, or None when it is not a set-up mistake (while
    `connecting`, any operational error is one: wrong password, refused, unknown host...)."""
    text = _first_line(exc)
    if urlsplit(url).scheme.startswith("sqlite"):
        if isinstance(exc, (peewee.OperationalError, sqlite3.OperationalError)) and "unable to open" in text:
            return f"cannot open the SQLite database {where(url)}: does its folder exist? Check DATABASE_URL"
        return None
    import psycopg2

    if not isinstance(exc, (peewee.OperationalError, peewee.InterfaceError, psycopg2.OperationalError)):
        return None
    name = database_name(url)
    if "does not exist" in text and f'"{name}"' in text:
        return (
            f'database "{name}" does not exist on {where(url).rsplit("/", 1)[0]}: create it '
            f"(`createdb {name}`, or `make run-full` creates it) or fix DATABASE_URL"
        )
    if any(
        words in text
        for words in (
            "Connection refused",
            "could not connect",
            "timeout expired",
            "could not translate host name",
            "No route to host",
        )
    ):
        return f"cannot reach PostgreSQL at {where(url).rsplit('/', 1)[0]} ({text}): is it running? Check DATABASE_URL"
    return f"cannot use the database {where(url)}: {text}" if connecting else None


def _certificate_failure(exc):
    """The TLS certificate check inside a Redis connection error (redis-py words it "Error 1 connecting")."""
    import ssl

    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def redis_problem(exc, url):
    import redis

    if isinstance(exc, redis.exceptions.ConnectionError) and _certificate_failure(exc):
        return (
            f"Redis at {where(url)} presented a TLS certificate that could not be verified ({_first_line(exc)}): "
            "if your provider's certificates are self-signed (Heroku Redis), set REDIS_SSL_CERT_REQS=none; "
            "otherwise check REDIS_URL and the certificate"
        )
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return (
            f"cannot reach Redis at {where(url)} ({_first_line(exc)}): is redis-server running? Check "
            "REDIS_URL (unset it to run the whole pipeline inside the web process)"
        )
    return None


def check_database(url):
    """Connect once to the bound database; a missing, unreachable or unopenable one is a StartupError."""
    try:
        db.connect(reuse_if_open=True)
        db.close()
    except Exception as exc:
        problem = database_problem(exc, url, connecting=True)
        if problem is None:
            raise
        raise StartupError(problem) from exc


def check_migrated(url):
    """Serving an empty or old schema fails at the first request: say so at start-up instead."""
    check_database(url)
    migrations = router(db)
    if not db.table_exists(migrations.migrate_table):
        raise StartupError(
            f"the database {where(url)} has no tables yet: run `python -m server migrate` (`make run` does)"
        )
    pending = migrations.diff
    if pending:
        raise StartupError(
            f"the database {where(url)} lacks {len(pending)} migration(s) ({pending[-1]}...): "
            "run `python -m server migrate`"
        )


def check_redis(url):
    try:
        connect(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT).ping()
    except Exception as exc:
        problem = redis_problem(exc, url)
        if problem is None:
            raise
        raise StartupError(problem) from exc


def port_problem(exc, host, port):
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another `make run`?): stop that process or choose "
            f"another port with PORT={port + 1} (or --port {port + 1})"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port}: {host} is not an address of this machine (check --host)"
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need root): choose another with PORT"
    return None


def explain(exc, settings):
    """One line for an exception that escaped a command, or None (a real bug keeps its traceback)."""
    problem = database_problem(exc, settings.database_url)
    if problem is None and settings.redis_url:
        problem = redis_problem(exc, settings.redis_url)
    return problem


def ensure_database(url):
    """Create the PostgreSQL database DATABASE_URL names when it does not exist (`make run-full`).
    Returns True when it was created, None for SQLite (which creates its file by itself)."""
    if not urlsplit(url).scheme.startswith("postgres"):
        return None
    import psycopg2
    from playhouse.db_url import parse as parse_db_url
    from psycopg2 import sql

    params = parse_db_url(url.replace("+pool", ""))
    name = params.pop("database")
    try:
        psycopg2.connect(dbname=name, connect_timeout=CONNECT_TIMEOUT, **params).close()
        return False
    except psycopg2.OperationalError as exc:
        if f'database "{name}" does not exist' not in str(exc):
            raise StartupError(database_problem(exc, url, connecting=True)) from exc
    # The server's maintenance database; CREATE DATABASE is outside any ORM's query builder, so it is
    # composed with psycopg2's sql module, the name quoted as an identifier.
    connection = psycopg2.connect(dbname="postgres", connect_timeout=CONNECT_TIMEOUT, **params)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    return True


# Waiting at start-up (dispatcher, worker, cron): a server that is down or restarting is waited for,
# a mistake in the set-up (no tables, a refused password, a bad URL) still stops at once.
TRANSIENT_DATABASE_WORDS = (
    "Connection refused",
    "could not connect",
    "timeout expired",
    "No route to host",
    "could not translate host name",
    "the database system is starting up",
    "the database system is shutting down",
    "server closed the connection",
)


def is_transient(exc):
    """The cause of a StartupError is a server that is not up (yet), not a set-up mistake."""
    import redis

    cause = exc.__cause__
    if isinstance(cause, redis.exceptions.AuthenticationError):
        return False
    if isinstance(cause, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return "certificate" not in str(cause).lower()
    return cause is not None and any(words in str(cause) for words in TRANSIENT_DATABASE_WORDS)


def wait_for(check, url, wait_seconds=None, stopping=None, logger=None):
    """Run `check(url)` (check_migrated, check_redis) until it passes. While it fails because the
    server is unreachable, retry with backoff, the problem logged once, for `wait_seconds` at most
    (None: for ever); then, or for any other problem, its StartupError is raised. Returns False when
    a stop was requested meanwhile (`stopping`: workers.outages.Stopping)."""
    import logging
    import time

    logger = logger or logging.getLogger("serviceman.startup")
    backoff, started, told = Backoff(), time.monotonic(), False
    while True:
        try:
            check(url)
        except StartupError as exc:
            delay = backoff.next_delay()
            waited = time.monotonic() - started
            if not is_transient(exc) or (wait_seconds is not None and waited + delay > wait_seconds):
                raise
            if not told:
                logger.warning(
                    "%s; waiting for it (STARTUP_WAIT_SECONDS=%s)",
                    exc,
                    "unset: for ever" if wait_seconds is None else wait_seconds,
                )
                told = True
            if stopping is not None and stopping.wait(delay):
                return False
            if stopping is None:
                time.sleep(delay)
            continue
        if told:
            logger.warning("%s answers after %.1fs", where(url), time.monotonic() - started)
        return True
