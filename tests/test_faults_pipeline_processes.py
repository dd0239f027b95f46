"""The pipeline processes (dispatcher, worker, cron) as the Procfile runs them, under a stream of
bookings, while PostgreSQL and Redis restart and deploys signal the processes. Afterwards every
booking's client has exactly one notification row and exactly one email, the processes that were
not stopped are still up, those stopped by SIGTERM exited 0, and the consumer group holds only live
dispatchers.

Run with `python -m pytest -m faults --no-cov -s tests/test_faults_pipeline_processes.py` (-s prints
each run's statistics: faults and their instants, bookings, recovery time).
"""

import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
from rq import Retry

import models
from models import Event, Notification, User
from models.actions import booking
from models.foundation.clock import platform_today
from workers import outbox, runtime
from workers.dispatcher import GROUP
from workers.transport import STREAM, RedisTransport

from .conftest import make_settings
from .factories import CategoryFactory, ClientFactory
from .fault_support import process_env, process_tree, signal_tree, wait_until

pytestmark = pytest.mark.faults

RECOVERY_BOUND_SECONDS = 60  # from the last fault to every row and email delivered (outbox grace 30 s + sweep 30 s)
TAKEOVER_BOUND_SECONDS = 10  # a killed dispatcher's liveness key lapses (5 s), the others look every second
HAS_REDRIVE = hasattr(outbox, "redrive")  # the database re-drive sweep (events without rows, emails never sent)


class Deployment:
    """The test process books as the web process would (models bound to the private database,
    events published to the private Redis); the Procfile's processes deliver."""

    def __init__(self, postgres, redis_server, mailbox, procfile):
        self.postgres, self.redis_server, self.mailbox, self.procfile = postgres, redis_server, mailbox, procfile
        self.settings = make_settings(DATABASE_URL=postgres.url, REDIS_URL=redis_server.url)
        self.env = process_env(
            postgres.url, redis_server.url, EMAIL_HOST="127.0.0.1", EMAIL_PORT=mailbox.port, EMAIL_USE_TLS="false"
        )
        self.category = None
        self.booking = threading.Event()
        self.booked = 0
        self.faults = []  # (seconds since the load began, what)
        self.started = None
        self.names = Counter()
        self.takeovers = []  # seconds from a dispatcher's SIGKILL to its name gone from the group

    def start(self, kind, *args):
        """Start one more `kind` process (dispatcher-1, dispatcher-2...); returns its name."""
        self.names[kind] += 1
        name = f"{kind}-{self.names[kind]}"
        self.procfile.start(name, kind.split("-")[0], *args, env=self.env)
        return name

    def wait_ready(self, name, words, timeout=40):
        wait_until(lambda: words in self.procfile.log(name), timeout=timeout, what=f"{name} to start")

    # the load
    def book_until_stopped(self):
        while self.booking.is_set():
            try:
                client = ClientFactory()
                booking.create_request(
                    self.settings,
                    client,
                    category_id=self.category.id,
                    booking_date=platform_today(self.settings.zone) + timedelta(days=4),
                    address="7 Marina, Lagos",
                    description="Fault-run booking",
                )
                self.booked += 1
            except Exception:  # the database is restarting: the booking fails, as a request would
                runtime.release_connection(discard=True)
                time.sleep(0.1)
            time.sleep(0.03)

    def begin_load(self):
        self.category = CategoryFactory()
        self.booking.set()
        self.started = time.monotonic()
        thread = threading.Thread(target=self.book_until_stopped, daemon=True)
        thread.start()
        return thread

    def fault(self, what, action):
        time.sleep(random.uniform(0.3, 1.5))  # a random instant under load
        self.faults.append((round(time.monotonic() - self.started, 2), what))
        action()

    # the checks
    def undelivered(self):
        """Bookings whose client lacks its row or its email; rows with more than one email."""
        runtime.release_connection(discard=True)
        try:
            events = list(Event.select(Event.id, Event.service_request).where(Event.type == "request_created"))
            rows = Counter(n.event_id for n in Notification.select(Notification.event))
            unsent = Notification.select().where(Notification.sent_to_email == False).count()
        except Exception:
            return ["database unreachable"]
        finally:
            runtime.release_connection()
        missing = [e.id for e in events if rows[e.id] != 1]
        return missing + ["unsent"] * unsent + (["emails"] if len(self.mailbox.messages) < len(events) else [])

    def assert_each_once(self):
        clients = {u.email for u in User.select(User.email).where(User.role == "client")}
        emails = Counter(rcpt for message in self.mailbox.messages for rcpt in message.rcpt_tos)
        bookings = Event.select().where(Event.type == "request_created").count()
        assert Notification.select().count() == bookings
        assert set(emails) <= clients and all(count == 1 for count in emails.values()), [
            address for address, count in emails.items() if count > 1
        ]
        assert len(emails) == bookings
        return bookings

    def consumers(self):
        client = redis.Redis.from_url(self.redis_server.url)
        return sorted(c["name"].decode() for c in client.xinfo_consumers(STREAM, GROUP))

    def live_dispatcher_consumers(self):
        return sorted(
            f"{socket.gethostname()}-{process.pid}"
            for name, process in self.procfile.processes.items()
            if name.startswith("dispatcher") and process.poll() is None
        )

    def kill_dispatcher(self, name):
        """SIGKILL; then another dispatcher must take its entries over and remove it within seconds."""
        consumer = f"{socket.gethostname()}-{self.procfile.processes[name].pid}"
        killed_at = time.monotonic()
        self.procfile.kill(name)
        wait_until(
            lambda: consumer not in self.consumers(),
            timeout=TAKEOVER_BOUND_SECONDS,
            what=f"another dispatcher to take over from {name}",
        )
        self.takeovers.append(round(time.monotonic() - killed_at, 2))

    def report(self, title, recovery, bookings):
        print(
            f"\n{title}: {bookings} bookings, {len(self.faults)} faults, recovered {recovery:.1f}s after the "
            f"last (bound {RECOVERY_BOUND_SECONDS}s); losses 0, duplicates 0; takeovers after SIGKILL: "
            f"{self.takeovers}s"
        )
        for offset, what in self.faults:
            print(f"  +{offset:6.2f}s  {what}")


