"""Websocket pushes in Redis mode: through pub/sub to a socket on this web process or another one."""

import asyncio
import json

import pytest

from handlers.web.executor import call_with_connection

from .booking_support import book
from .factories import ClientFactory
from .pipeline_support import use_pipeline
from .redis_web_support import app, redis_settings, second_web_process  # noqa: F401 (fixtures)


async def next_message(ws):
    return json.loads(await asyncio.wait_for(ws.read_message(), 10))


async def book_and_deliver(api, redis_settings, client, category):
    request = await book(api, client, category, days_ahead=4)
    pipeline = use_pipeline(redis_settings, redis_settings.redis_url)
    loop = asyncio.get_running_loop()
    # dispatcher + worker, off the loop serving sockets; the thread's pooled connection goes back after
    await loop.run_in_executor(None, call_with_connection, pipeline.run)
    return request


@pytest.mark.gen_test(timeout=30)
async def test_every_socket_of_the_recipient_gets_the_push_through_redis(api, sockets, redis_settings, category):
    client, bystander = ClientFactory(), ClientFactory()
    first = await sockets.authenticated(api.token(client), timeout=10)
    second = await sockets.authenticated(api.token(client), timeout=10)
    other = await sockets.authenticated(api.token(bystander), timeout=10)

    request = await book_and_deliver(api, redis_settings, client, category)

    for ws in (first, second):
        pushed = await next_message(ws)
        assert pushed["type"] == "notification"
        assert pushed["notification"]["service_request_id"] == request["id"]
        assert await next_message(ws) == {"type": "unread_count", "count": 1}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(other.read_message(), 0.3)


@pytest.mark.gen_test(timeout=40)
async def test_a_push_reaches_a_socket_held_by_another_web_process(
    api, sockets, second_web_process, redis_settings, category
):
    client = ClientFactory()
    ws = await sockets.authenticated(api.token(client), url=f"ws://127.0.0.1:{second_web_process}/ws/", timeout=10)

    request = await book_and_deliver(api, redis_settings, client, category)

    pushed = await next_message(ws)
    assert pushed["type"] == "notification"
    assert pushed["notification"]["service_request_id"] == request["id"]
