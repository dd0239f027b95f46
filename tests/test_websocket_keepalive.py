"""Keep-alive: the hub pings every signed-in socket once per WS_PING_SECONDS, one slot of them per
tick, and closes a socket whose previous ping went unanswered (its client vanished without a close).

Given a short ping interval, when a client answers pings (as every websocket client does), then its
socket stays open and keeps working; when a client stops answering, then the server closes its
socket within two intervals and forgets it, and the user's other sockets stay.
"""

import asyncio

import pytest
import tornado.websocket

from handlers.web.hub import Hub

from .conftest import make_settings, serve_app
from .factories import ClientFactory
from .ws_support import receive, send

PING_SECONDS = 0.2


@pytest.fixture
def app(database):
    yield from serve_app(make_settings(WS_PING_SECONDS=str(PING_SECONDS)))


@pytest.mark.gen_test(timeout=20)
async def test_a_socket_that_answers_pings_stays_open(api, app, sockets):
    client = ClientFactory()
    ws = await sockets.authenticated(api.token(client))
    hub = app.settings["hub"]

    [socket] = hub.sockets[client.id]
    pings, answered = [], []
    ping, on_pong = socket.ping, socket.on_pong
    socket.ping = lambda: pings.append(1) or ping()
    socket.on_pong = lambda data: answered.append(1) or on_pong(data)
    while len(answered) < 3:  # three intervals' pings, each answered
        await asyncio.sleep(PING_SECONDS / 4)
    await send(ws, {"type": "ping"})

    assert (await receive(ws))["type"] == "pong"
    assert hub.connected(client.id) == 1
    assert len(pings) - len(answered) <= 1  # the last ping's answer may still be on its way


@pytest.mark.gen_test(timeout=20)
async def test_a_socket_whose_client_stopped_answering_is_closed_and_forgotten(api, app, sockets, monkeypatch):
    client = ClientFactory()
    hub = app.settings["hub"]
    alive = await sockets.authenticated(api.token(client))
    silent = await sockets.authenticated(api.token(client))
    assert hub.connected(client.id) == 2
    # From now on no client of this process answers a ping (the server never receives pings).
    silent_protocol = silent.protocol
    answer = tornado.websocket.WebSocketProtocol13._send_pong
    monkeypatch.setattr(
        tornado.websocket.WebSocketProtocol13,
        "_send_pong",
        lambda self, data: None if self is silent_protocol else answer(self, data),
    )

    closed = await asyncio.wait_for(silent.read_message(), 4 * PING_SECONDS + 2)

    assert closed is None and silent.close_reason == "ping timed out"
    assert hub.connected(client.id) == 1
    assert sum(len(slot) for slot in hub._ping_slots) == 1
    await send(alive, {"type": "ping"})
    assert (await receive(alive))["type"] == "pong"


def test_sockets_are_spread_over_the_slots_and_a_zero_interval_pings_nothing():
    class Socket:
        def keep_alive(self):
            return True

    hub, off = Hub(ping_seconds=20), Hub(ping_seconds=0)
    hub._pinger = off._pinger = False  # no timer: this test ticks by hand
    many = [Socket() for _ in range(40)]
    for socket in many:
        hub._keep_alive(socket, 1)
        off._keep_alive(socket, 1)

    assert [len(slot) for slot in hub._ping_slots] == [2] * 20
    assert sum(len(slot) for slot in off._ping_slots) == 0
    hub.remove(1, many[0])
    assert sum(len(slot) for slot in hub._ping_slots) == 39
