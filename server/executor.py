"""Run blocking domain calls (Peewee, requests) on a bounded thread pool, off the event loop.

Each call holds a pooled connection only for its own duration; a connection is per thread, so
nothing awaits while a transaction is open.
"""
import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

from models.db import database

_executor = None


def configure(max_workers):
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False)
    _executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="domain")
    return _executor


def call_with_connection(fn, *args, **kwargs):
    with database.connection_context():
        return fn(*args, **kwargs)


async def run_sync(fn, *args, **kwargs):
    if _executor is None:
        configure(8)
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, call_with_connection, fn, *args, **kwargs)
    return await loop.run_in_executor(_executor, call)
