"""The database handle, bound late so the app, the CLI and tests choose SQLite or PostgreSQL."""

import logging
import select
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

log = logging.getLogger("serviceman.db")
# A DatabaseProxy bound late (bind() below) is Peewee's documented pattern for choosing the database at
# run time; models and actions reach it as a module global by design, unlike the process's other state.
database = peewee.DatabaseProxy()

# Seconds to wait for PostgreSQL to accept a new connection (libpq waits for the OS otherwise,
# minutes for a host that does not answer); a URL's own `?connect_timeout=` wins.
CONNECT_TIMEOUT = 5
# What PostgreSQL lets one of our sessions do, so a transaction cannot linger and commit long after it
# stamped its rows (GET /api/sync/ trails the commits by models/actions/sync.py's LAG, 10 s): a lock is
# waited for at most LOCK_TIMEOUT_MS (then the statement fails: 55P03, the caller's 409/503 or a job's
# retry), and a transaction left idle mid-way (a stalled process, a call made while holding it) is
# ended by the server after IDLE_IN_TRANSACTION_TIMEOUT_MS. A URL's own `?options=` comes after, and wins.
LOCK_TIMEOUT_MS = 4000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 5000
SESSION_OPTIONS = (
    f"-c lock_timeout={LOCK_TIMEOUT_MS} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
)
# SQLSTATEs saying the server ended or refused the session: class 08 (connection exception) and
# admin_shutdown, crash_shutdown, cannot_connect_now (a server stopping or starting).
_SESSION_ENDED_CODES = ("57P01", "57P02", "57P03")
_READABLE = select.POLLIN | select.POLLERR | select.POLLHUP
_Query = TypeVar("_Query", bound=peewee.Select)
T = TypeVar("T")


def _has_unread_news(conn: Any) -> bool:
    """Whether an idle connection's socket is readable. Between requests the server has nothing to
    say unless it is ending the session: a termination notice (FATAL 57P01 when it shuts down or
    restarts) or EOF. A zero-timeout poll, no round trip: ~0.4 µs against ~70 µs for `SELECT 1`
    on loopback (poll, not select: the web process holds more than FD_SETSIZE sockets)."""
    poller = select.poll()
    poller.register(conn.fileno(), _READABLE)
    return bool(poller.poll(0))


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception behind one Peewee raised."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc.__context__


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL giving up a lock wait after LOCK_TIMEOUT_MS (55P03): the rows are
    busy for now; nothing of the statement was done."""
    return getattr(_driver_error(exc), "pgcode", None) == "55P03"


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` (as Peewee raises it) says the database could not be reached or dropped the
    session, as opposed to refusing a statement (a constraint, a deadlock, a timeout)."""
    if isinstance(exc, MaxConnectionsExceeded):
        return True  # every pooled connection busy past the pool's wait: unavailable for now
    original = _driver_error(exc)
    try:
        import psycopg2
    except ImportError:  # SQLite-only installs: no PostgreSQL connection to lose
        return False
    if isinstance(original, psycopg2.InterfaceError):
        return True  # "connection already closed"
    if isinstance(original, psycopg2.OperationalError):
        code = original.pgcode
        return code is None or code.startswith("08") or code in _SESSION_ENDED_CODES
    return False


class CheckedOutPostgresqlDatabase(PooledPostgresqlDatabase):
    """The pool without its `SELECT 1` on every check-out. Playhouse's pool runs that round trip
    while holding the database-wide lock, so every thread's check-out queued behind one network
    round trip (py-spy: a quarter of the web process's samples waited there; bench/README.md).

    Instead a connection is discarded at check-out when psycopg2 saw it fail (`closed`, or an
    UNKNOWN transaction status) or when its socket is readable (the server's termination notice or
    EOF: a database restart). Every dead idle connection goes in that one check-out, as the pool
    pops them in turn. A connection that fails anyway on the FIRST statement of a check-out (one
    that died silently), when that statement is a BEGIN or a SELECT (nothing done yet, so nothing
    can be done twice), is dropped with all idle ones and the statement runs once more on a fresh
    connection; if that fails too the database is down, and the caller answers 503."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checkout = threading.local()  # .untouched: no statement has run on this check-out yet

    def _is_closed(self, conn: Any) -> bool:
        from psycopg2.extensions import TRANSACTION_STATUS_UNKNOWN

        return bool(conn.closed) or conn.info.transaction_status == TRANSACTION_STATUS_UNKNOWN or _has_unread_news(conn)

    def _can_reuse(self, conn: Any) -> bool:
        return not conn.closed and super()._can_reuse(conn)

    def connect(self, reuse_if_open: bool = False) -> bool:
        opened = super().connect(reuse_if_open)
        if opened:
            self._checkout.untouched = True
        return opened

    def begin(self, isolation_level: str | None = None) -> None:
        return self._first_statement(super().begin, isolation_level)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if getattr(self._checkout, "untouched", False) and sql.lstrip()[:6].upper() == "SELECT":
            return self._first_statement(super().execute_sql, sql, params)
        self._checkout.untouched = False
        return super().execute_sql(sql, params)

    def _first_statement(self, run: Callable[..., Any], *args: Any) -> Any:
        """Run a statement that changes nothing; once more on a fresh connection if it was the
        check-out's first and the connection turned out dead."""
        if not getattr(self._checkout, "untouched", False):
            return run(*args)
        self._checkout.untouched = False
        try:
            return run(*args)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            if not is_connection_failure(exc) or self.in_transaction():
                raise
            log.warning("a pooled database connection was dead; retrying on a fresh one")
        self._flush()
        self._checkout.untouched = False
        return run(*args)

    def _flush(self) -> None:
        """Drop this thread's dead connection and every idle one (a restart ended them all),
        keeping the thread's open connection contexts, which the fresh connection serves."""
        contexts = list(self._state.ctx)
        self.manual_close()
        self.close_idle()
        try:
            self.connect()  # raises when the database is down: the caller answers 503
        finally:
            self._state.ctx = contexts


def make_database(url: str, pool_size: int = 8) -> peewee.Database:
    """SQLite (a file; WAL so the thread pool can read while one writes) or pooled PostgreSQL."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
        # IMMEDIATE: a deferred transaction that reads then writes fails at once with "database is
        # locked" while another thread writes; an immediate one waits its turn (busy_timeout).
        return peewee.SqliteDatabase(
            path,
            lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": "normal"},
            check_same_thread=False,
        )
    if scheme.startswith("postgres"):
        params = parse_db_url(url.replace("+pool", ""))
        name = params.pop("database")
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params["options"] = f"{SESSION_OPTIONS} {params.get('options', '')}".strip()
        return CheckedOutPostgresqlDatabase(name, max_connections=pool_size, stale_timeout=300, timeout=10, **params)
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)")


def bind(url: str, pool_size: int = 8) -> peewee.Database:
    db = make_database(url, pool_size)
    database.initialize(db)
    return db


def with_connection(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` with a pooled connection of its own, given back when it returns (a pipeline job, a domain
    call off the event loop: handlers/web/executor.py adds the web's 503 for an unreachable database)."""
    with database.connection_context():
        return fn(*args, **kwargs)


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def for_update(query: _Query) -> _Query:
    """`SELECT ... FOR UPDATE` where the database has row locks; SQLite has none, and needs none:
    its transactions begin IMMEDIATE, so a writer holds the whole database until it commits."""
    return query.for_update() if database.obj.for_update else query
