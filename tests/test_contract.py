"""Contract-wide tests generated from the route table: every declared endpoint is checked for
authentication, roles, malformed bodies, pagination bounds, routing and the error shape.

A new route is covered by adding it to `route_table()`; nothing here lists endpoints by hand except
the few valid bodies used to prove that an unknown field alone is what gets a request refused.
"""

import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

import models
from handlers.base import HTTP_METHODS, SIGNED_IN
from models.foundation import tokens
from server.routes import route_table

from .contract_support import (
    BODY_OPS,
    OPERATIONS,
    PAGINATED_OPS,
    ROLE_FACTORIES,
    VALID_BODIES,
    allowed_role,
    assert_error,
    is_restricted,
    make_user,
    op_id,
    snapshot,
)
from .factories import CategoryFactory

AUTH_OPS = [op for op in OPERATIONS if op.endpoint.requires_auth]
PUBLIC_OPS = [op for op in OPERATIONS if not op.endpoint.requires_auth]
FORBIDDEN = [
    (op, role)
    for op in OPERATIONS
    if is_restricted(op.endpoint)
    for role in models.Role.ALL
    if role not in op.endpoint.roles
]
PERMITTED = [
    (op, role)
    for op in AUTH_OPS
    for role in models.Role.ALL
    if SIGNED_IN in op.endpoint.roles or role in op.endpoint.roles
]
MALFORMED_BODY = '{"name": "Plumbing",'


@pytest.fixture(scope="module")
def _openapi_document():
    import server.app

    return server.app.build_spec(route_table())


@pytest.fixture(autouse=True)
def _build_openapi_once(monkeypatch, _openapi_document):
    """Every test gets a fresh app; the (unchanging) OpenAPI document is built once per module,
    which keeps this matrix of several hundred requests to a few seconds. tests/test_docs.py
    checks the document the app really builds."""
    import server.app

    monkeypatch.setattr(server.app, "build_spec", lambda routes, **kwargs: _openapi_document)


# --- the generated matrix is what we think it is ----------------------------------------------


def test_every_role_has_a_factory():
    assert set(ROLE_FACTORIES) == set(models.Role.ALL)


