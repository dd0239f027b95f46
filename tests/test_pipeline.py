"""The notification pipeline for real: PostgreSQL/SQLite, Redis streams and RQ, an SMTP server.

Given a workflow action, when the dispatcher and a worker run, then every recipient has exactly one
notification and one email, whatever faults happen in between.
"""

import os
import signal
from datetime import timedelta

import pytest
import redis

from models import Event, Notification, RequestStatus
from models.actions import booking
from workers import delivery, outbox, runtime
from workers.transport import DEAD_LETTER_STREAM, STREAM

from .booking_support import create_booking
from .conftest import make_settings
from .factories import AdminFactory, ClientFactory, ServiceRequestFactory
from .pipeline_support import use_pipeline


@pytest.fixture
def mail_settings(mailbox, redis_url):
    return make_settings(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false", REDIS_URL=redis_url
    )


@pytest.fixture
def pipeline(mail_settings, redis_url):
    yield use_pipeline(mail_settings, redis_url)
    runtime.reset()


def emails_to(mailbox, address):
    return [m for m in mailbox.messages if address in m.rcpt_tos]


def test_booking_reaches_the_dashboard_list_and_the_smtp_server(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    request = create_booking(mail_settings, category, client)
    event = Event.get(Event.service_request == request.id)
    assert event.published_at is not None  # published right after commit

    pipeline.run()

    [notification] = Notification.select().where(Notification.user == client.id)
    assert notification.notification_type == "request_created"
    assert notification.payload["service_request_id"] == request.id
    assert notification.payload["is_emergency"] is False
    assert notification.sent_to_email and notification.email_sent_at is not None
    [email] = emails_to(mailbox, client.email)
    assert f"Booking #{request.id} received" in email.content.decode()
    assert pipeline.redis.xpending(STREAM, "dispatchers")["pending"] == 0


def test_cancellation_notifies_everyone_concerned_except_whoever_cancelled(pipeline, mail_settings, mailbox, category):
    admin, other_admin, client = AdminFactory(), AdminFactory(), ClientFactory()
    request = create_booking(mail_settings, category, client)
    booking.cancel_request(mail_settings, admin, request.id, reason="Duplicate booking")

    pipeline.run()

    cancelled = Notification.select().where(Notification.notification_type == "request_cancelled")
    assert sorted(n.user_id for n in cancelled) == sorted([client.id, other_admin.id])
    assert len(emails_to(mailbox, admin.email)) == 0
    assert len(emails_to(mailbox, other_admin.email)) == 1


def test_a_replayed_stream_entry_creates_nothing_twice(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    request = create_booking(mail_settings, category, client)
    event = Event.get(Event.service_request == request.id)
    pipeline.run()

    # the same event arrives again (a replay, or the outbox sweep racing the first publish)
    pipeline.transport.publish_event(event.id)
    pipeline.transport.publish_event(event.id)
    pipeline.run()

    assert Notification.select().where(Notification.event == event.id).count() == 1
    assert len(emails_to(mailbox, client.email)) == 1


def test_redis_down_during_an_action_loses_nothing_and_doubles_nothing(private_redis, mailbox, category):
    settings = make_settings(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false", REDIS_URL=private_redis.url
    )
    pipeline = use_pipeline(settings, private_redis.url)
    try:
        client = ClientFactory()
        private_redis.stop()

        # the action still succeeds; its event waits in the outbox
        request = create_booking(settings, category, client)
        event = Event.get(Event.service_request == request.id)
        assert request.status == RequestStatus.PENDING_PAYMENT
        assert event.published_at is None

        private_redis.start()
        pipeline = use_pipeline(settings, private_redis.url)
        assert outbox.sweep_outbox(grace=timedelta(0)) == 1
        assert outbox.sweep_outbox(grace=timedelta(0)) == 0  # published once, not again
        pipeline.run()
        pipeline.run()

        assert Notification.select().where(Notification.user == client.id).count() == 1
        assert len(emails_to(mailbox, client.email)) == 1
    finally:
        runtime.reset()


def test_entries_of_a_dead_dispatcher_are_reclaimed(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    create_booking(mail_settings, category, client)
    # a dispatcher reads the entry and dies before acknowledging it
    pipeline.redis.xreadgroup("dispatchers", "dead-consumer", {STREAM: ">"}, count=10)
    assert pipeline.dispatch() == 0  # nothing new for the live consumer...

    assert pipeline.dispatcher.reclaim() == 1  # ...until it claims the dead one's entry
    pipeline.work()

    assert Notification.select().where(Notification.user == client.id).count() == 1
    assert pipeline.redis.xpending(STREAM, "dispatchers")["pending"] == 0


def test_an_entry_that_keeps_failing_goes_to_the_dead_letter_stream(
    pipeline, mail_settings, category, caplog, monkeypatch
):
    create_booking(mail_settings, category, ClientFactory())

    def refuse(*args, **kwargs):
        raise redis.ResponseError("queue refused the job")

    monkeypatch.setattr(pipeline.transport, "enqueue", refuse)
    pipeline.dispatch()  # first delivery fails and stays pending
    for _ in range(pipeline.dispatcher.max_deliveries):
        pipeline.dispatcher.reclaim()

    dead = pipeline.redis.xrange(DEAD_LETTER_STREAM)
    assert len(dead) == 1 and dead[0][1][b"reason"].startswith(b"failed")
    assert pipeline.redis.xpending(STREAM, "dispatchers")["pending"] == 0
    assert "dead-lettering" in caplog.text


def test_a_malformed_entry_is_dead_lettered_at_once(pipeline):
    pipeline.redis.xadd(STREAM, {"event_id": "not-a-number"})
    pipeline.dispatch()
    assert len(pipeline.redis.xrange(DEAD_LETTER_STREAM)) == 1
    assert pipeline.redis.xpending(STREAM, "dispatchers")["pending"] == 0


def test_smtp_refusing_then_accepting_sends_the_email_once(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    mailbox.refuse_next = 2
    create_booking(mail_settings, category, client)

    pipeline.run()

    notification = Notification.get(Notification.user == client.id)
    assert mailbox.refused == 2
    assert len(emails_to(mailbox, client.email)) == 1
    assert notification.sent_to_email and notification.email_sent_at is not None
    assert delivery.send_email(notification.id) is False  # a late retry sends no second copy
    assert len(emails_to(mailbox, client.email)) == 1


def test_email_is_marked_sent_only_after_the_server_accepts_it(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    mailbox.refuse_next = 99
    create_booking(mail_settings, category, client)

    pipeline.run()  # every attempt refused; retries exhausted

    notification = Notification.get(Notification.user == client.id)
    assert not notification.sent_to_email and notification.email_sent_at is None
    assert mailbox.messages == []


def test_a_worker_killed_mid_job_is_retried_without_duplicates(
    pipeline, mail_settings, mailbox, category, monkeypatch, tmp_path
):
    client = ClientFactory()
    request = create_booking(mail_settings, category, client)
    killed_once = tmp_path / "killed"
    real_push = delivery.push_new

    def die_the_first_time(notifications):
        # runs in the forked work-horse, after the notification rows were committed
        if not killed_once.exists():
            killed_once.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
        real_push(notifications)

    monkeypatch.setattr(delivery, "push_new", die_the_first_time)
    pipeline.dispatch()
    pipeline.work_forked()

    assert killed_once.exists()  # the horse really died mid-job
    assert Notification.select().where(Notification.service_request == request.id).count() == 1
    assert len(emails_to(mailbox, client.email)) == 1


def test_emergency_is_highlighted_in_title_and_email(pipeline, mail_settings, mailbox, category):
    client = ClientFactory()
    create_booking(mail_settings, category, client, days_ahead=1)
    pipeline.run()

    notification = Notification.get(Notification.user == client.id)
    assert notification.title.startswith("[EMERGENCY]")
    assert notification.payload["is_emergency"] is True
    [email] = emails_to(mailbox, client.email)
    body = email.content.decode()
    assert "EMERGENCY" in body and "X-Priority: 1" in body


def test_emergency_change_after_assignment_reaches_both_servicemen(pipeline, mail_settings, mailbox):
    from .factories import ServicemanFactory

    admin = AdminFactory()
    primary, backup = ServicemanFactory(), ServicemanFactory()
    request = ServiceRequestFactory(status=RequestStatus.ASSIGNED, primary_serviceman=primary, backup_serviceman=backup)
    booking.set_emergency(mail_settings, admin, request.id, True)
    pipeline.run()

    changed = Notification.select().where(Notification.notification_type == "emergency_changed")
    assert sorted(n.user_id for n in changed) == sorted([primary.id, backup.id])
    assert all(n.payload["is_emergency"] for n in changed)
    assert len(emails_to(mailbox, primary.email)) == 1 and len(emails_to(mailbox, backup.email)) == 1


def test_outbox_sweep_leaves_fresh_events_to_the_after_commit_publish(pipeline, mail_settings, category):
    runtime.reset()  # as if the process died between commit and publish
    create_booking(mail_settings, category, ClientFactory())
    use_pipeline(mail_settings, mail_settings.redis_url)
    assert outbox.sweep_outbox() == 0  # younger than the grace period
    assert outbox.sweep_outbox(grace=timedelta(0)) == 1
    assert Event.select().where(Event.published_at.is_null()).count() == 0


def test_stream_is_trimmed(pipeline, monkeypatch):
    import workers.transport as transport_module

    monkeypatch.setattr(transport_module, "STREAM_MAXLEN", 10)
    for event_id in range(500):
        pipeline.transport.publish_event(event_id)
    assert pipeline.redis.xlen(STREAM) < 500
