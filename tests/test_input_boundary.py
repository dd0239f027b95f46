"""The input boundary: each class of bad input found by fuzzing and by hand is refused cleanly on
every endpoint it can reach (generated from the route table), changes nothing, and never costs a 500.

Classes: deep JSON, unstorable text (NUL, lone surrogates) in bodies and queries, out-of-range
integers in bodies, queries and paths, over-long bcrypt passwords, tokens naming no user id, oversized
bodies (refused before they are read), interpreter messages and echoed request ids, lost updates.
"""

import asyncio
import json
import socket
from datetime import timedelta

import pytest

from handlers.base import AUTH_BODY_LIMIT, JSON_BODY_LIMIT
from handlers.inputs import INT32_MAX, MAX_JSON_DEPTH, flatten_errors, parse_json
from models import Event, RequestStatus, ServiceRequest, User
from models.foundation import tokens
from models.foundation.clock import platform_today
from models.foundation.errors import MalformedRequest

from .contract_support import (
    BODY_OPS,
    OPERATIONS,
    PAGINATED_OPS,
    VALID_BODIES,
    allowed_role,
    assert_error,
    make_user,
    op_id,
    snapshot,
)
from .factories import AdminFactory, ServiceRequestFactory

PATH_OPS = [op for op in OPERATIONS if "999999" in op.path]
DEEP = "[" * 1000 + "]" * 1000


def _nested_list(depth):
    """An object holding lists `depth` deep: depth + 1 levels in all."""
    return '{"x": ' + "[" * depth + "1" + "]" * depth + "}"


def _string_fields(body):
    return [name for name, value in body.items() if isinstance(value, str)]


# --- deep and odd JSON -------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_deeply_nested_json_is_400(api, op):
    user = make_user(allowed_role(op.endpoint))
    before = snapshot()
    for raw in (DEEP, '{"a": ' * 1000 + "1" + "}" * 1000, _nested_list(MAX_JSON_DEPTH)):
        response = await api.call(op.method, op.path, raw=raw, user=user)
        assert_error(response, 400, "malformed_request")
    assert snapshot() == before


def test_parse_json_limits_depth_and_constants_with_our_own_messages():
    assert parse_json('{"a": [[1]]}') == {"a": [[1]]}
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(nested) is not None
    for raw in (
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
        '{"a": NaN}',
        '{"a": -Infinity}',
        '{"a": ' + "1" * 5000 + "}",
        b'{"a": "\xff"}',
        DEEP * 3,
    ):
        with pytest.raises(MalformedRequest) as caught:
            parse_json(raw)
        assert "4300" not in caught.value.message and "codec" not in caught.value.message


@pytest.mark.gen_test
async def test_error_messages_never_quote_the_interpreter(api):
    huge_number = '{"email": "a@b.ng", "password": ' + "9" * 5000 + "}"
    for raw in (huge_number, b'{"email": "\xff\xfe"}', '{"email": "a@b.ng",'):
        response = await api.call("POST", "/api/auth/login/", raw=raw)
        error = assert_error(response, 400, "malformed_request")
        for leak in ("4300", "codec", "Expecting", "Traceback", "sys.set_int_max_str_digits"):
            assert leak not in error["message"], error
    response = await api.get("/api/categories/?page=%ff%fe")
    error = assert_error(response, 400)
    assert "\\x" not in error["message"] and "%ff" not in error["message"], error


# --- text that cannot be stored ---------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("key", sorted(VALID_BODIES), ids=lambda key: f"{key[0]} {key[1]}")
async def test_nul_and_lone_surrogates_in_any_text_field_are_422_naming_it(api, settings, key):
    method, path = key
    user, body = VALID_BODIES[key](settings)
    before = snapshot()
    for name in _string_fields(body):
        for bad in ("\x00", "\ud800", "\udfff"):
            raw = json.dumps({**body, name: body[name][:3] + bad + body[name][3:]})  # ASCII escapes: \u0000
            response = await api.call(method, path, raw=raw, user=user)
            error = assert_error(response, 422, "validation_error")
            assert list(error["fields"]) == [name], (name, response)
    assert snapshot() == before


@pytest.mark.gen_test
async def test_unstorable_text_in_nested_values_and_keys_is_named(api, admin_user):
    response = await api.call(
        "POST", "/api/admin/servicemen/999999/approve/", raw='{"category_ids": [1, "a\\u0000"]}', user=admin_user
    )
    assert assert_error(response, 422)["fields"] == {"category_ids.1": ["Must not contain the NUL character."]}
    response = await api.call("POST", "/api/categories/", raw='{"na\\u0000me": "x"}', user=admin_user)
    error = assert_error(response, 422)
    assert list(error["fields"]) == ["na\ufffdme"], error