def test_matrix_covers_the_route_table():
    patterns = {op.pattern for op in OPERATIONS}
    assert r"/api/categories/(?P<category_id>\d+)/" in patterns
    assert ("POST", r"/api/admin/users/") in {(op.method, op.pattern) for op in AUTH_OPS}
    assert FORBIDDEN and PERMITTED and BODY_OPS and PAGINATED_OPS and PUBLIC_OPS
    # Every restricted endpoint refuses at least one role, otherwise it should say signed_in.
    for op in OPERATIONS:
        if is_restricted(op.endpoint):
            assert set(models.Role.ALL) - set(op.endpoint.roles), op_id(op)


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("op", AUTH_OPS, ids=op_id)
async def test_signed_in_endpoints_refuse_anonymous_callers(api, op):
    before = snapshot()
    # Authentication is checked before the body is read: a broken body still answers 401.
    raw = MALFORMED_BODY if op.endpoint.body is not None else None
    response = await api.call(op.method, op.path, raw=raw)
    assert_error(response, 401, "not_authenticated")
    for header in ("Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "not-a-jwt"):
        response = await api.call(op.method, op.path, raw=raw, headers={"Authorization": header})
        assert_error(response, 401)
        assert response.error_code in ("not_authenticated", "token_invalid"), (header, response)
    assert snapshot() == before


def _token(settings, user, **overrides):
    claims = {"user_id": user.id, "role": user.role, "kind": tokens.ACCESS, "lifetime": timedelta(minutes=5)}
    claims.update(overrides)
    return tokens.encode(settings, **claims)[0]


BAD_TOKENS = {
    "expired": lambda settings, user: _token(settings, user, lifetime=timedelta(minutes=-1)),
    "refresh-as-access": lambda settings, user: _token(settings, user, kind=tokens.REFRESH),
    "other-key": lambda settings, user: jwt.encode(
        {"sub": str(user.id), "role": user.role, "type": "access", "jti": "x", "iat": 0, "exp": 4102444800},
        "some-other-secret-key-0123456789abcdef",
        algorithm="HS256",
    ),
    "alg-none": lambda settings, user: jwt.encode(
        {"sub": str(user.id), "role": user.role, "type": "access", "jti": "x", "iat": 0, "exp": 4102444800},
        None,
        algorithm="none",
    ),
    "unknown-user": lambda settings, user: _token(settings, user, user_id=user.id + 1000),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_invalid_access_tokens_are_401(api, settings, admin_user, kind):
    response = await api.get("/api/admin/servicemen/", token=BAD_TOKENS[kind](settings, admin_user))
    assert_error(response, 401)


@pytest.mark.gen_test
async def test_deactivated_user_token_is_401(api, client_user):
    models.User.update(is_active=False).where(models.User.id == client_user.id).execute()
    response = await api.get("/api/auth/me/", user=client_user)
    assert_error(response, 401, "not_authenticated")


@pytest.mark.gen_test
async def test_role_comes_from_the_account_not_the_token_claim(api, settings, client_user):
    token = _token(settings, client_user, role=models.Role.ADMIN)
    response = await api.get("/api/admin/servicemen/", token=token)
    assert_error(response, 403, "permission_denied")


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("op,role", FORBIDDEN, ids=[f"{op_id(op)} as {role}" for op, role in FORBIDDEN])
async def test_restricted_endpoints_refuse_other_roles(api, op, role):
    user = make_user(role)
    before = snapshot()
    # Roles are checked before the body is read: a broken body from the wrong role is still 403.
    raw = MALFORMED_BODY if op.endpoint.body is not None else None
    response = await api.call(op.method, op.path, raw=raw, user=user)
    assert_error(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("op,role", PERMITTED, ids=[f"{op_id(op)} as {role}" for op, role in PERMITTED])
async def test_permitted_roles_get_past_the_role_check(api, op, role):
    """An allowed role on a missing id gets a contract error (404, 409, 422...), never 401/403/5xx."""
    response = await api.call(op.method, op.path, user=make_user(role))
    assert response.status not in (401, 403), response
    assert response.status < 500, response
    if response.status >= 400:
        assert_error(response, response.status)


@pytest.mark.gen_test
@pytest.mark.parametrize("op", PUBLIC_OPS, ids=op_id)
async def test_public_endpoints_need_no_sign_in(api, op):
    response = await api.call(op.method, op.path)
    assert response.status != 403 and response.status < 500, response
    if response.status == 401:  # only an endpoint that authenticates its caller itself (Paystack's signature)
        assert 401 in op.endpoint.errors, response
        assert_error(response, 401, "invalid_signature")


# --- malformed bodies -------------------------------------------------------------------------


NOT_AN_OBJECT = [MALFORMED_BODY, "{'single': 'quotes'}", "[]", '[{"name": "x"}]', '"text"', "42", "null", b"\xc3\x28"]


@pytest.mark.gen_test
@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_bodies_that_are_not_a_json_object_are_400(api, op):
    user = make_user(allowed_role(op.endpoint))
    before = snapshot()
    for raw in NOT_AN_OBJECT:
        response = await api.call(op.method, op.path, raw=raw, user=user, headers={"Content-Type": "application/json"})
        assert response.status == 400, (raw, response)
        assert_error(response, 400, "malformed_request")
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_unknown_body_fields_are_422(api, op):
    user = make_user(allowed_role(op.endpoint))
    before = snapshot()
    response = await api.call(op.method, op.path, {"unexpected_field": 1}, user=user)
    error = assert_error(response, 422, "validation_error")
    assert "unexpected_field" in error.get("fields", {}), response
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("key", sorted(VALID_BODIES), ids=lambda key: f"{key[0]} {key[1]}")
async def test_a_valid_body_with_one_unknown_field_is_refused_whole(api, settings, key):
    method, pattern = key
    assert any((op.method, op.pattern) == key and op.endpoint.body for op in OPERATIONS), key
    user, body = VALID_BODIES[key](settings)
    before = snapshot()
    response = await api.call(method, pattern, {**body, "unexpected_field": "x"}, user=user)
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"unexpected_field"}, response
    assert snapshot() == before
    # The same body without the extra field is accepted, so the unknown field alone was refused.
    response = await api.call(method, pattern, body, user=user)
    assert 200 <= response.status < 300, response
    assert snapshot() != before


# --- pagination -------------------------------------------------------------------------------


BAD_PAGES = [
    ("page_size=101", "page_size"),
    ("page_size=0", "page_size"),
    ("page=0", "page"),
    ("page=-1", "page"),
    ("page=abc", "page"),
    ("page_size=ten", "page_size"),
]


@pytest.mark.gen_test
@pytest.mark.parametrize("op", PAGINATED_OPS, ids=op_id)
async def test_page_bounds_are_validated(api, op):
    user = make_user(allowed_role(op.endpoint))
    for query, field in BAD_PAGES:
        response = await api.call(op.method, f"{op.path}?{query}", user=user)
        assert response.status == 422, (query, response)
        error = assert_error(response, 422, "validation_error")
        assert field in error["fields"], (query, response)


@pytest.mark.gen_test
@pytest.mark.parametrize("op", PAGINATED_OPS, ids=op_id)
async def test_page_size_100_is_allowed(api, op):
    response = await api.call(op.method, f"{op.path}?page_size=100", user=make_user(allowed_role(op.endpoint)))
    assert response.status != 422, response


def _relative(link, base_url):
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == base_url, link
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.mark.gen_test
async def test_pages_link_to_each_other(api, base_url):
    names = sorted(CategoryFactory().name for _ in range(25))

    first = await api.get("/api/categories/?page_size=10")
    assert first.status == 200, first
    assert first.data["count"] == 25
    assert first.data["previous"] is None
    assert [c["name"] for c in first.data["results"]] == names[:10]
    path, args = _relative(first.data["next"], base_url)
    assert (path, args) == ("/api/categories/", {"page": "2", "page_size": "10"})

    second = await api.get(f"{path}?page=2&page_size=10")
    assert [c["name"] for c in second.data["results"]] == names[10:20]
    assert _relative(second.data["previous"], base_url) == ("/api/categories/", {"page": "1", "page_size": "10"})
    path, args = _relative(second.data["next"], base_url)
    assert args == {"page": "3", "page_size": "10"}

    third = await api.get(f"{path}?page=3&page_size=10")
    assert third.data["count"] == 25
    assert [c["name"] for c in third.data["results"]] == names[20:]
    assert third.data["next"] is None
    assert _relative(third.data["previous"], base_url)[1] == {"page": "2", "page_size": "10"}

    beyond = await api.get("/api/categories/?page=4&page_size=10")
    assert beyond.status == 200
    assert beyond.data["results"] == [] and beyond.data["next"] is None
    assert _relative(beyond.data["previous"], base_url)[1] == {"page": "3", "page_size": "10"}


@pytest.mark.gen_test
async def test_page_links_follow_directly(api, base_url):
    for _ in range(3):
        CategoryFactory()
    first = await api.get("/api/categories/?page_size=2")
    _relative(first.data["next"], base_url)
    second = await api.get(first.data["next"][len(base_url) :])
    assert second.status == 200 and second.data["count"] == 3
    assert len(second.data["results"]) == 1
    assert {c["id"] for c in first.data["results"]}.isdisjoint(c["id"] for c in second.data["results"])


# --- routing: trailing slash, unknown routes, undeclared methods -----------------------------


@pytest.mark.gen_test
async def test_categories_answer_the_same_with_and_without_trailing_slash(api):
    for name in ("Plumbing", "Electrical", "Carpentry"):
        CategoryFactory(name=name)
    with_slash = await api.get("/api/categories/")
    without = await api.get("/api/categories")
    assert with_slash.status == without.status == 200
    assert with_slash.data == without.data
    assert with_slash.data["count"] == 3


ROUTES = sorted({op.pattern: op for op in OPERATIONS}.values(), key=op_id)


@pytest.mark.gen_test
@pytest.mark.parametrize("op", [op for op in ROUTES if op.pattern.endswith("/")], ids=lambda op: op.pattern)
async def test_every_route_is_reachable_without_trailing_slash(api, op):
    declared = {m.upper() for m in HTTP_METHODS if hasattr(getattr(_handler(op.pattern), m, None), "endpoint")}
    for path in (op.path, op.path[:-1]):
        response = await api.call("OPTIONS", path)
        assert response.status == 204, (path, response)
        allowed = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
        assert allowed == declared | {"OPTIONS"}, path


def _handler(pattern):
    return next(route[1] for route in route_table() if route[0] == pattern)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/nope/"),
        ("GET", "/api/nope"),
        ("POST", "/api/nope/"),
        ("DELETE", "/api/nope/"),
        ("GET", "/api/categories/abc/"),
        ("GET", "/api/categories/1/2/"),
        ("GET", "/nope"),
    ],
)
async def test_unknown_routes_are_404_json(api, admin_user, method, path):
    for user in (None, admin_user):
        response = await api.call(method, path, user=user)
        assert_error(response, 404, "not_found")


