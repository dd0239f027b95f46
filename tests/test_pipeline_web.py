"""Websocket pushes in Redis mode: through pub/sub to a socket on this web process or another one."""
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import tornado.httpclient
from tornado.websocket import websocket_connect

from server.app import make_app
from models.foundation.clock import platform_today
from handlers.web.executor import call_with_connection
from workers import runtime

from .conftest import TEST_DATABASE_URL, make_settings
from .factories import ClientFactory
from .pipeline_support import free_port, use_pipeline


@pytest.fixture
def redis_settings(redis_url):
    return make_settings(REDIS_URL=redis_url)


@pytest.fixture
def app(redis_settings, database):
    application = make_app(redis_settings, bind_database=False)
    yield application
    asyncio.get_event_loop().run_until_complete(application.settings["hub"].close())
    runtime.reset()


async def connect(url, token):
    ws = await websocket_connect(url)
    await ws.write_message(json.dumps({"type": "auth", "token": token}))
    ready = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert ready["type"] == "ready"
    return ws


async def next_message(ws):
    return json.loads(await asyncio.wait_for(ws.read_message(), 10))


async def book_and_deliver(api, redis_settings, client, category):
    response = await api.post("/api/requests/", {
        "category_id": category.id, "booking_date": str(platform_today(redis_settings.zone) + timedelta(days=4)),
        "address": "9 Broad Street, Lagos", "description": "Socket sparks"}, user=client)
    assert response.status == 201
    pipeline = use_pipeline(redis_settings, redis_settings.redis_url)
    loop = asyncio.get_running_loop()
    # dispatcher + worker, off the loop serving sockets; the thread's pooled connection goes back after
    await loop.run_in_executor(None, call_with_connection, pipeline.run)
    return response.data


@pytest.mark.gen_test(timeout=30)
async def test_every_socket_of_the_recipient_gets_the_push_through_redis(api, http_port, redis_settings, category):
    client, bystander = ClientFactory(), ClientFactory()
    url = f"ws://localhost:{http_port}/ws/"
    first, second = await connect(url, api.token(client)), await connect(url, api.token(client))
    other = await connect(url, api.token(bystander))

    request = await book_and_deliver(api, redis_settings, client, category)

    for ws in (first, second):
        pushed = await next_message(ws)
        assert pushed["type"] == "notification"
        assert pushed["notification"]["service_request_id"] == request["id"]
        assert await next_message(ws) == {"type": "unread_count", "count": 1}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(other.read_message(), 0.3)


@pytest.fixture
def second_web_process(redis_settings):
    """Another `python -m server serve` process on the same database and Redis."""
    yield from serve_another_web_process(redis_settings)


def serve_another_web_process(redis_settings, **extra_env):
    """Yield the port of a `python -m server serve` process on the same database and Redis."""
    port = free_port()
    env = {**os.environ, "ENV": "test", "SECRET_KEY": redis_settings.secret_key, "DATABASE_URL": TEST_DATABASE_URL,
           "REDIS_URL": redis_settings.redis_url, "LOG_LEVEL": "WARNING", **extra_env}
    process = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", str(port)], env=env,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
    deadline = time.monotonic() + 20
    while True:  # a new process has no readiness event to await; poll its health, bounded
        try:
            tornado.httpclient.HTTPClient().fetch(f"http://127.0.0.1:{port}/healthz")
            break
        except Exception as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the second web process did not start") from exc
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


@pytest.mark.gen_test(timeout=40)
async def test_a_push_reaches_a_socket_held_by_another_web_process(api, second_web_process, redis_settings, category):
    client = ClientFactory()
    ws = await connect(f"ws://127.0.0.1:{second_web_process}/ws/", api.token(client))

    request = await book_and_deliver(api, redis_settings, client, category)

    pushed = await next_message(ws)
    assert pushed["type"] == "notification"
    assert pushed["notification"]["service_request_id"] == request["id"]
