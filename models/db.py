"""The database handle, bound late so the app, the CLI and tests choose SQLite or PostgreSQL."""
from urllib.parse import urlparse

import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase

database = peewee.DatabaseProxy()


class CheckedOutPostgresqlDatabase(PooledPostgresqlDatabase):
    """The pool without its `SELECT 1` on every check-out. Playhouse's pool runs that round trip
    while holding the database-wide lock, so every thread's check-out queued behind one network
    round trip (py-spy: a quarter of the web process's samples waited there; bench/README.md).
    psycopg2 already marks a connection it saw fail (`closed`, or an UNKNOWN transaction status);
    one that died silently fails its next query and is not returned to the pool."""

    def _is_closed(self, conn):
        from psycopg2.extensions import TRANSACTION_STATUS_UNKNOWN

        return bool(conn.closed) or conn.info.transaction_status == TRANSACTION_STATUS_UNKNOWN


def make_database(url, pool_size=8):
    """SQLite (a file; WAL so the thread pool can read while one writes) or pooled PostgreSQL."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
        # IMMEDIATE: a deferred transaction that reads then writes fails at once with "database is
        # locked" while another thread writes; an immediate one waits its turn (busy_timeout).
        return peewee.SqliteDatabase(
            path, lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": "normal"},
            check_same_thread=False,
        )
    if scheme.startswith("postgres"):
        params = parse_db_url(url.replace("+pool", ""))
        name = params.pop("database")
        return CheckedOutPostgresqlDatabase(name, max_connections=pool_size, stale_timeout=300, timeout=10, **params)
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)")


def bind(url, pool_size=8):
    db = make_database(url, pool_size)
    database.initialize(db)
    return db


def is_postgres():
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def for_update(query):
    """`SELECT ... FOR UPDATE` where the database has row locks; SQLite has none, and needs none:
    its transactions begin IMMEDIATE, so a writer holds the whole database until it commits."""
    return query.for_update() if database.obj.for_update else query
