"""GET /api/sync/ (issue 24): catch-up across devices and days, 304s, long-polls; in both transports."""

import asyncio
import random
import threading
import time
from datetime import timedelta

import pytest
import time_machine

from handlers.web import identity
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
        assert len(shed.data["cursor"]) < len(with_keys) and shed.data["cursor"].count(".") == 1  # one mark
        assert (await call(api, client_user, shed.data["cursor"], etag=shed.data["cursor"])).status == 304


@pytest.mark.gen_test(timeout=30)
async def test_an_if_none_match_without_since_continues_from_that_cursor(api, client_user):
    cursor = (await call(api, client_user)).data["cursor"]
    assert (await call(api, client_user, etag=cursor)).status == 304
    old = notify(client_user)
    first = await call(api, client_user, etag=cursor)
    assert first.status == 200 and [n["id"] for n in first.data["notifications"]] == [old[0].id]
    [new] = notify(client_user)
    second = await call(api, client_user, etag=first.data["cursor"])  # only what came after the first answer
    assert second.status == 200 and [n["id"] for n in second.data["notifications"]] == [new.id]
    assert (await call(api, client_user, etag=second.data["cursor"])).status == 304


@pytest.mark.gen_test
@pytest.mark.parametrize("header", ['"not-a-cursor"', "*", '"1.a", "1.b"'])
async def test_an_if_none_match_that_names_no_one_cursor_without_since_is_422(api, client_user, header):
    response = await api.get("/api/sync/", user=client_user, headers={"If-None-Match": header})
    assert (response.status, response.error_code) == (422, "validation_error")
    assert list(response.data["error"]["fields"]) == ["If-None-Match"]


def test_a_cursor_writes_equal_watermarks_once_and_still_reads_three():
    equal = sync.Cursor({"n": 5_000_000, "r": 5_000_000, "q": 5_000_000}, {("n", 7, 5_000_001)})
    apart = sync.Cursor({"n": 5_000_000, "r": 4_000_000, "q": 5_000_000})
    assert equal.encode().count(".") == 2 and apart.encode().count(".") == 3
    for cursor in (equal, apart):
        assert sync.Cursor.decode(cursor.encode()) == cursor
    spelt_out = "1." + ".".join([sync._b36(5_000_000)] * 3)  # as cursors were written before
    assert sync.Cursor.decode(spelt_out) == sync.Cursor({"n": 5_000_000, "r": 5_000_000, "q": 5_000_000})
    assert not sync.is_cursor("1.ab.cd") and not sync.is_cursor("1.ab.n1-2.cd")


def count_reads(monkeypatch):
    """{"sync": calls of the sync read, "sessions": session lookups} made from now on."""
    reads = {"sync": 0, "sessions": 0}
    real_sync, loader = sync.sync, identity._users
    real_batch = loader.batch_fn

    def counted_sync(*args, **kwargs):
        reads["sync"] += 1
        return real_sync(*args, **kwargs)

    def counted_batch(keys):
        reads["sessions"] += len(keys)
        return real_batch(keys)

    monkeypatch.setattr(sync, "sync", counted_sync)
    monkeypatch.setattr(loader, "batch_fn", counted_batch)
    return reads


@pytest.mark.gen_test(timeout=30)
async def test_a_304_from_memory_reads_no_row_not_even_the_callers(api, client_user, monkeypatch):
    cursor = (await call(api, client_user)).data["cursor"]
    token = api.token(client_user)
    reads = count_reads(monkeypatch)
    assert (await api.get("/api/sync/", token=token, headers={"If-None-Match": f'"{cursor}"'})).status == 304
    assert reads == {"sync": 1, "sessions": 1}  # the first: read, then remembered for this session
    assert (await api.get("/api/sync/", token=token, headers={"If-None-Match": f'"{cursor}"'})).status == 304
    assert reads == {"sync": 1, "sessions": 1}
    assert (await api.get("/api/sync/", token="not-a-token", headers={"If-None-Match": f'"{cursor}"'})).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_a_session_ended_is_401_at_once_though_its_cursor_was_remembered_quiet(api, client_user, password):
    cursor = (await call(api, client_user)).data["cursor"]
    old_token = api.token(client_user)
    etag = {"If-None-Match": f'"{cursor}"'}
    for _ in range(2):  # read, then answered from memory
        assert (await api.get("/api/sync/", token=old_token, headers=etag)).status == 304
    changed = await api.post(
        "/api/auth/change-password/",
        {"current_password": password, "new_password": "a-much-newer-passphrase-42"},
        user=client_user,
    )
    assert changed.status == 200
    ended = await api.get("/api/sync/", token=old_token, headers=etag)
    assert (ended.status, ended.error_code) == (401, "session_ended")


@pytest.mark.gen_test(timeout=30)
async def test_a_message_heard_while_the_session_is_read_is_not_taken_for_quiet(api, app, client_user, monkeypatch):
    cursor = (await call(api, client_user)).data["cursor"]
    token, etag = api.token(client_user), {"If-None-Match": f'"{cursor}"'}
    hub, real_batch = app.settings["hub"], identity._users.batch_fn

    def session_read_then_a_message(keys):
        answer = real_batch(keys)
        hub.push_threadsafe(client_user.id, {"type": "sync"})  # (a session's end would come the same way)
        return answer

    monkeypatch.setattr(identity._users, "batch_fn", session_read_then_a_message)
    assert (await api.get("/api/sync/", token=token, headers=etag)).status == 304
    monkeypatch.setattr(identity._users, "batch_fn", real_batch)
    reads = count_reads(monkeypatch)
    assert (await api.get("/api/sync/", token=token, headers=etag)).status == 304
    assert reads == {"sync": 1, "sessions": 1}  # read again: the first read may predate that message


@pytest.mark.gen_test
async def test_the_openapi_document_describes_the_conditional_poll(api):
    operation = (await api.get("/api/schema/")).data["paths"]["/api/sync/"]["get"]
    assert "If-None-Match" in {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert "ETag" in operation["responses"]["200"]["headers"] and "ETag" in operation["responses"]["304"]["headers"]
