"""The pooled PostgreSQL connections when the server ends them, and the 503 when it cannot be reached.

A backend ended by the server (`pg_terminate_backend`, as a restart ends them all) must never fail a
request: the pool drops it at check-out because its socket is readable (no round trip), and a
connection that fails anyway on a check-out's first statement is replaced once when that statement
changes nothing. A database that cannot be reached answers 503 in the contract's error shape.
(tests/test_faults_web.py restarts and stops a real PostgreSQL under the real web process.)
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import peewee
import pytest
from peewee import fn

import models
import models.db
from handlers.web import executor
from models import Category
from models.actions import sync
from models.db import for_update
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


def session_setting(name):
    return peewee.Select(columns=[fn.current_setting(name)]).bind(models.database).scalar()


def test_our_sessions_wait_for_a_lock_or_idle_in_a_transaction_only_briefly(postgres):
    # (GET /api/sync/ trails commits by 10 s: a transaction must not commit long after it stamped its rows.)
    assert in_pool_thread(session_setting, "lock_timeout") == f"{models.db.LOCK_TIMEOUT_MS // 1000}s"
    idle = in_pool_thread(session_setting, "idle_in_transaction_session_timeout")
    assert idle == f"{models.db.IDLE_IN_TRANSACTION_TIMEOUT_MS // 1000}s"
    assert max(models.db.LOCK_TIMEOUT_MS, models.db.IDLE_IN_TRANSACTION_TIMEOUT_MS) < sync.LAG / timedelta(
        milliseconds=1
    )


def test_a_transaction_left_idle_past_the_limit_is_ended_and_commits_nothing(postgres):
    def stalled():
        with models.database.atomic():
            Category.create(name="Stalled")
            time.sleep(models.db.IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000 + 0.5)  # a process stalled mid-transaction

    with pytest.raises(ServiceUnavailable):
        in_pool_thread(stalled)
    assert not Category.select().where(Category.name == "Stalled").exists()


def test_a_lock_waited_for_past_the_limit_is_503_database_busy_and_changes_nothing(postgres):
    category = Category.create(name="Held")
    locked = threading.Event()

    def holder():  # busy (not idle) inside its transaction while it holds the row
        with models.database.atomic():
            for_update(Category.select().where(Category.id == category.id)).get()
            locked.set()
            peewee.Select(columns=[fn.pg_sleep(models.db.LOCK_TIMEOUT_MS / 1000 + 1.5)]).bind(models.database).scalar()

    def rename():
        Category.update(name="Renamed").where(Category.id == category.id).execute()

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(executor.call_with_connection, holder)
        assert locked.wait(10)
        with pytest.raises(ServiceUnavailable) as refused:
            in_pool_thread(rename)
        held.result()
    assert refused.value.code == executor.DATABASE_BUSY and refused.value.status == 503
    assert Category.get_by_id(category.id).name == "Held"