@pytest.fixture
def deployment(private_postgres, durable_redis, mailbox, procfile, database):
    session_database = models.database.obj
    bound = models.bind(private_postgres.url, pool_size=4)
    deployment = Deployment(private_postgres, durable_redis, mailbox, procfile)
    runtime.configure(deployment.settings, RedisTransport(durable_redis.url))
    yield deployment
    deployment.booking.clear()
    runtime.reset()
    bound.close_all()
    models.database.initialize(session_database)


def wait_recovered(deployment, last_fault_at):
    try:
        wait_until(
            lambda: not deployment.undelivered(),
            timeout=RECOVERY_BOUND_SECONDS + 30,
            interval=0.25,
            what="every booking's row and email",
        )
    except AssertionError:
        left = deployment.undelivered()
        summary = Counter(str(item) if not isinstance(item, int) else "event without its row" for item in left)
        events = [item for item in left if isinstance(item, int)]
        raise AssertionError(
            f"not delivered after the faults {deployment.faults}: {dict(summary)}; events {events}"
        ) from None
    return time.monotonic() - last_fault_at


def sigterm_and_wait(deployment, name):
    deployment.procfile.signal(name, signal.SIGTERM)
    code = deployment.procfile.wait(name, timeout=30)
    assert code == 0, deployment.procfile.log(name)[-3000:]


def sigterm_fork_worker_with_its_horse(deployment, name):
    """Heroku signals every process of the dyno: the worker, its work-horse and its scheduler."""
    pid = deployment.procfile.processes[name].pid
    # a moment when the worker has a horse (a job in hand) beside its scheduler process, bounded
    try:
        wait_until(lambda: len(process_tree(pid)) >= 3, timeout=5, interval=0.001, what="a work-horse")
        deployment.faults[-1] = (deployment.faults[-1][0], deployment.faults[-1][1] + " (a horse was running)")
    except AssertionError:
        pass
    signal_tree(pid, signal.SIGTERM)
    code = deployment.procfile.wait(name, timeout=30)
    assert code == 0, deployment.procfile.log(name)[-3000:]


