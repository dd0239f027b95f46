"""The pipeline's batches: several events per delivery job, several emails per email job over one
SMTP connection. A batch that dies or fails part-way is run again and then loses nothing and
doubles nothing: each notification is created once and each email sent once.
"""

import os
import signal
from collections import Counter
from datetime import timedelta

import pytest

from models import Event, Notification
from models.actions import booking
from models.foundation.clock import platform_today
from workers import delivery, email, runtime
from workers.dispatcher import MAX_QUEUED_DELIVERIES
from workers.transport import STREAM

from .booking_support import create_booking
from .conftest import make_settings
from .factories import AdminFactory, ClientFactory
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
    email.connections.close()


def bookings(settings, category, count=4):
    """`count` clients who each booked once: one event and one notification (and email) each."""
    clients = [ClientFactory() for _ in range(count)]
    for client in clients:
        create_booking(settings, category, client)
    return clients


def emails_per_recipient(mailbox):
    return Counter(rcpt for message in mailbox.messages for rcpt in message.rcpt_tos)


def assert_each_once(clients, mailbox):
    for client in clients:
        assert Notification.select().where(Notification.user == client.id).count() == 1
    assert emails_per_recipient(mailbox) == Counter({c.email: 1 for c in clients})
    assert Notification.select().where(Notification.sent_to_email == False).count() == 0


def sent_count():
    return Notification.select().where(Notification.sent_to_email == True).count()


def die_once(marker, when=lambda: True):
    """SIGKILL this process (a work-horse, or the worker itself) the first time `when()` holds."""
    if not marker.exists() and when():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)


def expire_leases_at_once(monkeypatch):
    """The email the dead process had claimed (and may or may not have sent) stays its own until the
    lease expires (tests/test_redrive.py); here the retry comes after that."""
    monkeypatch.setattr(delivery, "EMAIL_LEASE", timedelta(0))


def test_one_read_of_the_stream_becomes_one_delivery_job(pipeline, mail_settings, mailbox, category):
    clients = bookings(mail_settings, category, count=5)

    assert pipeline.dispatch() == 5
    assert pipeline.transport.queue.count == 1  # five events, one job
    assert pipeline.redis.xpending(STREAM, "dispatchers")["pending"] == 0
    pipeline.work()

    assert_each_once(clients, mailbox)
    assert len(mailbox.sessions) == 1  # the five emails went over one SMTP connection


def test_the_dispatcher_splits_a_backlog_into_batches(pipeline, mail_settings, category):
    bookings(mail_settings, category, count=5)
    pipeline.dispatcher.batch = 2

    assert pipeline.dispatch() == 5
    assert pipeline.transport.queue.count == 3  # 2 + 2 + 1


def test_while_workers_are_busy_the_backlog_waits_in_the_stream_and_leaves_as_one_job(
    pipeline, mail_settings, mailbox, category
):
    # Two one-event jobs already wait in RQ (the workers are behind): the dispatcher must not add
    # more one-event jobs, so what arrives meanwhile goes out later as one batch.
    earlier = []
    for _ in range(MAX_QUEUED_DELIVERIES):
        earlier += bookings(mail_settings, category, count=1)
        pipeline.dispatch()
    assert pipeline.transport.queue.count == MAX_QUEUED_DELIVERIES
    later = bookings(mail_settings, category, count=3)
    rounds = iter([False, False, False, True])
    pipeline.dispatcher.run_forever(stop=lambda: next(rounds))
    assert pipeline.transport.queue.count == MAX_QUEUED_DELIVERIES  # nothing taken from the stream

    pipeline.work()  # the workers catch up
    assert pipeline.dispatch() == 3
    assert pipeline.transport.queue.count == 1  # the three that waited: one job
    pipeline.work()
    assert_each_once(earlier + later, mailbox)


def test_a_delivery_batch_killed_after_its_insert_is_retried_without_duplicates(
    pipeline, mail_settings, mailbox, category, monkeypatch, tmp_path
):
    clients = bookings(mail_settings, category)
    marker, real_push = tmp_path / "killed", delivery.push_new

    def die_after_the_insert(notifications):
        die_once(marker)  # the batch's rows are committed; its pushes and emails are not done
        real_push(notifications)

    monkeypatch.setattr(delivery, "push_new", die_after_the_insert)
    pipeline.dispatch()
    pipeline.work_forked()

    assert marker.exists()
    assert_each_once(clients, mailbox)


