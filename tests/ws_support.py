"""Websocket clients for the tests: the `sockets` fixture and JSON send/receive helpers."""
import asyncio
import json

import pytest
import tornado.httpclient
from tornado.websocket import websocket_connect

WAIT = 5  # seconds: the longest any expected message may take


async def send(ws, message):
    await ws.write_message(message if isinstance(message, str) else json.dumps(message))


async def receive(ws, timeout=WAIT):
    """The next message as JSON, or None once the server closed the socket."""
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return None if raw is None else json.loads(raw)


class Sockets:
    def __init__(self, port):
        self.port = port
        self.opened = []

    async def open(self, headers=None):
        request = tornado.httpclient.HTTPRequest(f"ws://localhost:{self.port}/ws/", headers=headers or {})
        ws = await websocket_connect(request)
        self.opened.append(ws)
        return ws

    async def signed_in(self, token):
        """A socket past `auth`; returns (socket, the ready message)."""
        ws = await self.open()
        await send(ws, {"type": "auth", "token": token})
        ready = await receive(ws)
        assert ready is not None and ready["type"] == "ready", (ready, ws.close_code, ws.close_reason)
        return ws, ready

    async def authenticated(self, token):
        return (await self.signed_in(token))[0]


@pytest.fixture
def sockets(http_port):
    """`await sockets.signed_in(token)`: websockets to this test's server, closed after the test."""
    holder = Sockets(http_port)
    yield holder
    for ws in holder.opened:
        ws.close()
