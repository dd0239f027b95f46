"""Run blocking domain calls (Peewee, requests) on a bounded thread pool, off the event loop.

Each call holds a pooled connection only for its own duration; a connection is per thread, so
nothing awaits while a transaction is open. A call, once handed to the pool, runs to its end even
if the coroutine awaiting it is cancelled: a thread cannot be interrupted, so a request is never
cut off between its commit and its answer by this module (the web process's shutdown waits for
the requests instead, server/shutdown.py).
"""

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

import peewee
from playhouse.pool import MaxConnectionsExceeded

from models.db import is_connection_failure, is_lock_timeout, with_connection
from models.foundation.errors import ServiceUnavailable

_executor = None
RETRY_AFTER_SECONDS = 2  # told to clients while the database cannot be reached
DATABASE_UNAVAILABLE = "database_unavailable"  # the 503's error code
DATABASE_BUSY = "database_busy"  # the 503's code when a lock was waited for too long


def configure(max_workers):
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False)
    _executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="domain")
    return _executor


def shutdown(wait=True):
    """Refuse further calls; with `wait`, return once the calls already handed over have ended."""
    if _executor is not None:
        _executor.shutdown(wait=wait)


def _try_again_shortly(message, code):
    return ServiceUnavailable(message, code=code, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def database_unavailable():
    return _try_again_shortly("The database cannot be reached right now; try again shortly.", DATABASE_UNAVAILABLE)


def database_busy():
    return _try_again_shortly(
        "What this request needs is being changed by another one; try again shortly.", DATABASE_BUSY
    )


def call_with_connection(fn, *args, **kwargs):
    """models.db.with_connection, with an unreachable database answered 503 `database_unavailable`
    and a lock waited for too long (models/db.py LOCK_TIMEOUT_MS) 503 `database_busy`."""
    try:
        return with_connection(fn, *args, **kwargs)
    except (peewee.PeeweeException, MaxConnectionsExceeded) as exc:
        if is_connection_failure(exc):
            raise database_unavailable() from exc
        if is_lock_timeout(exc):
            raise database_busy() from exc
        raise


async def run_sync(fn, *args, **kwargs):
    if _executor is None:
        configure(8)
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, call_with_connection, fn, *args, **kwargs)
    return await loop.run_in_executor(_executor, call)
