"""Websocket clients for the tests: the `sockets` fixture, JSON send/receive helpers, and how a socket
whose session ended is closed."""

import asyncio
import json

import pytest
import tornado.httpclient
from tornado.websocket import websocket_connect

WAIT = 5  # seconds: the longest any expected message may take
QUIET = 0.3  # seconds: how long "nothing arrives" is watched for
CLOSE_SESSION_ENDED = 4003


async def send(ws, message):
    await ws.write_message(message if isinstance(message, str) else json.dumps(message))


async def receive(ws, timeout=WAIT):
    """The next message as JSON, or None once the server closed the socket."""
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def assert_nothing_arrives(ws):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.read_message(), QUIET)


async def assert_closed_for_session_end(ws, may_first_receive=()):
    """Closed with 4003; only notifications of the types named may arrive before the close (the
    suspension's own notice races the close, and either order is right)."""
    message = await receive(ws)
    while (
        message is not None
        and message.get("type") in ("notification", "unread_count")
        and (
            message.get("notification", {}).get("notification_type") in may_first_receive
            or (message["type"] == "unread_count" and may_first_receive)
        )
    ):
        message = await receive(ws)
    assert message is None, f"the socket should have been closed, got {message}"
    assert ws.close_code == CLOSE_SESSION_ENDED and "session ended" in ws.close_reason


async def open_signed_in(url, token, timeout=WAIT, headers=None):
    """A socket to `url` past `auth`; returns (socket, the ready message)."""
    ws = await websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers or {}))
    await send(ws, {"type": "auth", "token": token})
    ready = await receive(ws, timeout)
    assert ready is not None and ready["type"] == "ready", (ready, ws.close_code, ws.close_reason)
    return ws, ready


class Sockets:
    """Sockets to this test's server, or with `url=` to another web process."""

    def __init__(self, port):
        self.port = port
        self.opened = []

    async def open(self, headers=None, url=None):
        url = url or f"ws://localhost:{self.port}/ws/"
        ws = await websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers or {}))
        self.opened.append(ws)
        return ws

    async def signed_in(self, token, url=None, timeout=WAIT):
        """A socket past `auth`, closed after the test; returns (socket, the ready message)."""
        ws, ready = await open_signed_in(url or f"ws://localhost:{self.port}/ws/", token, timeout)
        self.opened.append(ws)
        return ws, ready

    async def authenticated(self, token, url=None, timeout=WAIT):
        return (await self.signed_in(token, url, timeout))[0]


@pytest.fixture
def sockets(http_port):
    """`await sockets.signed_in(token)`: websockets to this test's server, closed after the test."""
    holder = Sockets(http_port)
    yield holder
    for ws in holder.opened:
        ws.close()
