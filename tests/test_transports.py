"""The embedded transport (no Redis) and the dispatcher loop."""

import logging
import threading

from workers.dispatcher import Dispatcher
from workers.transport import EmbeddedTransport

from .pipeline_support import use_pipeline


def test_embedded_jobs_are_retried_until_they_succeed():
    transport = EmbeddedTransport(retry_intervals=(0, 0, 0))
    attempts, done = [], threading.Event()

    def flaky(value):
        attempts.append(value)
        if len(attempts) < 3:
            raise ConnectionError("SMTP not ready")
        done.set()

    transport.enqueue(flaky, "x", job_id="flaky")
    assert done.wait(5)
    transport.shutdown()
    assert attempts == ["x", "x", "x"]


class _GaveUp(logging.Handler):
    def __init__(self):
        super().__init__()
        self.event = threading.Event()

    def emit(self, record):
        if "failed for good" in record.getMessage():
            self.event.set()


def test_embedded_jobs_give_up_after_the_last_retry():
    transport = EmbeddedTransport(retry_intervals=(0,))
    watcher = _GaveUp()
    logging.getLogger("serviceman.transport").addHandler(watcher)
    attempts = []

    def always_fails():
        attempts.append(1)
        raise RuntimeError("broken")

    try:
        transport.enqueue(always_fails, job_id="broken")
        assert watcher.event.wait(5)
    finally:
        logging.getLogger("serviceman.transport").removeHandler(watcher)
        transport.shutdown()
    assert len(attempts) == 2  # the first try and one retry


class _RecordingHub:
    def __init__(self):
        self.pushed = []

    def push_threadsafe(self, user_id, message):
        self.pushed.append((user_id, message))


def test_embedded_push_without_a_hub_is_a_no_op(caplog):
    """A process with no websocket hub (a CLI command, a worker) delivers notifications whose pushes
    go nowhere: nothing raised, nothing logged. With a hub, the same calls reach it."""
    message = {"type": "unread_count", "count": 0}
    transport = EmbeddedTransport()
    with caplog.at_level(logging.DEBUG):
        assert transport.push(1, message) is None
        assert transport.push_many([(1, message), (2, message)]) is None
    assert caplog.records == []
    transport.shutdown()

    hub = _RecordingHub()
    with_hub = EmbeddedTransport(hub=hub)
    with_hub.push(1, message)
    with_hub.push_many([(2, message), (3, message)])
    with_hub.shutdown()
    assert hub.pushed == [(1, message), (2, message), (3, message)]


def test_dispatcher_loop_sweeps_reclaims_and_polls_until_stopped(settings, redis_url, category):
    from datetime import timedelta

    from models import Notification
    from models.actions import booking
    from models.foundation.clock import platform_today
    from workers import runtime

    from .factories import ClientFactory

    pipeline = use_pipeline(settings, redis_url)
    try:
        client = ClientFactory()
        booking.create_request(
            settings,
            client,
            category_id=category.id,
            address="a",
            description="b",
            booking_date=platform_today(settings.zone) + timedelta(days=3),
        )
        dispatcher = Dispatcher(pipeline.redis, pipeline.transport, consumer="loop", min_idle_ms=0)
        rounds = iter([False, False, True])
        dispatcher.run_forever(stop=lambda: next(rounds))
        pipeline.work()
        assert Notification.select().where(Notification.user == client.id).count() == 1
    finally:
        runtime.reset()


def test_health_is_503_naming_redis_when_it_is_down(settings):
    from dataclasses import replace

    from models.actions import health

    down = replace(settings, redis_url="redis://127.0.0.1:1/0")
    status, body = health.health(health.database_state(down), health.redis_state(down))
    assert status == 503
    assert body == {"status": "unavailable", "database": "ok", "redis": "unavailable"}


def test_embedded_publish_delivers_before_marking_the_event_published(settings, category, monkeypatch):
    from datetime import timedelta

    from models import Event, Notification
    from models.actions import booking
    from models.foundation.clock import platform_today
    from workers import delivery, outbox, runtime

    from .factories import ClientFactory

    runtime.configure(settings, EmbeddedTransport(retry_intervals=()))
    try:
        client = ClientFactory()

        def crash(event_id):
            raise RuntimeError("process died mid-delivery")

        monkeypatch.setattr(delivery, "deliver_event", crash)
        request = booking.create_request(
            settings,
            client,
            category_id=category.id,
            address="a",
            description="b",
            booking_date=platform_today(settings.zone) + timedelta(days=3),
        )
        event = Event.get(Event.service_request == request.id)
        assert event.published_at is None  # not delivered, so not published
        monkeypatch.undo()

        assert outbox.sweep_outbox(grace=timedelta(0)) == 1  # after the "restart"
        assert Notification.select().where(Notification.user == client.id).count() == 1
        assert Event.get_by_id(event.id).published_at is not None
    finally:
        runtime.transport().shutdown()
        runtime.reset()