def test_restarts_outages_and_deploys_lose_nothing_and_double_nothing(deployment):
    d = deployment
    dispatchers = [d.start("dispatcher"), d.start("dispatcher")]
    plain, forking = d.start("worker"), d.start("worker", "--fork")
    cron = d.start("cron")
    for name in dispatchers:
        d.wait_ready(name, "reading serviceman:events")
    for name in (plain, forking):
        d.wait_ready(name, "Listening on")
    d.wait_ready(cron, "periodic jobs")
    load = d.begin_load()

    d.fault("PostgreSQL restart", d.postgres.restart)
    d.fault("PostgreSQL restart", d.postgres.restart)
    d.fault("Redis restart keeping its data", d.redis_server.restart)
    d.fault(f"{dispatchers[0]} SIGTERM (deploy)", lambda: sigterm_and_wait(d, dispatchers[0]))
    dispatchers.append(d.start("dispatcher"))
    d.fault(f"{dispatchers[1]} SIGKILL", lambda: d.kill_dispatcher(dispatchers[1]))
    dispatchers.append(d.start("dispatcher"))

    def stop_postgres_for_a_while():
        d.postgres.stop()
        time.sleep(6)  # the outage itself: nothing to await, its length is the point
        d.postgres.start()

    d.fault("PostgreSQL stopped 6 s", stop_postgres_for_a_while)
    d.fault(f"{plain} SIGTERM (deploy)", lambda: sigterm_and_wait(d, plain))
    plain = d.start("worker")
    d.fault(f"{forking} (--fork) SIGTERM to every process", lambda: sigterm_fork_worker_with_its_horse(d, forking))
    forking = d.start("worker", "--fork")
    d.fault(f"{dispatchers[2]} SIGKILL", lambda: d.kill_dispatcher(dispatchers[2]))
    dispatchers.append(d.start("dispatcher"))
    # (not `immediate`: the private cluster runs with synchronous_commit=off, so a crash would lose
    # commits PostgreSQL had already acknowledged, which no application can make up for)
    d.fault("PostgreSQL restart", d.postgres.restart)
    d.fault(f"{dispatchers[3]} SIGTERM (deploy)", lambda: sigterm_and_wait(d, dispatchers[3]))
    last_fault_at = time.monotonic()
    time.sleep(1)  # a little more load after the last fault
    d.booking.clear()
    load.join(30)

    recovery = wait_recovered(d, last_fault_at)
    bookings = d.assert_each_once()
    assert recovery < RECOVERY_BOUND_SECONDS
    for name in (dispatchers[4], plain, forking, cron):
        assert d.procfile.processes[name].poll() is None, d.procfile.log(name)[-3000:]
    wait_until(
        lambda: d.consumers() == d.live_dispatcher_consumers(),
        timeout=10,
        what="the group to hold only live dispatchers",
    )
    d.report("PostgreSQL/Redis restarts and deploys", recovery, bookings)


@pytest.mark.xfail(
    not HAS_REDRIVE,
    strict=False,
    reason="events and emails lost with Redis's data come back only from the database re-drive "
    "sweep (branch h20-deliver)",
)
def test_redis_losing_its_data_under_load_loses_nothing(deployment):
    d = deployment
    dispatcher, worker = d.start("dispatcher"), d.start("worker")
    d.wait_ready(dispatcher, "reading serviceman:events")
    d.wait_ready(worker, "Listening on")
    load = d.begin_load()

    d.fault("Redis restart losing its data", lambda: d.redis_server.restart(lose_data=True))
    d.fault("Redis restart losing its data", lambda: d.redis_server.restart(lose_data=True))
    last_fault_at = time.monotonic()
    time.sleep(1)
    d.booking.clear()
    load.join(30)

    recovery = wait_recovered(d, last_fault_at)
    bookings = d.assert_each_once()
    assert recovery < RECOVERY_BOUND_SECONDS
    for name in (dispatcher, worker):
        assert d.procfile.processes[name].poll() is None, d.procfile.log(name)[-3000:]
    assert d.consumers() == d.live_dispatcher_consumers()
    d.report("Redis losing its data", recovery, bookings)


def job_killed_with_its_worker(marker):
    """First run: wait to be killed with the worker (SIGKILL). The retry finds the marker and ends."""
    if os.path.exists(marker):
        return "retried"
    with open(marker, "w") as file:
        file.write("started")
    threading.Event().wait(60)  # a long job, for the worker to be killed in the middle of it


def test_the_job_of_a_killed_worker_is_retried_within_seconds(durable_redis, private_postgres, procfile, tmp_path):
    from rq.registry import FinishedJobRegistry, StartedJobRegistry

    env = process_env(private_postgres.url, durable_redis.url)
    transport = RedisTransport(durable_redis.url)
    procfile.start("worker-1", "worker", env=env)
    marker = tmp_path / "started"
    job = transport.queue.enqueue(
        job_killed_with_its_worker, str(marker), result_ttl=60, retry=Retry(max=3, interval=[10, 30, 60])
    )
    wait_until(marker.exists, timeout=30, what="the job to start")
    killed_at = time.monotonic()
    procfile.kill("worker-1")
    procfile.start("worker-2", "worker", env=env)

    wait_until(
        lambda: job.id in FinishedJobRegistry(queue=transport.queue).get_job_ids(),
        timeout=60,
        what="the killed worker's job to be retried",
    )
    retried_after = time.monotonic() - killed_at
    assert job.id not in StartedJobRegistry(queue=transport.queue).get_job_ids()
    assert retried_after < 30  # claim 10 s + maintenance 5 s + the first retry interval 10 s
    print(f"\nthe job of a SIGKILLed worker finished {retried_after:.1f}s after the kill")
