"""Safe settings, reverse proxies and security headers: what a careless deploy or a lying client
can no longer do."""

import ipaddress
from dataclasses import replace
from unittest.mock import Mock

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from handlers.base import API_CSP
from handlers.catalog import CategoryListHandler
from handlers.docs import SWAGGER_INIT
from handlers.web.proxies import client_address
from models.foundation.settings import DEV_SECRET_KEY, EXAMPLE_SECRET_KEY, ConfigurationError, load_settings

from .conftest import make_settings
from .factories import CategoryFactory
from .settings_support import PRODUCTION, STRONG_SECRET_KEY

PUBLIC_BASE_URL = "https://api.serviceman.ng"
HSTS = "Strict-Transport-Security"


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["Production", "prod", "", "production ", "staging"])
def test_env_must_be_exactly_development_test_or_production(env):
    with pytest.raises(ConfigurationError) as error:
        make_settings(ENV=env)
    assert repr(env) in str(error.value) and "development, test, production" in str(error.value)


def test_the_three_environments_load():
    assert make_settings(ENV="development").env == "development"
    assert make_settings(ENV="test").env == "test"
    assert load_settings(environ=PRODUCTION).is_production


def test_a_good_production_config_starts():
    settings = load_settings(environ=PRODUCTION)
    assert settings.public_base_url == PUBLIC_BASE_URL  # the trailing slash would double in links
    assert settings.bcrypt_rounds == 12 and settings.trusted_proxies == ()


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"SECRET_KEY": "s"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "short-but-not-empty-31-chars-xx"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": EXAMPLE_SECRET_KEY}, "SECRET_KEY is a published development value"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is a published development value"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is missing"),
        ({"DATABASE_URL": "sqlite:///serviceman.sqlite3"}, "DATABASE_URL is SQLite"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is missing"),
        ({"BCRYPT_ROUNDS": "4"}, "BCRYPT_ROUNDS=4 is below 10"),
        ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL is missing"),
        (
            {"PUBLIC_BASE_URL": "api.serviceman.ng"},
            "PUBLIC_BASE_URL 'api.serviceman.ng' is not an absolute http(s) URL",
        ),
    ],
)
def test_production_names_each_problem(override, problem):
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ={**PRODUCTION, **override})
    assert problem in str(error.value)


def test_production_lists_every_problem_at_once():
    with pytest.raises(ConfigurationError) as error:
        load_settings(
            environ={
                **PRODUCTION,
                "SECRET_KEY": "s3cr3t-weak",
                "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
                "BCRYPT_ROUNDS": "9",
                "PUBLIC_BASE_URL": "",
                "PAYSTACK_PUBLIC_KEY": "",
            }
        )
    message = str(error.value)
    for problem in (
        "SECRET_KEY is weak",
        "DATABASE_URL is SQLite",
        "BCRYPT_ROUNDS=9 is below 10",
        "PUBLIC_BASE_URL is missing",
        "PAYSTACK_PUBLIC_KEY is missing",
    ):
        assert problem in message
    assert "s3cr3t-weak" not in message  # a secret, however weak, is never echoed into logs


def test_a_32_character_key_and_10_rounds_are_enough():
    settings = load_settings(environ={**PRODUCTION, "SECRET_KEY": STRONG_SECRET_KEY, "BCRYPT_ROUNDS": "10"})
    assert settings.is_production


def test_trusted_proxies_are_ips_and_networks():
    settings = make_settings(TRUSTED_PROXIES=" 10.0.0.0/8, 127.0.0.1 ,::1,, 2001:db8::/32")
    assert settings.trusted_proxies == tuple(
        ipaddress.ip_network(n) for n in ("10.0.0.0/8", "127.0.0.1/32", "::1/128", "2001:db8::/32")
    )
    assert make_settings(TRUSTED_PROXIES="").trusted_proxies == ()


@pytest.mark.parametrize("entry", ["10.0.0.300", "proxy.internal", "10.0.0.1/8", "10.0.0.0/33", "*"])
def test_a_bad_trusted_proxy_entry_stops_start_up(entry):
    with pytest.raises(ConfigurationError) as error:
        make_settings(TRUSTED_PROXIES=f"127.0.0.1,{entry}")
    assert f"TRUSTED_PROXIES entry {entry!r}" in str(error.value)


# --- client address behind proxies ---------------------------------------------------------------


