"""What /healthz, /readyz and /livez report: each dependency asked once, with a short deadline.

- liveness: the process answers (no I/O at all);
- readiness: it can serve, which needs the database; Redis is reported but does not fail readiness,
  since the web process serves without it (pushes and rate limits wait, requests do not);
- health (/healthz, the contract's): every dependency, 503 naming the failing part.

The database is asked on a connection of its own with a connect and statement timeout, not through
the request pool: a check must neither queue behind busy pooled connections nor wait the pool's
check-out timeout while PostgreSQL is down.
"""

import functools
import logging
from typing import Any
from urllib.parse import urlsplit

import peewee

from models.foundation.redis_clients import connect
from models.foundation.settings import Settings

from ..db import database

log = logging.getLogger("serviceman.health")

OK, UNAVAILABLE, EMBEDDED = "ok", "unavailable", "embedded"
CONNECT_TIMEOUT_SECONDS = 2  # libpq's smallest; the handler's own deadline is shorter
STATEMENT_TIMEOUT_MS = 1000
REDIS_TIMEOUT_SECONDS = 0.5


@functools.lru_cache(maxsize=4)
def _probe_database(url: str) -> peewee.PostgresqlDatabase:
    """A PostgreSQL handle of its own (no pool) for the checks, with short timeouts."""
    from playhouse.db_url import parse as parse_db_url

    params = parse_db_url(url.replace("+pool", ""))
    name = params.pop("database")
    return peewee.PostgresqlDatabase(
        name, connect_timeout=CONNECT_TIMEOUT_SECONDS, options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}", **params
    )


def database_state(settings: Settings) -> str:
    """ "ok" when the database answers a `SELECT 1`, else "unavailable" (the cause is logged)."""
    probe: peewee.Database | peewee.DatabaseProxy = database
    if not urlsplit(settings.database_url).scheme.startswith("sqlite"):
        probe = _probe_database(settings.database_url)
    try:
        with probe.connection_context():
            answered = peewee.Select(columns=[peewee.Value(1)]).bind(probe).scalar() == 1
        return OK if answered else UNAVAILABLE
    except peewee.PeeweeException as exc:
        log.warning("database health check failed: %s", _first_line(exc))
        return UNAVAILABLE


def redis_state(settings: Settings) -> str:
    """ "embedded" without REDIS_URL; "ok" when Redis answers a PING, else "unavailable"."""
    if not settings.redis_url:
        return EMBEDDED
    import redis

    client = connect(
        settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return OK
    except redis.RedisError as exc:
        log.warning("redis health check failed: %s", _first_line(exc))
        return UNAVAILABLE
    finally:
        client.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def health(database_state: str, redis_state: str) -> tuple[int, dict[str, Any]]:
    """/healthz: 200 when every dependency answers, else 503; the body names each one's state."""
    healthy = database_state == OK and redis_state in (OK, EMBEDDED)
    return (200 if healthy else 503), {
        "status": OK if healthy else UNAVAILABLE,
        "database": database_state,
        "redis": redis_state,
    }


def readiness(database_state: str, redis_state: str) -> tuple[int, dict[str, Any]]:
    """/readyz: 200 when the database answers, whatever Redis says (it is reported)."""
    ready = database_state == OK
    return (200 if ready else 503), {
        "status": OK if ready else UNAVAILABLE,
        "database": database_state,
        "redis": redis_state,
    }


def liveness() -> tuple[int, dict[str, Any]]:
    return 200, {"status": OK}