def test_an_email_batch_killed_half_way_sends_each_email_once(
    pipeline, mail_settings, mailbox, category, monkeypatch, tmp_path
):
    clients = bookings(mail_settings, category)
    marker, real_send = tmp_path / "killed", delivery.send_notification_email

    def die_after_two(settings, notification):
        die_once(marker, when=lambda: sent_count() == 2)
        real_send(settings, notification)

    monkeypatch.setattr(delivery, "send_notification_email", die_after_two)
    expire_leases_at_once(monkeypatch)
    pipeline.dispatch()
    pipeline.work_forked()

    assert marker.exists()
    assert_each_once(clients, mailbox)


def test_the_worker_itself_killed_mid_batch_leaves_the_batch_to_be_retried(
    pipeline, mail_settings, mailbox, category, monkeypatch, tmp_path
):
    clients = bookings(mail_settings, category)
    marker, real_send = tmp_path / "killed", delivery.send_notification_email

    def die_after_one(settings, notification):
        die_once(marker, when=lambda: sent_count() == 1)
        real_send(settings, notification)

    monkeypatch.setattr(delivery, "send_notification_email", die_after_one)
    expire_leases_at_once(monkeypatch)
    pipeline.dispatch()
    status = pipeline.work_in_child()  # `python -m server worker`: no work-horse, the worker dies
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert len(mailbox.messages) == 1

    pipeline.recover_abandoned_jobs()  # the next worker finds the dead worker's batch...
    pipeline.work()  # ...and runs it again

    assert_each_once(clients, mailbox)


def test_a_refused_email_does_not_hold_up_the_rest_of_its_batch(pipeline, mail_settings, mailbox, category):
    clients = bookings(mail_settings, category)
    mailbox.refuse_next = 1

    pipeline.run()

    assert mailbox.refused == 1
    assert_each_once(clients, mailbox)  # the refused one went out on the retry, the others once


def test_an_smtp_connection_the_server_dropped_is_replaced(pipeline, mail_settings, mailbox, category):
    import socket

    first, second = ClientFactory(), ClientFactory()
    create_booking(mail_settings, category, first)
    pipeline.run()
    email.connections.smtp.sock.shutdown(socket.SHUT_RDWR)  # as a server does to an idle connection

    create_booking(mail_settings, category, second)
    pipeline.run()

    assert_each_once([first, second], mailbox)
    assert len(mailbox.sessions) == 2


def test_an_event_that_cannot_be_delivered_does_not_hold_up_its_batch(
    pipeline, mail_settings, mailbox, category, caplog
):
    clients = bookings(mail_settings, category, count=2)
    request = booking.create_request(
        mail_settings,
        ClientFactory(),
        category_id=category.id,
        booking_date=platform_today(mail_settings.zone) + timedelta(days=5),
        address="1 Marina",
        description="Leak",
    )
    # an event whose payload lacks what its notification type needs (a bug, not a fault to retry)
    broken = Event.create(type="assignment_removed", service_request=request.id, payload={})
    pipeline.transport.publish_event(broken.id)

    pipeline.run()

    assert Notification.select().where(Notification.event == broken.id).count() == 0
    for client in clients:
        assert Notification.select().where(Notification.user == client.id).count() == 1
        assert emails_per_recipient(mailbox)[client.email] == 1
    assert f"event {broken.id} could not be rendered" in caplog.text
    assert pipeline.transport.queue.failed_job_registry.count == 1  # kept for a look, after its retries


def test_every_admin_hears_of_every_event_of_a_batch(pipeline, mail_settings, category):
    admins = [AdminFactory(), AdminFactory()]
    requests = [create_booking(mail_settings, category, ClientFactory()) for _ in range(3)]
    for request in requests:
        booking.cancel_request(mail_settings, admins[0], request.id, reason="Duplicate booking")

    pipeline.run()

    told = Notification.select().where(
        Notification.notification_type == "request_cancelled", Notification.user == admins[1].id
    )
    assert told.count() == 3
