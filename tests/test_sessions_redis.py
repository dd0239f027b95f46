"""Account emails and session ends in Redis mode (production's shape).

Given the web app with REDIS_URL set, when a reset is asked for, then the answer only queues a job
(as fast for any address) and the RQ worker mails known addresses only; when a user is deactivated,
then its socket held by ANOTHER web process is closed with 4003 through Redis pub/sub; so is the
socket a dashboard session opened there when that session signs out.
"""

import asyncio
import time

import pytest
import tornado.httpclient
from tornado.websocket import websocket_connect

from handlers.web import sessions
from handlers.web.executor import call_with_connection
from handlers.web.hub import CLOSE_SESSION_ENDED

from .account_support import RESET, assert_same_timing, sign_in
from .conftest import make_settings
from .dashboard_support import Visitor, sign_out
from .factories import AdminFactory, ClientFactory
from .pipeline_support import use_pipeline
from .redis_web_support import app, second_web_process  # noqa: F401 (fixtures)
from .ws_support import assert_closed_for_session_end, receive


@pytest.fixture
def redis_settings(redis_url, mailbox):
    return make_settings(
        REDIS_URL=redis_url, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false"
    )


@pytest.mark.gen_test(timeout=120)
async def test_the_answers_only_queue_and_the_worker_mails_known_addresses(api, app, redis_settings, mailbox):
    known = ClientFactory()
    await assert_same_timing(api, RESET, known.email)
    assert mailbox.messages == []  # nothing was sent by the web process itself

    pipeline = use_pipeline(redis_settings, redis_settings.redis_url)

    def work_until_mailed(count, deadline=30):
        # The last answers may still be queueing their job (they answer first): work in bursts.
        ends = time.monotonic() + deadline
        while len(mailbox.messages) < count and time.monotonic() < ends:
            call_with_connection(pipeline.work)
            mailbox.wait_for(lambda m: len(mailbox.messages) >= count, timeout=0.2)

    await asyncio.get_running_loop().run_in_executor(None, work_until_mailed, 30)
    assert {m.rcpt_tos[0] for m in mailbox.messages} == {known.email}
    assert len(mailbox.messages) == 30


@pytest.mark.gen_test(timeout=60)
async def test_a_socket_on_another_web_process_is_closed_through_redis(api, app, sockets, second_web_process):
    user, admin = ClientFactory(), AdminFactory()
    pair = await sign_in(api, user)
    ws = await sockets.authenticated(pair["access"], url=f"ws://127.0.0.1:{second_web_process}/ws/", timeout=10)

    assert (await api.post(f"/api/admin/users/{user.id}/deactivate/", {}, user=admin)).status == 200

    await assert_closed_for_session_end(ws)


@pytest.mark.gen_test(timeout=60)
async def test_signing_out_closes_that_sessions_socket_on_another_web_process(
    base_url, http_server, second_web_process
):
    user = ClientFactory()
    browser = Visitor(base_url)
    await browser.sign_in(user.email)
    own_origin = f"http://127.0.0.1:{second_web_process}"
    request = tornado.httpclient.HTTPRequest(
        f"ws://127.0.0.1:{second_web_process}/ws/",
        headers={
            "Cookie": f"{sessions.SESSION_COOKIE}={browser.cookies[sessions.SESSION_COOKIE]}",
            "Origin": own_origin,
        },
    )
    ws = await websocket_connect(request)
    assert (await receive(ws))["type"] == "ready"

    await sign_out(browser)

    assert await receive(ws) is None
    assert ws.close_code == CLOSE_SESSION_ENDED and "signed out" in ws.close_reason