@pytest.mark.gen_test
@pytest.mark.parametrize("op", ROUTES, ids=lambda op: op.pattern)
async def test_undeclared_methods_are_405_json(api, admin_user, op):
    undeclared = [m.upper() for m in HTTP_METHODS if not hasattr(getattr(_handler(op.pattern), m, None), "endpoint")]
    assert "PUT" in undeclared  # no handler declares PUT, so every route has at least one
    before = snapshot()
    for method in undeclared:
        for user in (None, admin_user):  # 405 before authentication: nothing to sign in for
            response = await api.call(method, op.path, {"name": "x"} if method != "DELETE" else None, user=user)
            assert response.status == 405, (method, response)
            assert_error(response, 405, "method_not_allowed")
    assert snapshot() == before


@pytest.mark.gen_test
async def test_put_on_categories_is_405_with_or_without_slash(api, admin_user):
    for path in ("/api/categories/", "/api/categories"):
        response = await api.call("PUT", path, {"name": "Plumbing"}, user=admin_user)
        assert_error(response, 405, "method_not_allowed")
        assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "OPTIONS"}  # RFC 9110
    assert models.Category.select().count() == 0


@pytest.mark.gen_test
async def test_nonstandard_method_is_405_json(api):
    response = await api.call("PROPFIND", "/api/categories/")
    assert_error(response, 405, "method_not_allowed")