@pytest.mark.gen_test
async def test_a_cancel_reason_with_nul_is_refused_so_the_cancellation_is_never_lost(api, client_user):
    request = ServiceRequestFactory(client=client_user)
    response = await api.post(
        f"/api/requests/{request.id}/cancel/", {"reason": "changed my mind\x00"}, user=client_user
    )
    assert assert_error(response, 422)["fields"] == {"reason": ["Must not contain the NUL character."]}
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT
    assert not Event.select().where(Event.type == "request_cancelled").exists()


@pytest.mark.gen_test
@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.endpoint.query is not None], ids=op_id)
async def test_unstorable_text_in_query_values_is_422(api, op):
    user = make_user(allowed_role(op.endpoint))
    name = next(iter(op.endpoint.query().fields))
    for bad in ("%00", "%ED%A0%80"):
        response = await api.call(op.method, f"{op.path}?{name}=a{bad}", user=user)
        assert response.status in (400, 422), response
        assert_error(response, response.status)


# --- integers out of range --------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("op", PAGINATED_OPS, ids=op_id)
async def test_page_numbers_beyond_any_list_are_422_not_a_database_error(api, op):
    user = make_user(allowed_role(op.endpoint))
    for page in (2**63, 2**63 // 20 + 1, 10**30, 1_000_001):
        response = await api.call(op.method, f"{op.path}?page={page}&page_size=20", user=user)
        assert "page" in assert_error(response, 422, "validation_error")["fields"], (page, response)
    if "999999" not in op.path:  # a list under a missing object is 404 whatever the page
        response = await api.call(op.method, f"{op.path}?page=1000000&page_size=100", user=user)
        assert response.status == 200 and response.data["results"] == [], response


@pytest.mark.gen_test
@pytest.mark.parametrize("op", PATH_OPS, ids=op_id)
async def test_ids_in_paths_beyond_the_integer_range_are_404(api, op):
    user = make_user(allowed_role(op.endpoint))
    for huge in (str(2**31), str(2**63), "9" * 40):
        response = await api.call(
            op.method, op.path.replace("999999", huge), user=user, raw="{}" if op.endpoint.body else None
        )
        assert_error(response, 404, "not_found")


@pytest.mark.gen_test
async def test_integers_in_bodies_are_bounded(api, settings, client_user, category):
    body = {
        "category_id": category.id,
        "address": "3 Awolowo Road",
        "description": "Fix it",
        "booking_date": str(platform_today(settings.zone) + timedelta(days=5)),
    }
    for field, value in (("category_id", 2**31), ("category_id", -(2**63)), ("serviceman_id", 10**30)):
        response = await api.post("/api/requests/", {**body, field: value}, user=client_user)
        assert list(assert_error(response, 422)["fields"]) == [field], response
    assert ServiceRequest.select().count() == 0


def test_nested_validation_messages_are_flattened_to_the_contract_shape():
    assert flatten_errors({"category_ids": {0: ["Not a valid integer."]}, "name": ["Required."]}) == {
        "category_ids.0": ["Not a valid integer."],
        "name": ["Required."],
    }
    assert flatten_errors({"a": {"b": {"c": ["x", "y"]}}}) == {"a.b.c": ["x", "y"]}
    assert flatten_errors(["whole body"]) == {"_schema": ["whole body"]}


@pytest.mark.gen_test
async def test_list_item_errors_have_the_documented_shape(api, admin_user):
    response = await api.post(
        "/api/admin/servicemen/999999/approve/", {"category_ids": [1, "two", 3.5]}, user=admin_user
    )
    fields = assert_error(response, 422)["fields"]
    assert set(fields) == {"category_ids.1", "category_ids.2"}
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in fields.values())


# --- passwords and tokens ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_passwords_longer_than_bcrypt_reads_are_422_not_500(api, admin_user):
    long_password = "é" * 40  # 40 characters, 80 bytes
    register = {
        "email": "ada@example.ng",
        "password": long_password,
        "first_name": "Ada",
        "last_name": "Obi",
        "phone": "+2348012345678",
        "role": "client",
    }
    response = await api.post("/api/auth/register/", register)
    assert list(assert_error(response, 422)["fields"]) == ["password"]
    response = await api.post(
        "/api/admin/users/", {"email": "b@example.ng", "password": long_password, "first_name": "Bo"}, user=admin_user
    )
    assert list(assert_error(response, 422)["fields"]) == ["password"]
    response = await api.post("/api/auth/login/", {"email": admin_user.email, "password": long_password})
    assert_error(response, 401)
    assert User.select().count() == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("sub", ["abc", "1.5", "-1", "٣", "99999999999999999999", " 1", ""])
async def test_a_signed_token_whose_subject_is_not_a_user_id_is_401(api, settings, sub):
    import jwt

    token = jwt.encode(
        {"sub": sub, "role": "admin", "type": "access", "jti": "x", "iat": 0, "exp": 4102444800},
        settings.secret_key,
        algorithm=tokens.ALGORITHM,
    )
    assert tokens.decode(settings, token, tokens.ACCESS) is None
    response = await api.get("/api/auth/me/", token=token)
    assert_error(response, 401)


