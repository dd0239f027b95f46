"""The pipeline processes ride out outages and deploys, each mechanism on its own against real Redis:
a consumer group that vanished with Redis's data, dispatchers that died or stopped, a job that
failed because a server was away, a cron whose Redis restarted, a process started before its
servers. (tests/test_faults_pipeline_processes.py runs them all together, as real processes.)
"""

import logging
import signal
import threading

import peewee
import pytest
import redis

from models import Notification
from workers import delivery, runtime
from workers.cron import run_cron
from workers.dispatcher import GROUP, LIVENESS_KEY, Dispatcher
from workers.outages import Stopping
from workers.transport import STREAM
from workers.worker import OUTAGE_REQUEUES, PipelineWorker

from .booking_support import create_booking
from .conftest import TEST_DATABASE_URL, make_settings
from .fault_support import Procfile, process_env, wait_until
from .pipeline_support import PrivateRedis, free_port, use_pipeline


@pytest.fixture
def pipeline(settings, redis_url):
    yield use_pipeline(settings, redis_url)
    runtime.reset()


def consumers(client):
    return sorted(c["name"].decode() for c in client.xinfo_consumers(STREAM, GROUP))


def rounds(count):
    """A `stop` for run_forever: false `count` times, then true."""
    answers = iter([False] * count + [True])
    return lambda: next(answers)


def test_a_consumer_group_lost_with_redis_data_is_created_again(pipeline, settings, category):
    create_booking(settings, category)
    dispatcher = Dispatcher(pipeline.redis, pipeline.transport, consumer="through-a-flush", min_idle_ms=0)
    calls = []

    def stop():
        calls.append(None)
        if len(calls) == 2:  # after the first read: Redis comes back empty (no stream, group or jobs)
            pipeline.redis.flushdb()
            pipeline.transport.publish_event(1)  # an event published since (the outbox re-sends older ones)
        return len(calls) > 3

    dispatcher.run_forever(stop=stop)

    assert pipeline.redis.xinfo_groups(STREAM)[0]["name"].decode() == GROUP
    assert pipeline.transport.queue.count == 1  # read from the recreated group, not stuck on NOGROUP
    assert pipeline.redis.xpending(STREAM, GROUP)["pending"] == 0


def test_entries_of_a_dispatcher_without_liveness_are_claimed_at_once_and_its_name_removed(
    pipeline, settings, category
):
    for _ in range(2):
        create_booking(settings, category)
    # one dispatcher read both entries and was killed (its liveness key lapsed); another is alive
    pipeline.redis.xreadgroup(GROUP, "killed-host-41", {STREAM: ">"}, count=1)
    pipeline.redis.xreadgroup(GROUP, "alive-host-42", {STREAM: ">"}, count=1)
    pipeline.redis.set(LIVENESS_KEY + "alive-host-42", b"1", ex=30)
    survivor = Dispatcher(pipeline.redis, pipeline.transport, consumer="survivor")  # RECLAIM_IDLE_MS: 60 s

    assert survivor.claim_from_dead_consumers() == 1  # no idle time waited out

    assert consumers(pipeline.redis) == ["alive-host-42", "survivor"]
    pending = pipeline.redis.xpending_range(STREAM, GROUP, min="-", max="+", count=10)
    assert [p["consumer"].decode() for p in pending] == ["alive-host-42"]  # the live one's is left alone
    assert pipeline.transport.queue.count == 1


def test_a_stopped_dispatcher_finishes_its_read_and_leaves_the_group(pipeline, settings, category):
    create_booking(settings, category)
    dispatcher = Dispatcher(pipeline.redis, pipeline.transport, consumer="deploy-1")

    dispatcher.run_forever(stop=rounds(2))

    assert pipeline.transport.queue.count == 1
    assert pipeline.redis.xpending(STREAM, GROUP)["pending"] == 0
    assert consumers(pipeline.redis) == []  # no name left behind by a deploy
    assert not pipeline.redis.exists(LIVENESS_KEY + "deploy-1")


def test_a_running_dispatcher_keeps_its_liveness_key(pipeline):
    dispatcher = Dispatcher(pipeline.redis, pipeline.transport, consumer="beating")
    seen = []

    def stop():
        seen.append(pipeline.redis.ttl(LIVENESS_KEY + "beating"))
        return len(seen) > 1

    dispatcher.run_forever(stop=stop)

    assert seen[-1] > 0


class QuietWorker(PipelineWorker):
    """The worker of `python -m server worker`, runnable inside a test (no signal handlers)."""

    def _install_signal_handlers(self):
        pass


def test_a_job_that_met_a_database_outage_goes_back_to_the_front_without_using_a_retry(
    pipeline, settings, category, monkeypatch, caplog
):
    client = create_booking(settings, category).client
    real, failures = delivery.Notification.insert_many, []

    def server_restarting(rows):
        if not failures:
            failures.append("x")
            raise peewee.OperationalError("terminating connection due to administrator command")
        return real(rows)

    monkeypatch.setattr(delivery.Notification, "insert_many", server_restarting)
    pipeline.dispatch()

    with caplog.at_level(logging.INFO):
        QuietWorker(pipeline.transport.queues, connection=pipeline.redis).work(burst=True)

    assert failures  # it did fail once...
    assert Notification.select().where(Notification.user == client.id).count() == 1  # ...and ran again
    assert "put back at the front" in caplog.text
    assert "unhealthy: PostgreSQL unavailable" in caplog.text
    assert pipeline.transport.queue.failed_job_registry.count == 0


