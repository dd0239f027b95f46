"""Dependency checks for /healthz."""
import logging

import peewee

from ..db import database

log = logging.getLogger("serviceman.health")


def _database_ok():
    try:
        return peewee.Select(columns=[peewee.Value(1)]).bind(database).scalar() == 1
    except peewee.PeeweeException:
        log.exception("database health check failed")
        return False


def _redis_state(settings):
    if not settings.redis_url:
        return "embedded"
    import redis

    try:
        redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        return "ok"
    except redis.RedisError:
        log.exception("redis health check failed")
        return "unavailable"


def health(settings):
    body = {"database": "ok" if _database_ok() else "unavailable", "redis": _redis_state(settings)}
    healthy = body["database"] == "ok" and body["redis"] in ("ok", "embedded")
    body = {"status": "ok" if healthy else "unavailable", **body}
    return (200 if healthy else 503), body
