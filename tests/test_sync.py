"""GET /api/sync/ (issue 24): catch-up across devices and days, 304s, long-polls; in both transports."""

import asyncio
import random
import threading
import time
from datetime import timedelta

import pytest
import time_machine

from models import Notification, RequestStatus, ServiceRequest
from models.actions import sync
from models.db import database
from models.foundation.clock import utcnow
from models.workflow import transition
from workers.delivery import push_new

from .factories import ServiceRequestFactory
from .mobile_support import app, mode_settings, transport  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("transport")


def notify(user, n=1, **fields):
    """Notifications committed and pushed as the pipeline does (workers/delivery.py::push_new)."""
    rows = [
        Notification.create(
            user=user.id,
            notification_type="job_confirmed",
            title=f"Note {i}",
            message="Your booking is complete.",
            **fields,
        )
        for i in range(n)
    ]
    push_new(rows)
    return rows


async def call(api, user, since=None, etag=None, wait=None):
    query = "&".join(f"{k}={v}" for k, v in (("since", since), ("wait", wait)) if v is not None)
    headers = {"If-None-Match": f'"{etag}"'} if etag else None
    return await api.get("/api/sync/" + (f"?{query}" if query else ""), user=user, headers=headers)


async def held(app, count=1):
    """Until `count` long-polls are held by this process (their requests travel over loopback)."""
    while app.settings["hub"].watch.held() < count:
        await asyncio.sleep(0.005)


@pytest.mark.gen_test(timeout=30)
async def test_a_read_on_one_device_shows_on_the_other(api, client_user):
    phone, tablet = await call(api, client_user), await call(api, client_user)
    assert phone.status == 200 and phone.data["notifications"] == [] and phone.data["unread_count"] == 0
    assert phone.headers["ETag"] == f'"{phone.data["cursor"]}"'
    first, second = notify(client_user, 2)

    on_phone = await call(api, client_user, phone.data["cursor"])
    assert [n["id"] for n in on_phone.data["notifications"]] == [first.id, second.id]  # oldest first
    assert (on_phone.data["unread_count"], on_phone.data["has_more"]) == (2, False)
    assert (await api.post(f"/api/notifications/{first.id}/read/", user=client_user)).status == 200

    on_tablet = await call(api, client_user, tablet.data["cursor"])
    assert [n["id"] for n in on_tablet.data["notifications"]] == [first.id, second.id]
    assert (on_tablet.data["read"], on_tablet.data["unread_count"]) == ([first.id], 1)
    again = await call(api, client_user, on_phone.data["cursor"])
    assert (again.data["notifications"], again.data["read"]) == ([], [first.id])  # the phone's own read, once
    assert (await call(api, client_user, again.data["cursor"])).data["read"] == []


@pytest.mark.gen_test(timeout=30)
async def test_a_booking_that_changes_without_a_notification_is_in_the_next_sync(api, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user, status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)
    start = await call(api, client_user)
    assert [r["id"] for r in start.data["requests"]] == [request.id]
    transition(request, RequestStatus.CANCELLED, admin_user, "request_cancelled")

    changed = await call(api, client_user, start.data["cursor"], etag=start.data["cursor"])
    assert changed.status == 200
    assert [(r["id"], r["status"]) for r in changed.data["requests"]] == [(request.id, "CANCELLED")]
    assert set(changed.data["requests"][0]) >= {"id", "status", "updated_at", "booking_fee", "final_cost"}


@pytest.mark.gen_test(timeout=60)
async def test_a_day_offline_catches_up_in_a_few_calls_without_loss_or_repeat(api, client_user):
    day_ago = utcnow() - timedelta(days=1)
    with time_machine.travel(day_ago, tick=False):
        cursor = (await call(api, client_user)).data["cursor"]
    made = [
        Notification.create(
            user=client_user.id,
            notification_type="job_confirmed",
            title="t",
            message="m",
            created_at=day_ago + timedelta(minutes=6 * i),
        ).id
        for i in range(230)
    ]
    Notification.update(is_read=True, read_at=utcnow()).where(Notification.id.in_(made[:40])).execute()
    seen, read, calls = [], [], 0
    while True:
        answer = await call(api, client_user, cursor)
        calls += 1
        seen += [n["id"] for n in answer.data["notifications"]]
        read += answer.data["read"]
        cursor = answer.data["cursor"]
        if not answer.data["has_more"]:
            break
    assert seen == made and sorted(read) == made[:40]
    assert calls == 3  # 100 + 100 + 30
    assert answer.data["unread_count"] == 190


def test_concurrent_commits_during_sync_are_never_lost_nor_repeated(client_user):
    """Writers take their stamp, then commit up to 40 ms later (as a slow transaction does), while a
    device syncs in a loop: every row arrives exactly once. Many runs."""
    for run in range(15):
        Notification.delete().execute()
        cursor = sync.sync(client_user).cursor
        made, got, stop = [], [], threading.Event()

        def write(made=made):  # this run's list
            with database.connection_context():
                for _ in range(8):
                    with database.atomic():
                        made.append(
                            Notification.create(
                                user=client_user.id,
                                notification_type="job_confirmed",
                                title="t",
                                message="m",
                                created_at=utcnow(),
                            ).id
                        )
                        time.sleep(random.uniform(0, 0.04))  # committed late, after others with later stamps

        writers = [threading.Thread(target=write) for _ in range(3)]
        for writer in writers:
            writer.start()
        while any(w.is_alive() for w in writers) or not stop.is_set():
            if not any(w.is_alive() for w in writers):
                stop.set()  # one more pass after the last commit
            answer = sync.sync(client_user, cursor)
            got += [n.id for n in answer.notifications]
            cursor = answer.cursor
        assert sorted(got) == sorted(made) and len(got) == len(set(got)) == 24, run