class FakeRequest:
    def __init__(self, remote_ip, headers=(), protocol="http", host="localhost:8000"):
        self.remote_ip, self.protocol, self.host = remote_ip, protocol, host
        self.headers = HTTPHeaders()
        for name, value in headers:
            self.headers.add(name, value)


BEHIND_PROXY = make_settings(TRUSTED_PROXIES="10.0.0.0/8")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored():
    request = FakeRequest(
        "203.0.113.9", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"), ("X-Real-Ip", "1.2.3.4")]
    )
    assert client_address(request, BEHIND_PROXY) == ("203.0.113.9", "http")
    assert client_address(FakeRequest("10.0.0.1", [("X-Forwarded-For", "1.2.3.4")]), make_settings()) == (
        "10.0.0.1",
        "http",
    )  # no TRUSTED_PROXIES: nobody is trusted


def test_a_trusted_proxy_names_the_client():
    request = FakeRequest("10.0.0.1", [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert client_address(request, BEHIND_PROXY) == ("203.0.113.7", "https")


def test_the_client_cannot_choose_its_address_through_a_trusted_proxy():
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the address it really saw.
    request = FakeRequest("10.0.0.1", [("X-Forwarded-For", "1.1.1.1, 203.0.113.7, 10.0.0.2")])
    assert client_address(request, BEHIND_PROXY)[0] == "203.0.113.7"
    two_headers = FakeRequest("10.0.0.1", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.7")])
    assert client_address(two_headers, BEHIND_PROXY)[0] == "203.0.113.7"


@pytest.mark.parametrize(
    "forwarded_for, expected",
    [
        ("not-an-ip", "10.0.0.1"),
        ("1.1.1.1, garbage", "10.0.0.1"),
        ("203.0.113.7,,", "10.0.0.1"),
        ("10.9.9.9, 10.0.0.2", "10.9.9.9"),  # an internal client: every hop trusted, the first one is it
        ("2001:db8::5", "2001:db8::5"),
    ],
)
def test_forwarded_for_is_validated(forwarded_for, expected):
    request = FakeRequest("10.0.0.1", [("X-Forwarded-For", forwarded_for)])
    assert client_address(request, BEHIND_PROXY)[0] == expected


@pytest.mark.parametrize(
    "proto, expected",
    [
        ("https", "https"),
        ("HTTPS", "https"),
        ("http", "http"),
        ("gopher", "http"),
        ("", "http"),
        ("http, https", "https"),
        (None, "http"),
    ],
)
def test_forwarded_proto_is_only_http_or_https(proto, expected):
    headers = [("X-Forwarded-Proto", proto)] if proto is not None else []
    assert client_address(FakeRequest("10.0.0.1", headers), BEHIND_PROXY)[1] == expected


def test_an_ipv4_mapped_peer_is_matched_against_ipv4_networks():
    request = FakeRequest("::ffff:10.0.0.1", [("X-Forwarded-For", "203.0.113.7")])
    assert client_address(request, BEHIND_PROXY)[0] == "203.0.113.7"


def test_public_url_uses_the_request_origin_only_outside_production():
    origin = "https://evil.example"
    assert make_settings().public_url("/api/x/", origin) == "https://evil.example/api/x/"
    assert make_settings(PUBLIC_BASE_URL=PUBLIC_BASE_URL).public_url("/api/x/", origin) == f"{PUBLIC_BASE_URL}/api/x/"
    unchecked = replace(make_settings(), env="production")  # built without check(): still never the Host
    assert unchecked.public_url("/api/x/", origin) == "/api/x/"


# --- through HTTP --------------------------------------------------------------------------------


@pytest.fixture
def reconfigure(app):
    """Swap the running app's settings (handlers read them per request)."""

    def apply(**changes):
        app.settings["config"] = replace(app.settings["config"], **changes)

    return apply


# Addressed to the public host (any other is refused: tests/test_allowed_hosts.py), forwarded headers forged.
SPOOFING = {
    "Host": "api.serviceman.ng",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-For": "6.6.6.6",
}


def next_link(response):
    assert response.status == 200, response
    return response.data["next"]


def handler_for(app, remote_ip, headers):
    connection = Mock()
    connection.context.remote_ip, connection.context.protocol = remote_ip, "http"
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/api/categories/", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "localhost", **headers}),
        connection=connection,
    )
    return CategoryListHandler(app, request)


def test_handlers_see_the_client_behind_a_trusted_proxy_only(app, reconfigure):
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    direct = handler_for(app, "10.0.0.1", forwarded)
    assert (direct.client_ip, direct.client_protocol) == ("10.0.0.1", "http")
    reconfigure(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    proxied = handler_for(app, "10.0.0.1", forwarded)
    assert (proxied.client_ip, proxied.client_protocol) == ("203.0.113.7", "https")


@pytest.mark.gen_test
async def test_spoofed_forwarded_headers_do_not_change_links_under_public_base_url(api, reconfigure, app):
    assert not app.settings.get("xheaders")  # Tornado would trust X-Forwarded-* from anyone
    CategoryFactory.create_batch(2)
    reconfigure(public_base_url=PUBLIC_BASE_URL)
    link = next_link(await api.get("/api/categories/?page_size=1", headers=SPOOFING))
    assert link == f"{PUBLIC_BASE_URL}/api/categories/?page_size=1&page=2"


@pytest.mark.gen_test
async def test_forwarded_proto_counts_only_from_a_trusted_proxy(api, reconfigure):
    CategoryFactory.create_batch(2)
    headers = {"X-Forwarded-Proto": "https"}
    assert next_link(await api.get("/api/categories/?page_size=1", headers=headers)).startswith("http://localhost:")
    reconfigure(trusted_proxies=(ipaddress.ip_network("127.0.0.1"),))
    assert next_link(await api.get("/api/categories/?page_size=1", headers=headers)).startswith("https://localhost:")


def assert_security_headers(response, csp=API_CSP, production=False):
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == csp
    assert "Server" not in headers
    assert (HSTS in headers) is production
    if production:
        assert headers[HSTS] == "max-age=31536000; includeSubDomains"


@pytest.mark.gen_test
async def test_every_api_answer_carries_the_security_headers(api, monkeypatch):
    ok = await api.get("/api/categories/")
    not_found = await api.get("/api/no-such-thing/")
    not_allowed = await api.delete("/api/categories/")
    invalid = await api.post("/api/auth/login/", {})
    monkeypatch.setattr("models.actions.catalog.active_categories", lambda: 1 / 0)
    crashed = await api.get("/api/categories/")
    assert [r.status for r in (ok, not_found, not_allowed, invalid, crashed)] == [200, 404, 405, 422, 500]
    for response in (ok, not_found, not_allowed, invalid, crashed):
        assert_security_headers(response)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test
async def test_responses_with_tokens_are_never_stored(api, client_user, password):
    registered = await api.post(
        "/api/auth/register/",
        {
            "email": "new@example.ng",
            "password": "long-password-1",
            "first_name": "New",
            "last_name": "User",
            "phone": "+2348012345679",
            "role": "client",
        },
    )
    login = await api.post("/api/auth/login/", {"email": client_user.email, "password": password})
    refreshed = await api.post("/api/auth/refresh/", {"refresh": login.data["refresh"]})
    assert [r.status for r in (registered, login, refreshed)] == [201, 200, 200]
    for response in (registered, login, refreshed):
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_the_docs_page_has_a_csp_swagger_ui_can_live_with(api):
    page = await api.get("/api/docs/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert_security_headers(page, csp=csp)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
    }
    assert 'validatorUrl: "none"' in SWAGGER_INIT  # no badge image from validator.swagger.io


@pytest.mark.gen_test
async def test_docs_assets_carry_the_headers_and_stay_cacheable(api):
    asset = await api.get("/api/docs/assets/swagger-ui.css")
    assert asset.status == 200 and asset.headers["Content-Type"] == "text/css"
    assert_security_headers(asset)
    assert "no-store" not in asset.headers.get("Cache-Control", "")
    missing = await api.get("/api/docs/assets/no-such-file.js")
    assert missing.status == 404
    assert_security_headers(missing)


@pytest.mark.gen_test
async def test_hsts_only_in_production(api, reconfigure):
    assert_security_headers(await api.get("/api/categories/"))
    reconfigure(env="production", public_base_url=PUBLIC_BASE_URL)
    assert_security_headers(await api.get("/api/categories/"), production=True)
    assert_security_headers(await api.get("/api/no-such-thing/"), production=True)
    assert_security_headers(await api.get("/api/docs/assets/swagger-ui.css"), production=True)


@pytest.mark.gen_test
async def test_the_websocket_handshake_carries_the_headers(http_server, sockets):
    ws = await sockets.open()
    assert ws.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in ws.headers
