"""The database records each delivery, and the re-drive sweep does what a queue lost.

Given events and notifications in some state a dead process or an emptied Redis left behind, when a
retry or the sweep runs, then every row exists once, is pushed once and emailed once; the sweep leaves
the fast path its grace, and two sweepers never do one thing twice.
"""

import threading
import time
from datetime import UTC, timedelta

import pytest

from models import Event, Notification, database
from models.foundation.clock import utcnow
from workers import delivery, outbox, runtime

from .booking_support import create_booking
from .factories import AdminFactory, ClientFactory


class Recorder:
    """A transport that records what the pipeline hands it (pushes, jobs, published events)."""

    retry_intervals = (0,)

    def __init__(self):
        self.published, self.pushes, self.jobs = [], [], []
        self.fail_pushes = False
        self.publish_seconds = 0  # a slow publish holds the window between a claim and its record open

    def publish_event(self, event_id):
        self.published.append(event_id)

    def push_many(self, messages):
        if self.fail_pushes:
            raise ConnectionError("Redis went away")
        time.sleep(self.publish_seconds)
        self.pushes += messages

    def push(self, user_id, message):
        self.push_many([(user_id, message)])

    def announce_listing_changed(self):
        pass

    def enqueue(self, fn, *args, job_id):
        self.jobs.append((fn.__name__, *args))

    def pushed_ids(self):
        return [m["notification"]["id"] for _, m in self.pushes if m["type"] == "notification"]

    def queued_email_ids(self):
        return [i for name, ids in self.jobs if name == "send_emails" for i in ids]


@pytest.fixture
def transport(settings):
    recorder = Recorder()
    runtime.configure(settings, recorder)
    yield recorder
    runtime.reset()


def book(settings, category, client=None):
    """A booking's event (committed with it, not yet delivered)."""
    return Event.get(Event.service_request == create_booking(settings, category, client).id)


def later(seconds):
    return utcnow() + timedelta(seconds=seconds)


def test_delivery_marks_the_event_delivered_with_its_rows_even_without_recipients(settings, category, transport):
    event = book(settings, category)
    silent = Event.create(type="no_such_notification_type", payload={})  # nobody to notify

    delivery.deliver_events([event.id, silent.id])

    assert Event.get_by_id(event.id).delivered_at is not None
    assert Event.get_by_id(silent.id).delivered_at is not None
    [row] = Notification.select().where(Notification.event == event.id)
    assert row.pushed_at is not None and transport.pushed_ids() == [row.id]
    assert transport.queued_email_ids() == [row.id]


def test_a_retry_pushes_what_the_first_attempt_did_not(settings, category, transport, monkeypatch):
    events = [book(settings, category), book(settings, category)]
    ids = [e.id for e in events]
    transport.fail_pushes = True
    with pytest.raises(ConnectionError):
        delivery.deliver_events(ids)  # rows inserted and committed, then the push failed (or the worker died)
    transport.fail_pushes = False
    rows = list(Notification.select().where(Notification.event.in_(ids)))
    assert len(rows) == 2 and all(r.pushed_at is None for r in rows)

    delivery.deliver_events(ids)  # a retry at once: the first attempt's lease still holds
    assert transport.pushed_ids() == []

    monkeypatch.setattr(delivery, "utcnow", lambda: later(delivery.PUSH_LEASE.total_seconds() + 1))
    delivery.deliver_events(ids)  # the retry after the lease
    delivery.deliver_events(ids)  # and a replay after that

    assert sorted(transport.pushed_ids()) == sorted(r.id for r in rows)  # each once
    assert Notification.select().where(Notification.event.in_(ids), Notification.pushed_at.is_null()).count() == 0
    assert Notification.select().where(Notification.event.in_(ids)).count() == 2


def test_the_sweep_delivers_a_published_event_whose_job_was_lost(settings, category, transport):
    event = book(settings, category)  # published (to the recorder), never delivered: the job is gone
    assert transport.published == [event.id]

    assert outbox.redrive()["delivered"] == 0  # within the grace, the fast path may still come
    counts = outbox.redrive(now=later(outbox.SWEEP_GRACE.total_seconds() + 1))

    assert counts["delivered"] == 1
    [row] = Notification.select().where(Notification.event == event.id)
    assert transport.pushed_ids() == [row.id] and transport.queued_email_ids() == [row.id]
    assert Event.get_by_id(event.id).delivered_at is not None
    assert outbox.redrive(now=later(60))["delivered"] == 0  # delivered now: nothing left


