"""A socket whose client cannot keep up is dropped; the user's other sockets still get every push."""

import asyncio
import json

import pytest

import handlers.websocket

from .factories import ClientFactory


@pytest.mark.gen_test
async def test_a_socket_that_cannot_buffer_the_push_is_dropped_and_others_still_receive(api, app, sockets, monkeypatch):
    client = ClientFactory()
    monkeypatch.setattr(handlers.websocket, "MAX_BUFFERED_BYTES", 60)  # this socket is "slow"
    slow = await sockets.authenticated(api.token(client))
    monkeypatch.undo()
    healthy = await sockets.authenticated(api.token(client))
    hub = app.settings["hub"]
    assert hub.connected(client.id) == 2

    hub.deliver_local(client.id, {"type": "notification", "notification": {"id": 1, "title": "x" * 500}})

    assert await asyncio.wait_for(slow.read_message(), 5) is None  # dropped
    pushed = json.loads(await asyncio.wait_for(healthy.read_message(), 5))
    assert pushed["notification"]["id"] == 1
    assert hub.connected(client.id) == 1
