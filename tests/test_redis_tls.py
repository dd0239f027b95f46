"""rediss:// as managed providers give it: a real redis-server speaking TLS on loopback with a
self-signed certificate (Heroku Redis's kind). With REDIS_SSL_CERT_REQS=none every client the project
builds from the URL works; with the default ("required") start-up says it is a certificate problem."""

import asyncio

import pytest

from handlers.web import rate_limits
from models.actions import health
from models.foundation import redis_clients
from models.foundation.errors import RateLimited
from models.foundation.settings import ConfigurationError, load_settings, redis_url_with_cert_policy
from server.startup import StartupError, check_redis
from workers.transport import RedisTransport

from .conftest import make_settings


def test_with_the_setting_every_client_built_from_the_url_works(tls_redis):
    settings = make_settings(REDIS_URL=tls_redis, REDIS_SSL_CERT_REQS="none", RATE_LIMIT_LOGIN="2/minute")

    check_redis(settings.redis_url)  # start-up
    transport = RedisTransport(settings.redis_url)  # stream, RQ, pushes
    transport.publish_event(1)
    assert transport.redis.xlen("serviceman:events") == 1
    assert health.redis_state(settings) == "ok"

    async def async_clients():
        client = redis_clients.connect_async(settings.redis_url)  # the web process's push feed
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        limiter = rate_limits.RateLimits(settings)  # `limits` builds its own client from the URL
        for _ in range(2):
            await limiter.check("login", "198.51.100.1", "email:ada@example.ng")
        with pytest.raises(RateLimited):  # counted in the TLS Redis, not failing open
            await limiter.check("login", "198.51.100.1", "email:ada@example.ng")

    asyncio.run(async_clients())
    transport.redis.flushdb()


def test_without_the_setting_start_up_names_the_certificate_problem(tls_redis):
    settings = make_settings(REDIS_URL=tls_redis)  # REDIS_SSL_CERT_REQS unset: "required"

    with pytest.raises(StartupError) as stopped:
        check_redis(settings.redis_url)

    message = str(stopped.value)
    assert "TLS certificate" in message and "REDIS_SSL_CERT_REQS=none" in message, message
    assert "is redis-server running" not in message
    assert health.redis_state(settings) == "unavailable"


def test_the_policy_rides_on_rediss_urls_only_and_an_explicit_one_wins():
    assert redis_url_with_cert_policy("redis://h:6379/0", "none") == "redis://h:6379/0"
    assert redis_url_with_cert_policy("rediss://:pw@h:6380/0", "none") == "rediss://:pw@h:6380/0?ssl_cert_reqs=none"
    assert (
        redis_url_with_cert_policy("rediss://h/0?ssl_cert_reqs=required", "none")
        == "rediss://h/0?ssl_cert_reqs=required"
    )
    assert load_settings({"REDIS_URL": "rediss://h:6380/0"}).redis_url == "rediss://h:6380/0?ssl_cert_reqs=required"
    with pytest.raises(ConfigurationError, match="REDIS_SSL_CERT_REQS"):
        load_settings({"REDIS_URL": "rediss://h/0", "REDIS_SSL_CERT_REQS": "sometimes"})