# --- unexpected exceptions --------------------------------------------------------------------


def _explode(*args, **kwargs):
    raise RuntimeError("secret detail")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "target,path",
    [
        ("active_categories", "/api/categories/"),  # called on the event loop
        ("serviceman", "/api/servicemen/1/"),  # called on the domain thread pool
    ],
)
async def test_unexpected_exception_is_500_without_details(api, monkeypatch, caplog, target, path):
    import handlers.catalog

    monkeypatch.setattr(handlers.catalog.catalog, target, _explode)
    with caplog.at_level(logging.ERROR):
        response = await api.get(path)

    error = assert_error(response, 500, "internal_error")
    request_id = response.headers["X-Request-ID"]
    assert request_id and error["request_id"] == request_id
    assert request_id in error["message"]
    body = response.data.__repr__()
    assert "secret detail" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert all("secret detail" not in value for value in response.headers.values())

    logged = [r for r in caplog.records if r.name == "serviceman.http" and r.levelno == logging.ERROR]
    assert len(logged) == 1, caplog.records
    assert request_id in logged[0].getMessage()
    assert logged[0].exc_info and isinstance(logged[0].exc_info[1], RuntimeError)
    assert str(logged[0].exc_info[1]) == "secret detail"


@pytest.mark.gen_test
async def test_500_echoes_the_callers_request_id(api, monkeypatch, caplog):
    import handlers.catalog

    monkeypatch.setattr(handlers.catalog.catalog, "active_categories", _explode)
    with caplog.at_level(logging.ERROR):
        response = await api.get("/api/categories/", headers={"X-Request-ID": "trace-abc-123"})
    assert_error(response, 500, "internal_error")
    assert response.headers["X-Request-ID"] == "trace-abc-123"
    assert response.data["error"]["request_id"] == "trace-abc-123"


@pytest.mark.gen_test
async def test_client_errors_are_not_logged_as_errors(api, caplog, admin_user):
    with caplog.at_level(logging.ERROR):
        assert (await api.get("/api/nope/")).status == 404
        assert (await api.post("/api/categories/", {"unexpected_field": 1}, user=admin_user)).status == 422
        assert (await api.call("PUT", "/api/categories/")).status == 405
    assert not [r for r in caplog.records if r.name == "serviceman.http"]


@pytest.mark.gen_test
async def test_every_answer_carries_a_request_id(api):
    ok = await api.get("/api/categories/")
    missing = await api.get("/api/nope/")
    assert re.fullmatch(r"[0-9a-f]{32}", ok.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-ID"])
    assert ok.headers["X-Request-ID"] != missing.headers["X-Request-ID"]
