"""What every log line of a request (or of the jobs it caused) carries: its request id, the signed-in
user's id and the route, held in context variables.

The web layer sets them as a request is admitted; the thread pool runs domain calls in a copy of the
request's context (handlers/web/executor.py); an event published by a request carries its id into the
stream, and each job takes the ids of what it works on into its RQ metadata, so the dispatcher's and
the worker's lines name the request that caused them. `ContextFilter` copies them onto every record
(text logs ignore them; JSON logs print them, server/logs.py).
"""

import contextvars
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)
route: contextvars.ContextVar[str | None] = contextvars.ContextVar("route", default=None)
FIELDS: dict[str, contextvars.ContextVar[Any]] = {"request_id": request_id, "user_id": user_id, "route": route}
MAX_CARRIED = 20  # request ids named by one job at most (a batch of 100 events has up to 100)


def current_request_id() -> str | None:
    return request_id.get()


def joined(ids: Iterable[object]) -> str | None:
    """One request id for a batch: the distinct ids, comma-separated, at most MAX_CARRIED of them."""
    distinct = list(dict.fromkeys(str(value) for value in ids if value))[:MAX_CARRIED]
    return ",".join(distinct) or None


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Set some of request_id / user_id / route for the block, as they were afterwards."""
    tokens = [(FIELDS[name], FIELDS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id, user_id and route to each record, unless the call gave them (`extra=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in FIELDS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True