_runs = []
_redis_servers = []


def job_that_outlives_redis():
    """Its first run ends with Redis gone (stopped under it); the worker must wait, put it back, redo it."""
    _runs.append(len(_runs) + 1)
    if len(_runs) == 1:
        _redis_servers[0].stop()
    return len(_runs)


def test_a_worker_that_lost_redis_mid_job_waits_for_it_and_runs_the_job_again(private_redis, caplog):
    from workers.transport import RedisTransport

    transport = RedisTransport(private_redis.url)
    _runs.clear()
    _redis_servers[:] = [private_redis]
    port = private_redis.port
    transport.queue.enqueue(job_that_outlives_redis)
    outage_seen = Heard("unhealthy: Redis unavailable")
    logging.getLogger("serviceman.worker").addHandler(outage_seen)

    def restart_when_the_worker_noticed():
        if outage_seen.event.wait(15):
            private_redis.port = port
            private_redis.start()  # without persistence: the job and the queue are gone with it

    restarter = threading.Thread(target=restart_when_the_worker_noticed, daemon=True)
    restarter.start()
    try:
        with caplog.at_level(logging.INFO):
            QuietWorker(transport.queues, connection=transport.redis).work(burst=True)
    finally:
        logging.getLogger("serviceman.worker").removeHandler(outage_seen)
        restarter.join(20)

    assert _runs == [1, 2]  # the worker stayed, and the job it held was not lost with Redis's data
    assert "found an unhandled exception" not in caplog.text
    assert caplog.text.count("unhealthy: Redis unavailable") == 1


def test_the_outage_requeue_keeps_the_retries(pipeline, settings, category):
    create_booking(settings, category)
    pipeline.dispatch()
    queue = pipeline.transport.queue
    job = queue.fetch_job(queue.job_ids[0])
    before = job.retries_left
    worker = QuietWorker(pipeline.transport.queues, connection=pipeline.redis)
    queue.pop_job_id()

    worker.requeue_at_front(job, queue)

    again = queue.fetch_job(queue.job_ids[0])
    assert again.retries_left == before and again.meta[OUTAGE_REQUEUES] == 1


class Heard(logging.Handler):
    """Sets `event` when a log line containing `words` is emitted."""

    def __init__(self, words):
        super().__init__()
        self.words, self.event = words, threading.Event()

    def emit(self, record):
        if self.words in record.getMessage():
            self.event.set()


def test_cron_rides_out_a_redis_restart_that_lost_everything(private_redis, settings):
    from workers.transport import RedisTransport

    transport = RedisTransport(private_redis.url)
    stopping, outage_seen = Stopping(), Heard("unhealthy: Redis unavailable")
    logging.getLogger("serviceman.cron").addHandler(outage_seen)
    thread = threading.Thread(target=run_cron, args=(transport, [(runtime.settings, 1)], stopping), daemon=True)
    thread.start()
    try:
        wait_until(lambda: transport.queue.count >= 1, timeout=10, what="the first periodic job")
        port = private_redis.port
        private_redis.stop()
        assert outage_seen.event.wait(15)  # a job fell due while Redis was down
        private_redis.port = port
        private_redis.start()  # without persistence: the queue and the cron registration are gone
        wait_until(lambda: transport.queue.count >= 1, timeout=15, what="a periodic job after the restart")
        assert thread.is_alive()
    finally:
        logging.getLogger("serviceman.cron").removeHandler(outage_seen)
        stopping.set()
        thread.join(10)
    assert not thread.is_alive()


def test_a_dispatcher_started_before_redis_waits_for_it_then_stops_cleanly_on_sigterm(database, tmp_path):
    port = free_port()
    processes = Procfile(process_env(TEST_DATABASE_URL, f"redis://127.0.0.1:{port}/0"), tmp_path)
    server = PrivateRedis()
    server.port, server.url = port, f"redis://127.0.0.1:{port}/0"
    try:
        process = processes.start("dispatcher", "dispatcher")
        wait_until(lambda: "waiting for it" in processes.log("dispatcher"), timeout=30, what="the wait")
        assert process.poll() is None and processes.log("dispatcher").count("cannot reach Redis") == 1

        server.start()
        wait_until(
            lambda: "reading serviceman:events" in processes.log("dispatcher"),
            timeout=30,
            what="the dispatcher to start reading",
        )
        client = redis.Redis.from_url(server.url)
        wait_until(lambda: client.keys(LIVENESS_KEY + "*"), timeout=10, what="its liveness key")

        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert consumers(client) == [] and client.keys(LIVENESS_KEY + "*") == []
    finally:
        processes.stop_all()
        server.stop()


def test_settings_read_the_start_up_wait():
    assert make_settings().startup_wait_seconds is None
    assert make_settings(STARTUP_WAIT_SECONDS="2.5").startup_wait_seconds == 2.5
