"""A refused request does not cost the client its keep-alive connection (issue 21, finding 8).

Bodies are streamed (handlers/base.py) and checked before they are read, so a refusal used to be
sent while the body was still unread, and Tornado then dropped the connection (reset) with no
`Connection: close`: the client's next request on it failed. Now the body is read and discarded first
and the connection stays, a body over its endpoint's limit too (up to DRAIN_LIMIT, then 413); only a
body too large to read at all (413, declared or chunked) or of unknown length closes it, and then the
response says so."""

import pytest

from handlers.base import AUTH_BODY_LIMIT, DRAIN_LIMIT

from .raw_http_support import RawConnections

BOOKING = {"category_id": 1, "description": "A leaking tap in the kitchen", "address": "1 Marina, Lagos"}


@pytest.fixture
def raw_connections(http_server, http_port):
    """`await raw_connections.open()`: raw connections to this test's server, closed after the test."""
    holder = RawConnections(http_port)
    yield holder
    holder.close_all()


async def assert_next_request_succeeds(conn):
    response = await conn.request("GET", "/api/categories/")
    assert response is not None, "the server dropped the keep-alive connection after refusing a request"
    assert response.status == 200


def bearer(api, user):
    return {"Authorization": f"Bearer {api.token(user)}", "Content-Type": "application/json"}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "case, chunked",
    [
        *((case, chunked) for case in ("401", "403", "404-route", "404-path-id", "405") for chunked in (False, True)),
        ("422-query", False),
        ("401-no-body", False),
    ],
)
async def test_a_refused_request_keeps_the_connection(api, raw_connections, client_user, case, chunked):
    method, path, headers, body = {
        "401": ("POST", "/api/requests/", {"Content-Type": "application/json"}, BOOKING),
        "403": ("POST", "/api/admin/users/", bearer(api, client_user), {"email": "x@example.com"}),
        "404-route": ("POST", "/api/no-such-thing/", bearer(api, client_user), BOOKING),
        "404-path-id": ("POST", "/api/requests/99999999999/cancel/", bearer(api, client_user), {"reason": "x"}),
        "405": ("PUT", "/api/requests/", bearer(api, client_user), BOOKING),
        "422-query": ("GET", "/api/requests/?page=first", bearer(api, client_user), None),
        "401-no-body": ("GET", "/api/auth/me/", {}, None),
    }[case]
    expected = int(case[:3])
    connection = await raw_connections.open()

    response = await connection.request(method, path, body=body, headers=headers, chunked=chunked)

    assert response.status == expected and not response.closes, response
    await assert_next_request_succeeds(connection)


@pytest.mark.gen_test
async def test_several_refusals_in_a_row_keep_the_connection(raw_connections):
    connection = await raw_connections.open()
    for _ in range(3):
        response = await connection.request("POST", "/api/requests/", body=BOOKING)
        assert response.status == 401
    await assert_next_request_succeeds(connection)


@pytest.mark.gen_test
async def test_a_refusal_after_the_body_was_read_keeps_the_connection(api, raw_connections, client_user):
    connection = await raw_connections.open()
    response = await connection.request("POST", "/api/requests/", body=b"{not json", headers=bearer(api, client_user))
    assert response.status == 400 and response.error_code == "malformed_request"
    await assert_next_request_succeeds(connection)


@pytest.mark.gen_test
async def test_a_body_past_what_is_ever_read_is_refused_unread_and_the_connection_closes(raw_connections):
    connection = await raw_connections.open()
    # Reading a megabyte to keep one socket would let anyone make the server read without limit:
    # HTTP lets a 413 close the connection, and the response says it does.
    body = b"x" * (DRAIN_LIMIT + 1)
    response = await connection.request("POST", "/api/auth/login/", body=body)

    assert response.status == 413 and response.closes
    assert await connection.request("GET", "/api/categories/") is None


@pytest.mark.gen_test
@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_its_endpoints_limit_but_within_the_drain_is_read_then_413_on_a_kept_connection(
    raw_connections, chunked
):
    # What nginx does (it sends the body whole, then reads the answer): a 413 it can pass on, not a reset.
    connection = await raw_connections.open()
    body = b'{"email": "' + b"x" * AUTH_BODY_LIMIT + b'"}'
    response = await connection.request("POST", "/api/auth/login/", body=body, chunked=chunked)

    assert response.status == 413 and response.error_code == "payload_too_large" and not response.closes
    await assert_next_request_succeeds(connection)


@pytest.mark.gen_test
async def test_a_chunked_body_running_past_what_is_ever_read_is_413_and_the_connection_closes(raw_connections):
    connection = await raw_connections.open()
    body = b'{"email": "' + b"x" * DRAIN_LIMIT + b'"}'
    response = await connection.request("POST", "/api/auth/login/", body=body, chunked=True)

    assert response.status == 413 and response.error_code == "payload_too_large" and response.closes
    assert await connection.request("GET", "/api/categories/") is None


@pytest.mark.gen_test
async def test_a_chunked_body_within_the_limit_is_read_whole(raw_connections):
    connection = await raw_connections.open()
    body = {"email": "nobody@example.com", "password": "not-the-password-of-anyone"}
    response = await connection.request(
        "POST", "/api/auth/login/", body=body, chunked=True, headers={"Content-Type": "application/json"}
    )
    assert response.status == 401 and response.error_code == "invalid_credentials", response
    await assert_next_request_succeeds(connection)