def test_an_event_that_cannot_be_delivered_is_retried_a_bounded_number_of_times(settings, category, transport):
    event = book(settings, category)
    broken = Event.create(
        type="assignment_removed", service_request=event.service_request_id, payload={}, published_at=utcnow()
    )  # its payload lacks what its type needs: a bug

    passes = [
        outbox.redrive(now=later(10 + i * (outbox.EVENT_REDRIVE_LEASE.total_seconds() + 1)))["delivered"]
        for i in range(outbox.EVENT_MAX_REDRIVES + 2)
    ]

    assert passes[0] == 2  # the good event and the broken one
    assert passes[1 : outbox.EVENT_MAX_REDRIVES] == [1] * (outbox.EVENT_MAX_REDRIVES - 1)
    assert passes[outbox.EVENT_MAX_REDRIVES :] == [0, 0]  # then it is left alone
    assert Event.get_by_id(broken.id).delivered_at is None


def test_the_sweep_pushes_recent_rows_never_pushed_and_only_those(settings, category, transport):
    client = ClientFactory()
    make = lambda age, **kw: Notification.create(  # noqa: E731
        user=client,
        notification_type="request_created",
        title="t",
        message="m",
        created_at=utcnow() - timedelta(seconds=age),
        **kw,
    )
    lost = make(10)
    make(1)  # too fresh: its worker is pushing it now
    make(outbox.PUSH_WINDOW.total_seconds() + 10)  # too old: the dashboard has reloaded since
    make(10, pushed_at=utcnow())  # pushed already
    make(10, push_claimed_until=later(5))  # a live worker holds it

    assert outbox.redrive()["pushed"] == 1
    assert transport.pushed_ids() == [lost.id]
    assert Notification.get_by_id(lost.id).pushed_at is not None
    assert outbox.redrive()["pushed"] == 0


def test_the_sweep_queues_unsent_emails_once_and_backs_off(settings, category, transport):
    client = ClientFactory()
    make = lambda age, **kw: Notification.create(  # noqa: E731
        user=client,
        notification_type="request_created",
        title="t",
        message="m",
        pushed_at=utcnow(),
        created_at=utcnow() - timedelta(seconds=age),
        **kw,
    )
    lost = make(60)
    make(2)  # too fresh: still in the fast path's queue
    make(60, sent_to_email=True)
    make(60, email_claimed_until=later(30))  # being sent now
    make(60, email_redrive_after=later(30))  # failed a moment ago: the backoff holds it
    make(60, email_attempts=delivery.EMAIL_MAX_ATTEMPTS)  # given up
    make(outbox.REDRIVE_WINDOW.total_seconds() + 60)  # a day late is too late

    assert outbox.redrive()["emails_queued"] == 1
    assert transport.queued_email_ids() == [lost.id]
    assert outbox.redrive()["emails_queued"] == 0  # queued: held back from the next pass
    transport.jobs.clear()
    outbox.redrive(now=later(outbox.EMAIL_REQUEUE_HOLD.total_seconds() + 1))
    assert lost.id in transport.queued_email_ids()  # that job was lost too: queued again


def test_concurrent_sweepers_never_do_one_thing_twice(settings, category, transport):
    events = [book(settings, category) for _ in range(6)]
    transport.publish_seconds = 0.05
    when = later(outbox.SWEEP_GRACE.total_seconds() + 1)  # (within the lease of what a sweeper claims)
    barrier = threading.Barrier(3)  # the pool has 4 connections; the test holds one
    errors = []

    def sweeper():
        try:
            with database.connection_context():
                barrier.wait()
                outbox.redrive(now=when)
                outbox.redrive(now=when)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    rows = list(Notification.select().where(Notification.event.in_([e.id for e in events])))
    assert len(rows) == 6
    assert sorted(transport.pushed_ids()) == sorted(r.id for r in rows)  # each row pushed once
    assert sorted(transport.queued_email_ids()) == sorted(r.id for r in rows)  # each email queued once


