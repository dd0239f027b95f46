"""A page on another site cannot ride the dashboard's session cookie into the websocket (issue 21,
finding 11: the probe's cross-site socket attempts, kept as regression tests).

A browser attaches `serviceman_session` to a socket opened from any page, so the cookie counts only
when the handshake's Origin is this server's own or an allowed dashboard origin (handlers/web/sessions.py
`same_origin`). From anywhere else the socket is an anonymous one: it must send a token like any API
client, and the deadline closes it otherwise. Near-misses of the allowed names are refused as well."""

import pytest

import handlers.websocket

from .conftest import make_settings, serve_app, session_cookie
from .ws_support import receive, send

DASHBOARD = "http://dash.example"
HOSTILE = [
    "http://evil.example",
    "null",
    "http://dash.example.evil.example",
    "http://evil-dash.example",
    "https://dash.example",
    "http://dash.example:8080",
    "http://localhost:{port}.evil.example",
    "http://localhost:{port}@evil.example",
    "http://evil.example/http://localhost:{port}",
    "http://localhost:{other_port}",
]


@pytest.fixture
def app(database):
    yield from serve_app(make_settings(CORS_ALLOWED_ORIGINS=DASHBOARD))


def with_cookie(settings, user, origin):
    return {"Cookie": f"serviceman_session={session_cookie(settings, user)}", "Origin": origin}


@pytest.mark.gen_test
@pytest.mark.parametrize("origin", HOSTILE)
async def test_a_cross_site_socket_never_signs_in_with_the_cookie(api, app, sockets, client_user, monkeypatch, origin):
    monkeypatch.setattr(handlers.websocket, "AUTH_DEADLINE_SECONDS", 0.2)
    origin = origin.format(port=sockets.port, other_port=sockets.port + 1)
    ws = await sockets.open(headers=with_cookie(api.settings, client_user, origin))

    assert await receive(ws) is None  # no "ready", no notifications: the deadline closed it
    assert ws.close_code == handlers.websocket.CLOSE_AUTH_TIMEOUT
    assert app.settings["hub"].connected(client_user.id) == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
async def test_a_cross_site_socket_cannot_resume_on_the_cookie(api, sockets, client_user, origin):
    ws = await sockets.open(headers=with_cookie(api.settings, client_user, origin))
    await send(ws, {"type": "resume", "since": 0})
    assert await receive(ws) is None
    assert ws.close_code == handlers.websocket.CLOSE_UNAUTHENTICATED


@pytest.mark.gen_test
@pytest.mark.parametrize("origin", [DASHBOARD, "http://localhost:{port}"])
async def test_the_dashboards_own_origins_still_sign_in_with_the_cookie(api, sockets, client_user, origin):
    origin = origin.format(port=sockets.port)
    ws = await sockets.open(headers=with_cookie(api.settings, client_user, origin))
    assert (await receive(ws))["type"] == "ready"
