"""XSRF on the dashboard's cookie session: the token belongs to the session it protects (issue 21,
finding 9), and every cookie-authenticated operation that changes state refuses a request without
this session's token (finding 11: the list is generated from the OpenAPI document)."""

import pytest

from handlers.web import sessions
from models.users import Role

from .conftest import serve_app, session_cookie
from .dashboard_support import Visitor
from .factories import AdminFactory, ClientFactory, ServicemanFactory
from .openapi_support import cookie_operations

CHANGE = "/api/notifications/read-all/"  # any signed-in user may call it; it changes their rows
PAGE = "/app/notifications/"  # any signed-in user's page, carrying the token in its meta tag
NO_SUCH_ID = 999999


@pytest.fixture(scope="module")
def module_app(settings, database):
    yield from serve_app(settings)


@pytest.fixture
def app(module_app):
    """One app for the module: building one (its OpenAPI document) cost more than most tests here.
    Nothing here starts pipeline work that could outlive its test."""
    return module_app


@pytest.fixture
def visitors(http_server, base_url):
    return lambda: Visitor(base_url)


async def signed_in_with_cookie(visitor, settings, user, age_days=0):
    """`visitor` holding a session cookie for `user` (as if signed in `age_days` ago) and its page's token."""
    visitor.cookies[sessions.SESSION_COOKIE] = session_cookie(settings, user, age_days=age_days)
    response, _ = await visitor.fetch(PAGE)
    assert response.code == 200
    return visitor.xsrf


async def change(visitor, token=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-XSRFToken"] = token
    response, text = await visitor.fetch(CHANGE, "POST", body="{}", headers=headers)
    return response.code, text


# --- finding 9: the token is the session's ----------------------------------------------------------


@pytest.mark.gen_test
async def test_a_token_seen_before_sign_in_is_refused_after_it_and_a_fresh_one_works(visitors, client_user):
    visitor = visitors()
    await visitor.fetch("/app/sign-in/")
    before = visitor.xsrf  # on the sign-in page: a page, a proxy log or a script may have seen it

    response, _ = await visitor.sign_in(client_user.email)
    assert response.code == 302 and "_xsrf" in visitor.cookies  # the old cookie is still in the browser

    status, text = await change(visitor, before)
    assert status == 403 and '"xsrf_failed"' in text

    await visitor.fetch(PAGE)
    assert visitor.xsrf != before
    assert (await change(visitor, visitor.xsrf))[0] == 200


@pytest.mark.gen_test
async def test_a_token_and_xsrf_cookie_planted_from_another_session_are_refused(visitors, client_user):
    # Plain double-submit trusts any matching cookie and token; a sibling subdomain (or a network
    # attacker on plain http) can set the victim's `_xsrf` cookie to one whose token it knows.
    attacker = visitors()
    await attacker.fetch("/app/sign-in/")
    victim = visitors()
    await victim.sign_in(client_user.email)

    victim.cookies["_xsrf"] = attacker.cookies["_xsrf"]
    status, text = await change(victim, attacker.xsrf)

    assert status == 403 and '"xsrf_failed"' in text


@pytest.mark.gen_test
async def test_another_accounts_session_token_is_refused(visitors, settings, client_user, other_client):
    victim, attacker = visitors(), visitors()
    await signed_in_with_cookie(victim, settings, client_user)
    attackers_token = await signed_in_with_cookie(attacker, settings, other_client)

    status, text = await change(victim, attackers_token)

    assert status == 403 and '"xsrf_failed"' in text


@pytest.mark.gen_test
async def test_each_sign_in_of_the_same_account_has_its_own_token(visitors, settings, client_user):
    # The same browser, signed in yesterday and again today (a new session cookie, as sign-in sets).
    visitor = visitors()
    yesterdays = await signed_in_with_cookie(visitor, settings, client_user, age_days=1)
    todays = await signed_in_with_cookie(visitor, settings, client_user)

    assert (await change(visitor, yesterdays))[0] == 403
    assert (await change(visitor, todays))[0] == 200
    # Nor can an earlier session's token sign this one out.
    response, _ = await visitor.fetch("/app/sign-out/", "POST", form={"_xsrf": yesterdays})
    assert response.code == 403 and sessions.SESSION_COOKIE in visitor.cookies


@pytest.mark.gen_test
async def test_the_token_is_masked_anew_on_every_page_and_each_rendering_works(visitors, settings, client_user):
    visitor = visitors()
    first = await signed_in_with_cookie(visitor, settings, client_user)
    await visitor.fetch(PAGE)
    second = visitor.xsrf

    assert first != second  # a compressed page never repeats a secret (BREACH)
    assert (await change(visitor, first))[0] == 200
    assert (await change(visitor, second))[0] == 200


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "token", ["", "s1|00|00", "s1|zz|zz", "2|00000000|00000000000000000000000000000000|1", "garbage"]
)
async def test_a_malformed_token_is_refused(visitors, settings, client_user, token):
    visitor = visitors()
    await signed_in_with_cookie(visitor, settings, client_user)
    status, text = await change(visitor, token)
    assert status == 403 and '"xsrf_failed"' in text


# --- finding 11: every cookie operation that changes state needs this session's token --------------


def _caller(op):
    """A user whose role may call `op`, so that the only refusal left to see is the XSRF one."""
    role = Role.CLIENT if "signed_in" in op.roles else op.roles[0]
    return {Role.CLIENT: ClientFactory, Role.ADMIN: AdminFactory, Role.SERVICEMAN: ServicemanFactory}[role]()


COOKIE_OPERATIONS = cookie_operations()


def test_the_sweep_covers_every_cookie_operation():
    # The probe counted 41; a new endpoint joins the sweep by itself (this only catches a broken generator).
    assert len(COOKIE_OPERATIONS) >= 41


@pytest.mark.gen_test
@pytest.mark.parametrize("op", COOKIE_OPERATIONS, ids=str)
async def test_every_cookie_operation_that_changes_state_needs_the_sessions_token(visitors, settings, op):
    visitor, other = visitors(), visitors()
    token = await signed_in_with_cookie(visitor, settings, _caller(op))
    others_token = await signed_in_with_cookie(other, settings, ClientFactory())
    path = op.url({}, default=NO_SUCH_ID)
    headers = {"Content-Type": "application/json"}
    body = None if op.method == "DELETE" else "{}"

    for wrong in (None, "garbage", others_token):
        sent = dict(headers, **({"X-XSRFToken": wrong} if wrong else {}))
        response, text = await visitor.fetch(path, op.method, body=body, headers=sent)
        assert response.code == 403 and '"xsrf_failed"' in text, (wrong, response.code, text)

    response, text = await visitor.fetch(path, op.method, body=body, headers=dict(headers, **{"X-XSRFToken": token}))
    assert response.code != 403 and response.code < 500, (response.code, text)
