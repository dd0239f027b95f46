"""The one place Redis clients are built, sync and asyncio, from REDIS_URL.

A rediss:// URL already carries the certificate policy (REDIS_SSL_CERT_REQS, added by
models/foundation/settings.py as `?ssl_cert_reqs=`), so every client built from the URL applies it, including the
ones libraries build from the URL themselves (the rate limits' `limits` storage)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import redis.asyncio


def connect(url: str, **options: Any) -> "redis.Redis":
    """A redis.Redis for `url`; `options` are redis-py's (socket_timeout, socket_connect_timeout...)."""
    import redis

    return redis.Redis.from_url(url, **options)


def connect_async(url: str, **options: Any) -> "redis.asyncio.Redis":
    """A redis.asyncio.Redis for `url`."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url, **options)
