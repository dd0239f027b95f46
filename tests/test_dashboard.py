"""The dashboard's pages and cookie session over HTTP: sign-in, XSRF, roles, sign-out, and the REST
API with the cookie instead of a Bearer token (the browser walk is tests/test_browser.py)."""

import pytest
import tornado.web

from handlers.dashboard import PAGES, safe_next
from handlers.web import sessions
from handlers.web.hub import CLOSE_SESSION_ENDED
from models import RefreshToken, User
from models.users import Role

from .conftest import make_settings, serve_app, session_cookie
from .dashboard_support import Visitor, sign_out
from .factories import PASSWORD, AdminFactory, ClientFactory, ServicemanFactory
from .ws_support import receive, send


@pytest.fixture
def visitor(http_server, base_url):
    return Visitor(base_url)


@pytest.fixture
def client_account():
    return ClientFactory()


# --- signing in and out --------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_pages_send_a_visitor_without_a_session_to_sign_in(visitor):
    response, _ = await visitor.fetch("/app/")
    assert (response.code, response.headers.get("Location")) == (302, "/app/sign-in/"), _

    response, _ = await visitor.fetch("/app/client/requests/5/")
    assert response.code == 302
    assert response.headers["Location"] == "/app/sign-in/?next=%2Fapp%2Fclient%2Frequests%2F5%2F"


@pytest.mark.gen_test
async def test_the_sign_in_page_sets_a_strict_http_only_xsrf_cookie(visitor):
    response, text = await visitor.fetch("/app/sign-in/")

    assert response.code == 200 and 'id="sign-in-form"' in text
    morsel = visitor.set_cookies["_xsrf"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict"
    assert f'name="_xsrf" value="{visitor.xsrf}"' in text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_signing_in_sets_a_signed_http_only_lax_session_cookie(visitor, settings, client_account):
    response, _ = await visitor.sign_in(client_account.email, next_path="/app/client/book/")

    assert (response.code, response.headers["Location"]) == (302, "/app/client/book/")
    morsel = visitor.set_cookies[sessions.SESSION_COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http in development; https sets it (next test)
    # The user id, session version and the session's server-side row, signed with SECRET_KEY:
    # nothing else can mint or alter one.
    web_session = RefreshToken.get(RefreshToken.user == client_account.id).jti
    assert (
        tornado.web.decode_signed_value(settings.secret_key, sessions.SESSION_COOKIE, morsel.value)
        == f"{client_account.id}:0:{web_session}".encode()
    )
    assert tornado.web.decode_signed_value("another-key", sessions.SESSION_COOKIE, morsel.value) is None
    response, text = await visitor.fetch("/app/client/book/")
    assert response.code == 200 and 'data-page="client-book"' in text


@pytest.mark.gen_test
async def test_the_session_cookie_is_secure_over_https(client_account, database):
    # Behind a trusted TLS proxy the request is https: the cookie must never travel over plain http.
    import tornado.httpserver
    from tornado.testing import bind_unused_port

    application = next(serve := serve_app(make_settings(TRUSTED_PROXIES="127.0.0.1")))
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(application)
    server.add_sockets([sock])
    try:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        await visitor.fetch("/app/sign-in/")
        form = {"_xsrf": visitor.xsrf, "email": client_account.email, "password": PASSWORD}
        response, _ = await visitor.fetch("/app/sign-in/", "POST", form=form, headers={"X-Forwarded-Proto": "https"})
        assert response.code == 302
        assert visitor.set_cookies[sessions.SESSION_COOKIE]["secure"]
    finally:
        server.stop()
        next(serve, None)


@pytest.mark.gen_test
async def test_sign_in_without_the_xsrf_token_is_refused(visitor, client_account):
    await visitor.fetch("/app/sign-in/")
    form = {"email": client_account.email, "password": PASSWORD}
    response, _ = await visitor.fetch("/app/sign-in/", "POST", form=form)
    assert response.code == 403
    assert sessions.SESSION_COOKIE not in visitor.cookies


@pytest.mark.gen_test
async def test_a_wrong_password_shows_the_form_again_with_one_message(visitor, client_account):
    response, text = await visitor.sign_in(client_account.email, password="not-the-password")

    assert response.code == 401
    assert "Email or password is incorrect." in text and f'value="{client_account.email}"' in text
    assert sessions.SESSION_COOKIE not in visitor.cookies


@pytest.mark.gen_test
async def test_a_deactivated_account_cannot_sign_in(visitor, client_account):
    User.update(is_active=False).where(User.id == client_account.id).execute()
    response, text = await visitor.sign_in(client_account.email)
    assert response.code == 401 and "deactivated" in text


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/app/admin/", "/app/admin/"),
        ("/app/client/requests/3/?x=1", "/app/client/requests/3/?x=1"),
        ("https://evil.example/app/", "/app/"),
        ("//evil.example/app/", "/app/"),
        ("/app//evil.example", "/app/"),
        ("/api/auth/me/", "/app/"),
        ("/app/\\evil", "/app/"),
        ("", "/app/"),
        (None, "/app/"),
    ],
)
def test_after_sign_in_only_dashboard_paths_are_followed(target, expected):
    assert safe_next(target) == expected


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "factory, home",
    [(ClientFactory, "/app/client/"), (AdminFactory, "/app/admin/"), (ServicemanFactory, "/app/serviceman/")],
)
async def test_the_dashboard_root_opens_each_roles_main_page(visitor, factory, home):
    user = factory()
    await visitor.sign_in(user.email)
    response, _ = await visitor.fetch("/app/")
    assert response.headers["Location"] == home
    response, _ = await visitor.fetch("/app/sign-in/")  # already signed in
    assert response.headers["Location"] == "/app/"


