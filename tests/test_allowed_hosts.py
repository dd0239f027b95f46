"""Requests addressed to a host nobody configured are refused, so no link is ever built from one.

In development (no PUBLIC_BASE_URL) links (`next`, `previous`, the checkout's callback) are built from
the request's Host header. Given the default settings, when a request names another host, then it is
answered 400 `unknown_host` in the contract's error shape and nothing after it runs; the loopback
names (the test client, the browser, the dashboard's socket) and PUBLIC_BASE_URL's host are served;
ALLOWED_HOSTS replaces the loopback names (`*` accepts any, `.example.ng` a domain and its subdomains);
the health probes answer whatever they are addressed by.
"""

from dataclasses import replace

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from models.foundation.settings import load_settings

from .conftest import make_settings
from .contract_support import assert_error
from .factories import CategoryFactory


@pytest.fixture
def reconfigure(app):
    def apply(**changes):
        app.settings["config"] = replace(app.settings["config"], **changes)

    return apply


async def listing(api, host):
    return await api.get("/api/categories/?page_size=1", headers={"Host": host})


@pytest.mark.gen_test
async def test_a_request_to_an_unknown_host_is_refused_and_builds_no_link(api):
    CategoryFactory.create_batch(2)

    response = await listing(api, "evil.example")

    assert_error(response, 400, "unknown_host")
    assert "evil.example" not in str(response.data)


@pytest.mark.gen_test
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
async def test_loopback_names_on_any_port_are_served(api, http_port, host):
    CategoryFactory.create_batch(2)

    response = await listing(api, f"{host}:{http_port}")

    assert response.status == 200, response
    assert response.data["next"].startswith(f"http://{host}:{http_port}/api/categories/")


@pytest.mark.gen_test
async def test_every_method_and_the_socket_are_refused_on_an_unknown_host(api, base_url):
    posted = await api.call(
        "POST",
        "/api/auth/login/",
        raw=b'{"email": "a@b.ng", "password": "x"}',
        headers={"Host": "evil.example", "Content-Type": "application/json"},
    )
    assert_error(posted, 400, "unknown_host")
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(
            HTTPRequest(base_url.replace("http", "ws", 1) + "/ws/", headers={"Host": "evil.example"})
        )
    assert refused.value.code == 400


@pytest.mark.gen_test
async def test_the_public_host_is_served_and_allowed_hosts_replaces_the_loopback_names(api, reconfigure):
    CategoryFactory.create_batch(2)
    reconfigure(public_base_url="https://api.serviceman.ng", allowed_hosts=(".serviceman.ng",))

    public = await listing(api, "api.serviceman.ng")
    subdomain = await listing(api, "admin.serviceman.ng:8443")
    apex = await listing(api, "serviceman.ng")
    loopback = await listing(api, "localhost")
    lookalike = await listing(api, "evilserviceman.ng")

    assert [r.status for r in (public, subdomain, apex)] == [200, 200, 200]
    assert public.data["next"].startswith("https://api.serviceman.ng/")  # PUBLIC_BASE_URL, not the Host
    assert_error(loopback, 400, "unknown_host")
    assert_error(lookalike, 400, "unknown_host")


@pytest.mark.gen_test
async def test_a_star_accepts_any_host(api, reconfigure):
    reconfigure(allowed_hosts=("*",))
    assert (await listing(api, "anything.example")).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
async def test_health_probes_answer_whatever_host_they_are_addressed_by(api, path):
    response = await api.get(path, headers={"Host": "10.1.2.3:8000"})
    assert response.status == 200, response


def test_allowed_hosts_is_read_from_the_environment():
    settings = load_settings({"ALLOWED_HOSTS": " API.Example.ng , [::1] ,.example.ng."}, read_dotenv=False)
    assert settings.allowed_hosts == ("api.example.ng", "::1", ".example.ng")
    assert make_settings().accepted_hosts == ("localhost", "127.0.0.1", "::1")
    assert make_settings(PUBLIC_BASE_URL="https://Api.Serviceman.ng").accepted_hosts[0] == "api.serviceman.ng"