@pytest.mark.gen_test(timeout=30)
async def test_if_none_match_with_nothing_new_is_304_without_a_body_then_200_with_news(api, client_user, monkeypatch):
    cursor = (await call(api, client_user)).data["cursor"]
    reads = []
    real = sync.sync
    monkeypatch.setattr(sync, "sync", lambda *a, **k: reads.append(1) or real(*a, **k))

    first = await call(api, client_user, cursor, etag=cursor)
    second = await call(api, client_user, cursor, etag=cursor)
    assert (first.status, first.data, second.status) == (304, None, 304)
    assert first.headers["ETag"] == f'"{cursor}"' and "Content-Security-Policy" not in first.headers
    assert len(reads) == 1  # the second "nothing new" was known without reading the database

    [note] = notify(client_user)
    news = await call(api, client_user, cursor, etag=cursor)
    assert news.status == 200 and [n["id"] for n in news.data["notifications"]] == [note.id]
    assert news.headers["ETag"] == f'"{news.data["cursor"]}"' != f'"{cursor}"'
    plain = await call(api, client_user, news.data["cursor"])  # no If-None-Match: a 200 saying nothing new
    assert (plain.status, plain.data["notifications"], plain.data["cursor"]) == (200, [], news.data["cursor"])


@pytest.mark.gen_test(timeout=30)
async def test_a_long_poll_is_answered_by_a_commit(api, app, client_user):
    cursor = (await call(api, client_user)).data["cursor"]
    poll = asyncio.ensure_future(call(api, client_user, cursor, etag=cursor, wait=20))
    await held(app)
    started = time.monotonic()
    [note] = notify(client_user)
    answer = await poll
    assert answer.status == 200 and [n["id"] for n in answer.data["notifications"]] == [note.id]
    assert time.monotonic() - started < 2


@pytest.mark.gen_test(timeout=30)
async def test_a_long_poll_is_answered_when_a_booking_changes(api, app, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user, status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)
    cursor = (await call(api, client_user)).data["cursor"]
    poll = asyncio.ensure_future(call(api, client_user, cursor, etag=cursor, wait=20))
    await held(app)
    transition(ServiceRequest.get_by_id(request.id), RequestStatus.CANCELLED, admin_user, "request_cancelled")
    answer = await poll
    assert answer.status == 200 and answer.data["requests"][0]["status"] == "CANCELLED"


@pytest.mark.gen_test(timeout=30)
async def test_a_long_poll_with_nothing_new_ends_after_wait_seconds_with_304(api, client_user):
    cursor = (await call(api, client_user)).data["cursor"]
    started = time.monotonic()
    answer = await call(api, client_user, cursor, etag=cursor, wait=1)
    assert answer.status == 304 and 1 <= time.monotonic() - started < 3


@pytest.mark.gen_test(timeout=30)
async def test_a_long_poll_answers_401_at_once_when_the_session_ends(api, app, client_user, password):
    cursor = (await call(api, client_user)).data["cursor"]
    poll = asyncio.ensure_future(call(api, client_user, cursor, etag=cursor, wait=20))
    await held(app)
    started = time.monotonic()
    changed = await api.post(
        "/api/auth/change-password/",
        {"current_password": password, "new_password": "a-much-newer-passphrase-42"},
        user=client_user,
    )
    assert changed.status == 200
    answer = await poll
    assert answer.status == 401 and time.monotonic() - started < 2


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["wait=26", "wait=-1", "since=not-a-cursor", "after_id=3"])
async def test_bad_sync_queries_are_422(api, client_user, query):
    response = await api.get(f"/api/sync/?{query}", user=client_user)
    assert (response.status, response.error_code) == (422, "validation_error")


@pytest.mark.gen_test
async def test_a_cursor_past_retention_is_410_cursor_expired(api, client_user):
    with time_machine.travel(utcnow() - sync.RETENTION - timedelta(minutes=1), tick=False):
        old = (await call(api, client_user)).data["cursor"]
    response = await call(api, client_user, old)
    assert (response.status, response.error_code) == (410, "cursor_expired")
    assert "without `since`" in response.data["error"]["message"]


@pytest.mark.gen_test(timeout=30)
async def test_a_cursor_sheds_its_keys_once_past_the_lag_then_stays_put(api, client_user):
    start = (await call(api, client_user)).data["cursor"]
    notify(client_user, 3)
    with_keys = (await call(api, client_user, start)).data["cursor"]
    assert (await call(api, client_user, with_keys, etag=with_keys)).status == 304  # within the lag: kept as is
    with time_machine.travel(utcnow() + sync.LAG + timedelta(seconds=1)):
        shed = await call(api, client_user, with_keys, etag=with_keys)
        assert shed.status == 200 and shed.data["notifications"] == [] and shed.data["unread_count"] == 3
        assert len(shed.data["cursor"]) < len(with_keys) and shed.data["cursor"].count(".") == 3
        assert (await call(api, client_user, shed.data["cursor"], etag=shed.data["cursor"])).status == 304