@pytest.mark.gen_test
async def test_signing_out_needs_the_xsrf_token_and_ends_the_session(visitor, client_account):
    await visitor.sign_in(client_account.email)
    response, _ = await visitor.fetch("/app/sign-out/", "POST", form={})
    assert response.code == 403  # a foreign page cannot sign anyone out
    assert sessions.SESSION_COOKIE in visitor.cookies

    await visitor.fetch("/app/client/")
    response, _ = await visitor.fetch("/app/sign-out/", "POST", form={"_xsrf": visitor.xsrf})

    assert (response.code, response.headers.get("Location")) == (302, "/app/sign-in/"), _
    assert sessions.SESSION_COOKIE not in visitor.cookies
    response, _ = await visitor.fetch("/app/client/")
    assert response.code == 302


# --- signing out ends the session on the server -------------------------------------------------


async def signed_in_twice(base_url, user):
    """Two dashboard sessions of one user (two browsers), each on its own page."""
    browsers = [Visitor(base_url), Visitor(base_url)]
    for browser in browsers:
        await browser.sign_in(user.email)
        await browser.fetch("/app/")
    return browsers


def copy_of(browser):
    """Another client holding a copy of `browser`'s cookies (taken from its disk, a proxy, a shared machine)."""
    copy = Visitor(browser.base_url)
    copy.cookies = dict(browser.cookies)
    return copy


@pytest.mark.gen_test
async def test_a_copy_of_the_cookie_opens_nothing_after_sign_out(base_url, http_server, client_account):
    browser, other_browser = await signed_in_twice(base_url, client_account)
    copy = copy_of(browser)
    assert (await copy.fetch("/api/auth/me/"))[0].code == 200

    await sign_out(browser)

    response, _ = await copy.fetch("/app/")
    assert (response.code, response.headers.get("Location")) == (302, "/app/sign-in/"), _
    response, _ = await copy.fetch("/app/client/")
    assert response.code == 302 and response.headers["Location"].startswith("/app/sign-in/")
    response, text = await copy.fetch("/api/auth/me/")
    assert response.code == 401 and '"session_ended"' in text
    # The user's other session (another browser) goes on.
    response, text = await other_browser.fetch("/api/auth/me/")
    assert response.code == 200 and f'"id": {client_account.id}' in text
    assert (await other_browser.fetch("/app/client/"))[0].code == 200


