"""LOG_FORMAT=json: one object a line with the request's id, user and route on every line the request
causes (the access log and the jobs it queued included), the client as the trusted proxy reported it,
and never a password, token or query string."""

import asyncio
import io
import json
import logging

import pytest

from models.foundation import log_context
from models.foundation.settings import ConfigurationError
from server.logs import ContextFilter, TextFormatter, formatter

from .conftest import make_settings, serve_app
from .factories import PASSWORD, ClientFactory


@pytest.fixture
def app(database):
    yield from serve_app(make_settings(TRUSTED_PROXIES="127.0.0.1"))


@pytest.fixture
def json_log():
    """Every line logged meanwhile, as LOG_FORMAT=json writes them (parsed)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines():
        handler.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.gen_test(timeout=30)
async def test_every_line_of_a_request_and_its_jobs_names_it(api, app, json_log):
    user = ClientFactory()
    response = await api.post(
        "/api/auth/login/",
        {"email": user.email, "password": PASSWORD},
        headers={"X-Request-ID": "login-42", "X-Forwarded-For": "198.51.100.7"},
    )
    assert response.status == 200 and response.headers["X-Request-ID"] == "login-42"
    reset = await api.post("/api/auth/password-reset/", {"email": user.email}, headers={"X-Request-ID": "reset-43"})
    assert reset.status in (200, 202, 204)
    # The reset email is sent by a job on the pipeline's threads, queued after the answer (whose timing
    # must not say whether the address is known): its lines name the request too.
    lines = await logged(json_log, lambda line: line["logger"] != "tornado.access" and line["request_id"] == "reset-43")
    access = [line for line in lines if line["logger"] == "tornado.access"]
    login = next(line for line in access if line["request_id"] == "login-42")
    assert login["route"] == "/api/auth/login/" and login["status"] == 200 and login["method"] == "POST"
    assert login["client_ip"] == "198.51.100.7" and 0 < login["duration_s"] < 10
    assert {"time", "level", "logger", "message", "request_id", "user_id", "route", "status", "duration_s"} <= set(
        login
    )
    assert login["time"].endswith("+00:00") and login["level"] == "INFO"
    text = json.dumps(lines)
    assert PASSWORD not in text and response.data["access"] not in text and response.data["refresh"] not in text


async def logged(json_log, wanted, timeout=10):
    """The lines logged so far, once one of them is `wanted` (a job on another thread logs it: polled)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(wanted(line) for line in json_log()):
        assert asyncio.get_running_loop().time() < deadline, [line["message"] for line in json_log()]
        await asyncio.sleep(0.02)
    return json_log()


@pytest.mark.gen_test(timeout=30)
async def test_a_signed_in_request_names_its_user_and_the_access_log_leaves_the_query_out(api, json_log, client_user):
    await api.get("/api/auth/me/?token=very-secret-value", user=client_user, headers={"X-Request-ID": "me-1"})
    await api.get("/api/auth/verify-email/?token=another-secret-value")
    lines = json_log()
    me = next(line for line in lines if line["logger"] == "tornado.access" and line["request_id"] == "me-1")
    assert me["user_id"] == client_user.id and me["route"] == "/api/auth/me/"
    assert me["client_ip"] == "127.0.0.1"
    assert "very-secret-value" not in json.dumps(lines) and "another-secret-value" not in json.dumps(lines)


def test_an_untrusted_peer_cannot_choose_its_logged_address():
    """The address logged is proxies.client_address's: X-Forwarded-For counts only from TRUSTED_PROXIES
    (tested there); here the access log is shown to use it, by the trusted case above and this one."""
    from types import SimpleNamespace

    from tornado.httputil import HTTPHeaders

    from handlers.web.proxies import client_address

    request = SimpleNamespace(
        remote_ip="10.1.2.3", protocol="http", headers=HTTPHeaders({"X-Forwarded-For": "198.51.100.7"})
    )
    assert client_address(request, make_settings())[0] == "10.1.2.3"


def test_text_lines_carry_the_request_id_when_there_is_one():
    record = logging.LogRecord("serviceman", logging.INFO, __file__, 1, "booked %s", (7,), None)
    with log_context.bound(request_id="abc-1"):
        ContextFilter().filter(record)
    assert TextFormatter("%(levelname)s %(message)s").format(record) == "INFO booked 7 [request abc-1]"
    plain = logging.LogRecord("serviceman", logging.INFO, __file__, 1, "started", (), None)
    ContextFilter().filter(plain)
    assert TextFormatter("%(message)s").format(plain) == "started"


def test_a_batch_job_names_each_request_once():
    assert log_context.joined(["a", None, "b", "a"]) == "a,b"
    assert log_context.joined([None]) is None
    assert len(log_context.joined(str(n) for n in range(100)).split(",")) == log_context.MAX_CARRIED


def test_log_format_is_text_or_json():
    assert make_settings().log_format == "text"
    assert make_settings(LOG_FORMAT="JSON").log_format == "json"
    with pytest.raises(ConfigurationError):
        make_settings(LOG_FORMAT="xml")