# --- body size --------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_bodies_over_their_class_limit_are_413(api, client_user, settings):
    response = await api.call("POST", "/api/auth/login/", raw=b" " * (AUTH_BODY_LIMIT + 1))
    assert_error(response, 413, "payload_too_large")
    padding = " " * (JSON_BODY_LIMIT + 1)
    response = await api.call("PATCH", "/api/auth/me/", raw='{"first_name": "A"}' + padding, user=client_user)
    assert_error(response, 413, "payload_too_large")
    # Under the limit the same padding is only whitespace around valid JSON.
    response = await api.call("PATCH", "/api/auth/me/", raw='{"first_name": "A"}' + " " * 1000, user=client_user)
    assert response.status == 200, response


def _raw_exchange(port, head):
    """Send only the request head and read what the server answers before any body is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.gen_test
async def test_an_announced_50_mb_body_is_refused_before_it_is_read(http_server, http_port):
    head = (
        "POST /api/auth/login/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    received = await asyncio.get_running_loop().run_in_executor(None, _raw_exchange, http_port, head)
    assert received.startswith(b"HTTP/1.1 413"), received[:200]


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_only_short_plain_request_ids_are_echoed(api):
    response = await api.get("/api/categories/", headers={"X-Request-ID": "abc-123.def"})
    assert response.headers["X-Request-ID"] == "abc-123.def"
    for bad in ("x" * 65, "a b", "<script>", "id\twith\ttabs"):
        response = await api.get("/api/categories/", headers={"X-Request-ID": bad})
        echoed = response.headers["X-Request-ID"]
        assert echoed != bad and len(echoed) == 32, echoed


# --- concurrent edits -------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_emergency_toggles_record_only_changes_that_happened(api, client_user):
    request = ServiceRequestFactory(client=client_user)  # 5 days ahead: not an automatic emergency

    responses = await asyncio.gather(
        *(
            api.patch(f"/api/requests/{request.id}/", {"is_emergency": index % 2 == 0}, user=client_user)
            for index in range(20)
        )
    )

    assert [r.status for r in responses] == [200] * 20
    changes = list(
        Event.select().where(Event.service_request == request.id, Event.type == "emergency_changed").order_by(Event.id)
    )
    state = False
    for event in changes:  # each event must record a real flip from the state before it
        assert event.payload["previous"] == state, [e.payload for e in changes]
        state = not state
    final = ServiceRequest.get_by_id(request.id)
    assert final.is_emergency == state
    assert final.booking_fee == (final.is_emergency and 5000 or 2000)


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_admin_overrides_record_one_change(api, settings):
    admin = AdminFactory()
    request = ServiceRequestFactory()
    responses = await asyncio.gather(
        *(
            api.post(f"/api/admin/requests/{request.id}/emergency/", {"is_emergency": True}, user=admin)
            for _ in range(10)
        )
    )
    assert [r.status for r in responses] == [200] * 10
    assert Event.select().where(Event.type == "emergency_changed").count() == 1


# --- every field a client fills is bounded (so new endpoints are too) -------------------------


def _loaded_fields(schema_cls):
    """(dotted name, field) for every field a client may send, list items and nested schemas included."""
    from marshmallow import fields as mfields

    stack = [(name, field) for name, field in schema_cls().fields.items() if not field.dump_only]
    while stack:
        name, field = stack.pop()
        yield name, field
        if isinstance(field, mfields.List):
            stack.append((f"{name}.item", field.inner))
        elif isinstance(field, mfields.Nested):
            stack.extend((f"{name}.{n}", f) for n, f in field.schema.fields.items() if not f.dump_only)


def _bounded(field):
    from marshmallow import fields as mfields
    from marshmallow import validate

    validators = field.validators
    if isinstance(field, (mfields.Integer, mfields.Decimal)):
        ranges = [v for v in validators if isinstance(v, validate.Range)]
        return any(r.min is not None and r.max is not None for r in ranges) and all(
            r.max is None or r.max <= INT32_MAX for r in ranges if isinstance(field, mfields.Integer)
        )
    if isinstance(field, mfields.String):
        return any(
            isinstance(v, (validate.OneOf, validate.Regexp)) or (isinstance(v, validate.Length) and v.max is not None)
            for v in validators
        )
    if isinstance(field, mfields.List):
        return any(isinstance(v, validate.Length) and v.max is not None for v in validators)
    return True  # booleans, dates: bounded by their type


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.endpoint.body or op.endpoint.query], ids=op_id)
def test_every_field_a_client_sends_is_bounded(op):
    for schema in filter(None, (op.endpoint.body, op.endpoint.query)):
        unbounded = [name for name, field in _loaded_fields(schema) if not _bounded(field)]
        assert not unbounded, f"{schema.__name__}: {unbounded} need a length, range or choice bound"