@pytest.mark.gen_test
async def test_signing_out_closes_the_sessions_sockets_and_refuses_its_cookie(
    base_url, http_server, sockets, client_account, api
):
    browser, other_browser = await signed_in_twice(base_url, client_account)
    origin = {"Origin": f"http://localhost:{sockets.port}"}  # the dashboard's own pages

    async def socket_of(session_browser):
        cookie = f"{sessions.SESSION_COOKIE}={session_browser.cookies[sessions.SESSION_COOKIE]}"
        return await sockets.open(headers={"Cookie": cookie, **origin})

    mine, others = await socket_of(browser), await socket_of(other_browser)
    bearer, _ = await sockets.signed_in(api.token(client_account))
    for ws in (mine, others):
        assert (await receive(ws))["type"] == "ready"
    copy = copy_of(browser)

    await sign_out(browser)

    assert await receive(mine) is None
    assert mine.close_code == CLOSE_SESSION_ENDED and "signed out" in mine.close_reason
    refused = await socket_of(copy)
    assert await receive(refused) is None and refused.close_code == CLOSE_SESSION_ENDED
    for ws in (others, bearer):  # the user's other sessions keep their sockets
        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


@pytest.mark.gen_test
async def test_signing_out_with_an_ended_or_invalid_cookie_still_clears_it(visitor, client_account):
    await visitor.sign_in(client_account.email)
    await visitor.fetch("/app/client/")  # the page signed out from, loaded while the session was live
    await sign_out(copy_of(visitor))  # signed out elsewhere with a copy
    await sign_out(visitor)  # the original: nothing left to end, the cookie goes all the same
    assert sessions.SESSION_COOKIE not in visitor.cookies


# --- pages by role ------------------------------------------------------------------------------


def _user_for(role):
    return {Role.CLIENT: ClientFactory, Role.ADMIN: AdminFactory, Role.SERVICEMAN: ServicemanFactory}[role]()


@pytest.mark.gen_test
@pytest.mark.parametrize("page", PAGES, ids=[p.template for p in PAGES])
async def test_every_page_renders_for_its_role_with_its_script(visitor, page):
    await visitor.sign_in(_user_for(page.roles[0]).email)
    path = page.path.replace(r"(?P<request_id>\d+)", "7")

    response, text = await visitor.fetch(path)

    assert response.code == 200, text
    assert 'id="bell"' in text and 'id="unread-count"' in text
    assert "/static/dashboard/app.js" in text
    if page.script:
        assert f"/static/dashboard/{page.script}.js" in text
    if page.nav:
        assert f">{page.nav}</a>" in text


@pytest.mark.gen_test
async def test_another_roles_page_is_forbidden(visitor, client_account):
    await visitor.sign_in(client_account.email)
    response, text = await visitor.fetch("/app/admin/analytics/")
    assert response.code == 403 and "not for clients" in text


@pytest.mark.gen_test
async def test_a_page_with_a_session_of_an_older_version_goes_to_sign_in(visitor, settings, client_account):
    visitor.cookies[sessions.SESSION_COOKIE] = session_cookie(settings, client_account, version=3)
    response, _ = await visitor.fetch("/app/client/")
    assert response.code == 302 and response.headers["Location"].startswith("/app/sign-in/")


@pytest.mark.gen_test
async def test_static_assets_are_served_with_the_security_headers(visitor):
    response, text = await visitor.fetch("/static/dashboard/app.js")
    assert response.code == 200 and "Dash.api" in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- the REST API with the cookie session -------------------------------------------------------