def test_an_email_someone_else_is_sending_is_not_sent_again(settings, category, transport, monkeypatch):
    event = book(settings, category)
    delivery.deliver_events([event.id])
    row = Notification.get(Notification.event == event.id)
    sent = []
    monkeypatch.setattr(delivery, "send_notification_email", lambda s, n: sent.append(n.id) or "log")
    assert delivery.claim_email(row.id)  # another worker took it a moment ago

    assert delivery.send_emails([row.id]) == 0
    monkeypatch.setattr(delivery, "utcnow", lambda: later(delivery.EMAIL_LEASE.total_seconds() + 1))
    assert delivery.send_emails([row.id]) == 1  # that worker died: after its lease, it goes
    assert delivery.send_emails([row.id]) == 0
    assert sent == [row.id]


def test_a_refused_email_is_free_for_the_retry_and_held_back_from_the_sweep(settings, category, transport, monkeypatch):
    import smtplib

    monkeypatch.setattr(delivery, "EMAIL_BACKOFF_SECONDS", (60,))
    event = book(settings, category)
    delivery.deliver_events([event.id])
    row = Notification.get(Notification.event == event.id)

    def refuse(settings, notification):
        raise smtplib.SMTPResponseException(451, b"try again later")

    monkeypatch.setattr(delivery, "send_notification_email", refuse)
    with pytest.raises(delivery.DeliveryError):
        delivery.send_emails([row.id])

    row = Notification.get_by_id(row.id)
    assert row.email_attempts == 1 and row.email_claimed_until is None  # the transport's retry may take it
    assert outbox.redrive(now=later(outbox.EMAIL_GRACE.total_seconds() + 1))["emails_queued"] == 0
    assert outbox.redrive(now=later(61))["emails_queued"] == 1  # after the backoff, the sweep tries again


def test_an_accepted_email_is_marked_even_while_another_connection_writes(settings, category, transport, monkeypatch):
    """SQLite: a write while this connection's read cursor is open fails ("database is locked"), and
    the job's retry sent the accepted email a second time (issue 22). The batch is read first now."""
    clients = [ClientFactory(), ClientFactory()]
    events = [book(settings, category, client) for client in clients]
    delivery.deliver_events([e.id for e in events])
    ids = [n.id for n in Notification.select().where(Notification.event.in_([e.id for e in events]))]
    sent = []

    def send_while_another_thread_writes(settings, notification):
        def write():
            with database.connection_context():
                AdminFactory()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
        sent.append(notification.id)
        return "log"

    monkeypatch.setattr(delivery, "send_notification_email", send_while_another_thread_writes)
    assert delivery.send_emails(ids) == 2
    assert delivery.send_emails(ids) == 0
    assert sorted(sent) == sorted(ids)
    marked = Notification.select().where(Notification.id.in_(ids), Notification.sent_to_email == True)
    assert marked.count() == 2


@pytest.mark.gen_test
async def test_the_embedded_web_process_runs_the_sweep_on_its_timer(app, settings, category, monkeypatch):
    """No dispatcher without Redis: the web process's timer re-drives (here: an event published whose
    delivery died)."""
    from datetime import datetime

    import time_machine

    from server.app import start_embedded_sweep

    monkeypatch.setattr(delivery, "deliver_event", lambda event_id: (_ for _ in ()).throw(RuntimeError("died")))
    event = book(settings, category)
    monkeypatch.undo()
    Event.update(published_at=utcnow()).where(Event.id == event.id).execute()

    callback = start_embedded_sweep(settings)
    try:
        assert callback.callback_time == outbox.REDRIVE_EVERY_SECONDS * 1000
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=10)):
            await callback.callback()  # one tick of the timer
    finally:
        callback.stop()

    assert Event.get_by_id(event.id).delivered_at is not None
    assert Notification.select().where(Notification.event == event.id).count() == 1
    assert start_embedded_sweep(replace_redis(settings)) is None  # Redis mode: the dispatchers sweep


def replace_redis(settings):
    from dataclasses import replace

    return replace(settings, redis_url="redis://127.0.0.1:6379/0")
