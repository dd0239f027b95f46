"""Logging for every process: text for people (the default) or LOG_FORMAT=json for a log pipeline,
one object a line (twelve-factor: written to stderr, routed by the platform).

A JSON line holds time (UTC, ISO 8601), level, logger, message, request_id, user_id and route (from
models/foundation/log_context.py: set for a request, and for the jobs it caused), plus what a call adds
with `extra=` (the access log: status, duration_s, method, path, client_ip). What is logged is chosen
where it is logged: ids, never a token, password, email address or request body (the access log names
the path without its query string, which may hold a token).
"""

import logging

from pythonjsonlogger.json import JsonFormatter

from models.foundation.log_context import ContextFilter

JSON_FIELDS = ["levelname", "name", "message", "request_id", "user_id", "route"]
RENAMED = {"levelname": "level", "name": "logger"}


class TextFormatter(logging.Formatter):
    """The usual line, with the request id in brackets when there is one."""

    def format(self, record):
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            head, sep, rest = line.partition("\n")  # after the message, before any traceback
            line = f"{head} [request {request_id}]{sep}{rest}"
        return line


def formatter(log_format):
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields=RENAMED, timestamp="time", json_ensure_ascii=False)
    return TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")


def configure_logging(level, log_format="text"):
    """One handler on the root logger (stderr), as logging.basicConfig does it: nothing changes when
    the root logger already has handlers (a test runner's capture)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level, handlers=[handler])
    return handler
