"""Retention: given rows of every age and state, when the periodic job runs, then what nobody can need any
more is deleted and nothing else: spent refresh and one-time tokens, notifications and events past their
retention (an open request's timeline kept whole), orphaned RQ job records."""

from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_py
import time_machine

from models import Event, Notification, OneTimeToken, RefreshToken, RequestStatus
from models.actions import accounts
from models.actions.credentials import PASSWORD_RESET, VERIFY_EMAIL, issue_token, verify_email
from models.actions.retention import apply_retention
from models.foundation.clock import utcnow
from models.foundation.errors import ApiError
from models.foundation.settings import ConfigurationError
from workers import periodic, runtime
from workers.rq_retention import delete_orphaned_jobs
from workers.transport import RedisTransport

from .conftest import make_settings
from .factories import PASSWORD, ClientFactory, ServiceRequestFactory

S = RequestStatus
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)  # past the default 365 days
LAST_MONTH = NOW - timedelta(days=30)


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def ids(model):
    return {row.id for row in model.select(model.id)}


def event(request=None, at=LONG_AGO, **fields):
    return Event.create(type="request_updated", service_request=request, created_at=at, delivered_at=at, **fields)


def notification(user, request=None, at=LONG_AGO, event_row=None):
    return Notification.create(
        user=user,
        service_request=request,
        event=event_row,
        notification_type="request_updated",
        title="Update",
        message="Your booking changed.",
        created_at=at,
    )


# Refresh tokens -----------------------------------------------------------------------------------


def test_expired_refresh_tokens_go_live_ones_stay(settings, now):
    user = ClientFactory()
    with time_machine.travel(NOW - timedelta(days=settings.refresh_token_days + 1), tick=False):
        accounts.login(settings, user.email, PASSWORD)  # expired yesterday
    accounts.login(settings, user.email, PASSWORD)
    live = RefreshToken.get(RefreshToken.expires_at > NOW)

    assert apply_retention(settings)["refresh_token"] == 1
    assert ids(RefreshToken) == {live.id}


def test_a_revoked_token_of_a_live_family_stays_so_its_reuse_is_still_caught(settings, now):
    user = ClientFactory()
    _, first = accounts.login(settings, user.email, PASSWORD)
    accounts.rotate_refresh(settings, first["refresh"])  # `first` is revoked, its successor live

    assert apply_retention(settings)["refresh_token"] == 0
    with pytest.raises(ApiError) as reused:
        accounts.rotate_refresh(settings, first["refresh"])  # a thief replays the rotated token
    assert reused.value.code == "token_reused"


def test_a_signed_out_family_goes_whole(settings, now):
    user = ClientFactory()
    _, signed_out = accounts.login(settings, user.email, PASSWORD)
    second = accounts.rotate_refresh(settings, signed_out["refresh"])
    accounts.logout(settings, user, second["refresh"])  # nothing of this family is live any more
    _, other_login = accounts.login(settings, user.email, PASSWORD)

    assert apply_retention(settings)["refresh_token"] == 2
    assert RefreshToken.select().count() == 1
    assert accounts.rotate_refresh(settings, other_login["refresh"])["refresh"]  # the other login still works


# One-time tokens ----------------------------------------------------------------------------------


def test_used_and_expired_links_go_after_their_grace_period(settings, now):
    user = ClientFactory()
    days = settings.one_time_token_retention_days
    with time_machine.travel(NOW - timedelta(days=days + 1), tick=False):
        _, used_long_ago = issue_token(settings, user.id, VERIFY_EMAIL)
        verify_email(used_long_ago)
        issue_token(settings, user.id, PASSWORD_RESET)  # expired an hour later, unused
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        _, used_yesterday = issue_token(settings, user.id, VERIFY_EMAIL)
        verify_email(used_yesterday)
    live_id, _ = issue_token(settings, user.id, PASSWORD_RESET)

    assert apply_retention(settings)["one_time_token"] == 2
    assert len(ids(OneTimeToken)) == 2 and live_id in ids(OneTimeToken)
    with pytest.raises(ApiError) as opened_again:  # still "used", not "not valid", within the grace period
        verify_email(used_yesterday)
    assert opened_again.value.code == "token_used"


# Notifications ------------------------------------------------------------------------------------


def test_notifications_past_retention_go_an_open_requests_stay(settings, now):
    user = ClientFactory()
    old = notification(user)
    recent = notification(user, at=LAST_MONTH)
    open_request = ServiceRequestFactory(client=user, status=S.IN_PROGRESS, updated_at=LONG_AGO)
    of_open_request = notification(user, open_request)
    finished_long_ago = ServiceRequestFactory(client=user, status=S.COMPLETED, updated_at=LONG_AGO)
    of_finished = notification(user, finished_long_ago)
    finished_lately = ServiceRequestFactory(client=user, status=S.CANCELLED, updated_at=LAST_MONTH)
    of_finished_lately = notification(user, finished_lately)  # its timeline is kept whole a while longer

    assert apply_retention(settings)["notification"] == 2
    assert ids(Notification) == {recent.id, of_open_request.id, of_finished_lately.id}
    assert old.id not in ids(Notification) and of_finished.id not in ids(Notification)


def test_retention_days_are_configurable_and_zero_keeps_for_ever(now):
    user = ClientFactory()
    notification(user, at=LAST_MONTH)
    event(at=LAST_MONTH)

    assert apply_retention(make_settings(NOTIFICATION_RETENTION_DAYS="0", EVENT_RETENTION_DAYS="0")) == {
        "refresh_token": 0,
        "one_time_token": 0,
        "notification": 0,
        "event": 0,
    }
    counts = apply_retention(make_settings(NOTIFICATION_RETENTION_DAYS="20", EVENT_RETENTION_DAYS="20"))
    assert (counts["notification"], counts["event"]) == (1, 1)


