"""The pooled PostgreSQL connections when the server ends them, and the 503 when it cannot be reached.

A backend ended by the server (`pg_terminate_backend`, as a restart ends them all) must never fail a
request: the pool drops it at check-out because its socket is readable (no round trip), and a
connection that fails anyway on a check-out's first statement is replaced once when that statement
changes nothing. A database that cannot be reached answers 503 in the contract's error shape.
(tests/test_faults_web.py restarts and stops a real PostgreSQL under the real web process.)
"""

import logging
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest
from peewee import fn

import models
import models.db
from handlers.web import executor
from models import Category
from models.foundation.errors import ServiceUnavailable
from models.foundation.tokens import access_token

from .fault_support import wait_until
from .pipeline_support import free_port

RETRIED = "retrying on a fresh one"


@pytest.fixture
def postgres(database):
    if not models.is_postgres():
        pytest.skip("PostgreSQL's own connection handling (set TEST_DATABASE_URL)")
    return database


def in_pool_thread(fn_, *args):
    """Run `fn_` as a request's domain call does: another thread, a connection checked out and back."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(executor.call_with_connection, fn_, *args).result()


def backend_pid():
    return peewee.Select(columns=[fn.pg_backend_pid()]).bind(models.database).scalar()


def end_backend(pid):
    """As a PostgreSQL restart does to every session; returns once the backend process is gone."""
    assert peewee.Select(columns=[fn.pg_terminate_backend(pid)]).bind(models.database).scalar()
    activity = peewee.Table("pg_stat_activity")
    alive = activity.select(fn.count(activity.c.pid)).where(activity.c.pid == pid).bind(models.database)
    wait_until(lambda: alive.scalar() == 0, timeout=10, what="the backend to exit")


def test_a_connection_the_server_ended_is_dropped_at_check_out_without_a_failed_statement(postgres, caplog):
    first = in_pool_thread(backend_pid)
    end_backend(first)
    with caplog.at_level(logging.WARNING, logger="serviceman.db"):
        second = in_pool_thread(backend_pid)
    assert second != first
    assert RETRIED not in caplog.text  # the readable socket gave it away, not a failed statement


def test_a_dead_connection_failing_its_first_read_is_replaced_once(postgres, caplog, monkeypatch):
    monkeypatch.setattr(models.db, "_has_unread_news", lambda conn: False)  # a death the poll cannot see
    first = in_pool_thread(backend_pid)
    end_backend(first)
    with caplog.at_level(logging.WARNING, logger="serviceman.db"):
        second = in_pool_thread(backend_pid)
    assert second != first
    assert caplog.text.count(RETRIED) == 1


def test_a_dead_connection_failing_a_first_write_is_not_retried_but_answered_503(postgres, monkeypatch):
    """A write may have reached the server before the connection broke: it is never sent twice."""
    monkeypatch.setattr(models.db, "_has_unread_news", lambda conn: False)
    end_backend(in_pool_thread(backend_pid))

    def rename_nothing():
        return Category.update(name="x").where(Category.id == 0).execute()

    with pytest.raises(ServiceUnavailable) as raised:
        in_pool_thread(rename_nothing)
    assert raised.value.code == "database_unavailable"
    assert in_pool_thread(rename_nothing) == 0  # the broken connection did not go back to the pool


@pytest.mark.gen_test
async def test_requests_answer_503_in_the_error_shape_while_the_database_is_down(
    api, app, settings, client_user, sockets
):
    token = access_token(settings, client_user)
    saved = models.database.obj
    models.bind(f"postgresql://postgres@127.0.0.1:{free_port()}/serviceman", pool_size=2)
    try:
        response = await api.get("/api/requests/", token=token)
        ws = await sockets.open()
        await ws.write_message(f'{{"type": "auth", "token": "{token}"}}')
        closed = await ws.read_message()
    finally:
        models.database.initialize(saved)
    assert response.status == 503
    assert response.data["error"]["code"] == "database_unavailable" and response.data["error"]["message"]
    assert response.headers["Retry-After"] == str(executor.RETRY_AFTER_SECONDS)
    assert closed is None and ws.close_code == 1013  # the socket: try again later