@pytest.mark.gen_test
async def test_the_api_reads_the_session_cookie(visitor, client_account):
    await visitor.sign_in(client_account.email)
    response, text = await visitor.fetch("/api/auth/me/")
    assert response.code == 200 and f'"id": {client_account.id}' in text


@pytest.mark.gen_test
async def test_a_cookie_authenticated_change_needs_the_xsrf_header(visitor, client_account):
    await visitor.sign_in(client_account.email)
    await visitor.fetch("/app/client/")

    response, text = await visitor.fetch("/api/notifications/read-all/", "POST", body="{}")
    assert response.code == 403 and '"xsrf_failed"' in text

    response, text = await visitor.fetch(
        "/api/notifications/read-all/",
        "POST",
        body="{}",
        headers={"X-XSRFToken": "2|00000000|00000000000000000000000000000000|1"},
    )
    assert response.code == 403

    response, _ = await visitor.fetch(
        "/api/notifications/read-all/", "POST", body="{}", headers={"X-XSRFToken": visitor.xsrf}
    )
    assert response.code == 200


@pytest.mark.gen_test
async def test_a_bearer_token_needs_no_xsrf_even_beside_a_session_cookie(visitor, api, client_account, other_client):
    await visitor.sign_in(client_account.email)
    headers = {"Authorization": f"Bearer {api.token(other_client)}"}

    response, text = await visitor.fetch("/api/notifications/read-all/", "POST", body="{}", headers=headers)
    assert response.code == 200
    response, text = await visitor.fetch("/api/auth/me/", headers=headers)
    assert f'"id": {other_client.id}' in text  # the header decides who is calling, not the cookie


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "value, code", [("garbage", "session_invalid"), (None, "session_ended")], ids=["tampered", "older-version"]
)
async def test_an_invalid_or_ended_session_is_401_on_the_api(visitor, settings, client_account, value, code):
    visitor.cookies[sessions.SESSION_COOKIE] = value or session_cookie(settings, client_account, version=1)
    response, text = await visitor.fetch("/api/auth/me/")
    assert response.code == 401 and f'"{code}"' in text


SID = "0123456789abcdef" * 2


@pytest.mark.parametrize(
    "raw, expected",
    [
        (f"12:0:{SID}".encode(), (12, 0, SID)),
        (f"12:3:{SID}".encode(), (12, 3, SID)),
        (b"12:0", None),  # a cookie from before sessions had server-side rows: sign in again
        (b"12", None),
        (f"a:0:{SID}".encode(), None),
        (f"12:-1:{SID}".encode(), None),
        (b"1" * 11 + f":0:{SID}".encode(), None),
        (f"12:0:{SID.upper()}".encode(), None),
        (b"12:0:abc", None),
        (f"12:0:{SID}:1".encode(), None),
        (None, None),
    ],
)
def test_session_values_are_parsed_strictly(raw, expected):
    assert sessions.parse_cookie_value(raw) == expected


@pytest.mark.parametrize(
    "public_base_url, origin, allowed",
    [
        ("", "http://127.0.0.1:8000", True),
        ("", "https://127.0.0.1:8000", True),
        ("", "http://127.0.0.1:9000", False),
        ("", "", False),
        ("", "http://dash.example", True),
        ("https://app.example", "https://app.example", True),
        ("https://app.example", "http://app.example", False),
        ("https://app.example", "http://127.0.0.1:8000", False),
    ],
)
def test_the_socket_takes_the_cookie_only_from_its_own_origin_or_an_allowed_one(public_base_url, origin, allowed):
    from types import SimpleNamespace

    config = make_settings(PUBLIC_BASE_URL=public_base_url, CORS_ALLOWED_ORIGINS="http://dash.example")
    handler = SimpleNamespace(
        application=SimpleNamespace(settings={"config": config}), request=SimpleNamespace(host="127.0.0.1:8000")
    )
    assert sessions.same_origin(handler, origin) is allowed