# Events -------------------------------------------------------------------------------------------


def test_events_past_retention_go_an_open_requests_timeline_stays(settings, now):
    user = ClientFactory()
    account_event = event()  # vetting and other account events have no request
    recent = event(at=LAST_MONTH)
    open_request = ServiceRequestFactory(client=user, status=S.NEGOTIATING, updated_at=LONG_AGO)
    timeline = [event(open_request), event(open_request, at=LAST_MONTH)]
    deleted_request = ServiceRequestFactory(
        client=user, status=S.PENDING_PAYMENT, is_deleted=True, deleted_at=LONG_AGO, updated_at=LONG_AGO
    )
    of_deleted = event(deleted_request)
    finished = ServiceRequestFactory(client=user, status=S.COMPLETED, updated_at=LONG_AGO)
    finished_timeline = [event(finished), event(finished)]
    notification(user, finished, event_row=finished_timeline[0])

    counts = apply_retention(settings)
    assert counts["notification"] == 1 and counts["event"] == 4
    assert ids(Event) == {recent.id, *(row.id for row in timeline)}
    assert account_event.id not in ids(Event) and of_deleted.id not in ids(Event)


def test_an_event_a_kept_notification_points_to_stays(settings, now):
    user = ClientFactory()
    old_event = event()
    notification(user, at=LAST_MONTH, event_row=old_event)  # kept: younger than the retention

    assert apply_retention(settings)["event"] == 0
    assert ids(Event) == {old_event.id}


def test_retention_is_one_of_the_periodic_jobs_and_runs_embedded(settings, now):
    assert (periodic.apply_retention, 3600) in periodic.SCHEDULE
    event()
    runtime.configure(settings, None)  # embedded mode: no Redis, the database rules only
    try:
        assert periodic.apply_retention()["event"] == 1
    finally:
        runtime.reset()


def test_retention_settings_are_read_and_checked():
    settings = make_settings(
        NOTIFICATION_RETENTION_DAYS="90", EVENT_RETENTION_DAYS="730", ONE_TIME_TOKEN_RETENTION_DAYS="0"
    )
    assert (
        settings.notification_retention_days,
        settings.event_retention_days,
        settings.one_time_token_retention_days,
    ) == (90, 730, 0)
    assert make_settings().notification_retention_days == 365 == make_settings().event_retention_days
    with pytest.raises(ConfigurationError, match="EVENT_RETENTION_DAYS"):
        make_settings(EVENT_RETENTION_DAYS="-1")


# RQ job records -----------------------------------------------------------------------------------


def noop():
    return None


def test_orphaned_rq_job_records_go_queued_running_and_failed_ones_stay(redis_url):
    transport = RedisTransport(redis_url)
    client = redis_py.Redis.from_url(redis_url)
    queued = transport.queue.enqueue(noop, job_id="queued")
    failed = transport.queue.enqueue(noop, job_id="failed")
    with client.pipeline() as pipe:
        transport.queue.remove(failed, pipeline=pipe)
        transport.queue.failed_job_registry.add(failed, ttl=-1, pipeline=pipe)  # kept for ever on purpose
        pipe.execute()
    orphan = transport.queue.enqueue(noop, job_id="orphan")
    recent_orphan = transport.queue.enqueue(noop, job_id="recent-orphan")
    for job in (orphan, recent_orphan):
        transport.queue.remove(job)  # as a worker killed between RQ's two steps leaves it
    client.hset("rq:job:orphan", "enqueued_at", "2026-01-01T00:00:00.000000Z")
    client.hset("rq:job:orphan", "created_at", "2026-01-01T00:00:00.000000Z")
    now = datetime.now(UTC)
    assert now > datetime(2026, 1, 1, 1, tzinfo=UTC)

    assert delete_orphaned_jobs(client, transport.queues, now=now) == 1
    assert not client.exists("rq:job:orphan")
    assert all(client.exists(f"rq:job:{job_id}") for job_id in ("queued", "failed", "recent-orphan"))
    assert transport.queue.get_job_ids() == [queued.id]


def test_the_periodic_job_cleans_rq_too_with_redis(settings, redis_url, now):
    transport = RedisTransport(redis_url)
    job = transport.queue.enqueue(noop, job_id="orphan")
    transport.queue.remove(job)
    runtime.configure(settings, transport)
    try:
        assert periodic.apply_retention()["rq_job"] == 0  # just orphaned: not an hour untouched yet
        with time_machine.travel(utcnow() + timedelta(hours=2), tick=False):
            assert periodic.apply_retention()["rq_job"] == 1
    finally:
        runtime.reset()


def test_every_retention_and_backup_setting_is_documented():
    from models.foundation.settings import PROJECT_ROOT

    readme, example = (PROJECT_ROOT / "README.md").read_text(), (PROJECT_ROOT / ".env.example").read_text()
    for name in (
        "NOTIFICATION_RETENTION_DAYS",
        "EVENT_RETENTION_DAYS",
        "ONE_TIME_TOKEN_RETENTION_DAYS",
        "BACKUP_DIR",
        "BACKUP_SCHEDULE",
        "BACKUP_KEEP_COUNT",
        "BACKUP_KEEP_DAYS",
    ):
        assert f"`{name}`" in readme and f"\n{name}=" in example, name
