"""A socket whose client cannot keep up is dropped; the user's other sockets still get every push."""
import asyncio
import json

import pytest
from tornado.websocket import websocket_connect

import handlers.websocket

from .factories import ClientFactory


async def connect(port, token):
    ws = await websocket_connect(f"ws://localhost:{port}/ws/")
    await ws.write_message(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await asyncio.wait_for(ws.read_message(), 5))["type"] == "ready"
    return ws


@pytest.mark.gen_test
async def test_a_socket_that_cannot_buffer_the_push_is_dropped_and_others_still_receive(
        api, app, http_port, monkeypatch):
    client = ClientFactory()
    monkeypatch.setattr(handlers.websocket, "MAX_BUFFERED_BYTES", 60)  # this socket is "slow"
    slow = await connect(http_port, api.token(client))
    monkeypatch.undo()
    healthy = await connect(http_port, api.token(client))
    hub = app.settings["hub"]
    assert hub.connected(client.id) == 2

    hub.deliver_local(client.id, {"type": "notification", "notification": {"id": 1, "title": "x" * 500}})

    assert await asyncio.wait_for(slow.read_message(), 5) is None  # dropped
    pushed = json.loads(await asyncio.wait_for(healthy.read_message(), 5))
    assert pushed["notification"]["id"] == 1
    assert hub.connected(client.id) == 1
