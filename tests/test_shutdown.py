"""The pieces of the web process's graceful shutdown, in process (server/shutdown.py): the HTTP server
stops accepting and waits for its requests in progress alone, and the hub closes every socket with
1012. tests/test_faults_web.py signals the real process under load."""

import asyncio
import json
import socket

import pytest
import tornado.web

from handlers.web.hub import CLOSE_SERVICE_RESTART
from models.foundation.settings import ConfigurationError
from server.shutdown import DrainingHTTPServer

from .conftest import make_settings
from .pipeline_support import free_port
from .raw_http import REFUSED, request
from .ws_support import receive, send


class HeldHandler(tornado.web.RequestHandler):
    """Answers once the test releases it: a request in progress for as long as the test wants."""

    async def get(self):
        self.settings["arrived"].set()
        await self.settings["release"].wait()
        self.write("done")


@pytest.fixture
def held_server(io_loop):
    app = tornado.web.Application([(r"/held", HeldHandler)], arrived=asyncio.Event(), release=asyncio.Event())
    server = DrainingHTTPServer(app)
    port = free_port()
    server.listen(port, address="127.0.0.1")
    yield server, app.settings, port
    server.stop()


def idle_connection(port):
    """A keep-alive connection that has sent nothing (yet)."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(5)
    return conn


@pytest.mark.gen_test
async def test_a_draining_server_refuses_new_connections_and_answers_the_requests_in_progress(held_server):
    server, settings, port = held_server
    in_progress = asyncio.ensure_future(request(port, "GET", "/held"))
    await settings["arrived"].wait()
    idle = idle_connection(port)
    await asyncio.sleep(0.05)  # let the loop accept it
    server.stop_accepting()
    assert server.requests_in_progress == 1
    drained = asyncio.ensure_future(server.drain(asyncio.get_running_loop().time() + 5))

    assert (await request(port, "GET", "/held")).kind == REFUSED
    assert not drained.done()
    settings["release"].set()
    answer = await in_progress
    assert (answer.status, answer.kind) == (200, "answered")
    assert await drained == 0  # nothing cut off
    assert idle.recv(1) == b""  # the idle connection was closed once nothing was in progress
    idle.close()


@pytest.mark.gen_test
async def test_a_request_arriving_on_an_accepted_connection_during_the_drain_is_answered(held_server):
    server, settings, port = held_server
    idle = idle_connection(port)
    await asyncio.sleep(0.05)
    server.stop_accepting()
    idle.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")  # bytes in transit as the drain starts
    drained = asyncio.ensure_future(server.drain(asyncio.get_running_loop().time() + 5))
    await settings["arrived"].wait()
    settings["release"].set()
    assert await drained == 0
    reply = await asyncio.get_running_loop().run_in_executor(None, idle.recv, 4096)
    assert reply.startswith(b"HTTP/1.1 200") and b"Connection: close" in reply, reply  # kept alive no more
    idle.close()


@pytest.mark.gen_test
async def test_the_drain_gives_up_at_its_deadline(held_server):
    server, settings, port = held_server
    in_progress = asyncio.ensure_future(request(port, "GET", "/held"))
    await settings["arrived"].wait()
    server.stop_accepting()
    assert await server.drain(asyncio.get_running_loop().time() + 0.2) == 1  # cut off
    assert (await in_progress).kind == "cut_off"
    settings["release"].set()


@pytest.mark.gen_test
async def test_the_hub_closes_every_socket_with_1012_and_refuses_new_ones(app, sockets, api, client_user):
    hub = app.settings["hub"]
    signed_in = [await sockets.authenticated(api.token(client_user)) for _ in range(3)]
    not_yet = await sockets.open()
    await asyncio.sleep(0.05)  # the handshake's open() ran
    assert await hub.close_sockets(timeout=5) == 0
    for ws in [*signed_in, not_yet]:
        assert await receive(ws) is None and ws.close_code == CLOSE_SERVICE_RESTART
    late = await sockets.open()
    await send(late, json.dumps({"type": "auth", "token": api.token(client_user)}))
    assert await receive(late) is None and late.close_code == CLOSE_SERVICE_RESTART
    assert not hub.open_sockets and not hub.sockets


@pytest.mark.parametrize("value", ["26", "-1", "nan"])
def test_a_grace_heroku_would_cut_short_is_refused_at_start_up(value):
    with pytest.raises(ConfigurationError, match="SHUTDOWN_GRACE_SECONDS"):
        make_settings(SHUTDOWN_GRACE_SECONDS=value)
    assert make_settings(SHUTDOWN_GRACE_SECONDS="25").shutdown_grace_seconds == 25
