"""Signing out while Redis is down (a restart, a failover): the announcement that closes the
session's sockets is lost, yet the sockets close once the web process's push feed is back.

Given a web process in Redis mode holding sockets of two dashboard sessions of one user, when Redis
stops, one session signs out (its row is revoked; the push that would close its socket fails) and
Redis comes back, then the hub, resubscribing, looks every socket's session up again: the signed-out
session's socket is closed with 4003 and the other session's socket stays open.
"""

import pytest

from handlers.web import sessions
from handlers.web.hub import CLOSE_SESSION_ENDED
from server.app import make_app
from workers import runtime

from .conftest import make_settings
from .dashboard_support import Visitor, sign_out
from .factories import ClientFactory
from .pipeline_support import PrivateRedis
from .ws_support import receive, send

pytestmark = pytest.mark.faults
BACK_WITHIN = 15  # seconds: the feed retries every second; the lookup is one query


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def app(private_redis, io_loop, database):
    application = make_app(make_settings(REDIS_URL=private_redis.url), bind_database=False)
    yield application
    io_loop.run_sync(application.settings["hub"].close)
    runtime.reset()


@pytest.mark.gen_test(timeout=60)
async def test_a_sign_out_unheard_while_redis_was_down_still_closes_its_socket(
    base_url, http_server, sockets, private_redis
):
    user = ClientFactory()
    browsers = [Visitor(base_url), Visitor(base_url)]
    opened = []
    for browser in browsers:
        await browser.sign_in(user.email)
        cookie = f"{sessions.SESSION_COOKIE}={browser.cookies[sessions.SESSION_COOKIE]}"
        ws = await sockets.open(headers={"Cookie": cookie, "Origin": f"http://localhost:{sockets.port}"})
        assert (await receive(ws))["type"] == "ready"
        opened.append(ws)
    signed_out, other = opened

    private_redis.stop()
    await sign_out(browsers[0])  # ended in the database; the close announcement cannot be published
    private_redis.start()

    assert await receive(signed_out, timeout=BACK_WITHIN) is None
    assert signed_out.close_code == CLOSE_SESSION_ENDED
    await send(other, {"type": "ping"})
    assert await receive(other) == {"type": "pong"}
