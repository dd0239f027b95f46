"""Idempotency-Key against a real web process SIGKILLed mid-request (issue 24, "Retries that never act twice").

Booking POSTs, each with a key and a description of its own, are kept in flight against `python -m
server serve`; the process is SIGKILLed at a random instant, ROUNDS times, and a new one is started on
the same database each time. Every request whose answer was lost (cut off, or never accepted) is sent
again with the same key and body, as a phone on a bad network does, until it gets a final answer (a 409
idempotency_key_in_use is retried after its Retry-After: the killed request's claim holds the key until
its lease, IDEMPOTENCY_LEASE_SECONDS, ends). Then, key by key: one booking; every 201 naming it;
`Idempotent-Replayed: true` exactly when an earlier, lost attempt had committed it (the row is older
than the attempt answered); one request_created event and one notification; no payment; no 5xx.

Two deployments: SQLite with the embedded pipeline, and a PostgreSQL of the test's own (with a Redis of
its own, a dispatcher and a worker when redis-server is installed; else the embedded pipeline), so
`make test-faults` runs both with no TEST_* environment. Each run prints one line of statistics.
"""

import asyncio
import json
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest

from models import Event, IdempotencyKey, IdempotencyState, Notification, Payment, ServiceRequest

from .fault_support import PrivatePostgres, make_clients, models_bound_to, process_env, start_web, wait_until
from .raw_http import CUT_OFF, REFUSED, Outcome, request

pytestmark = pytest.mark.faults

LEASE_SECONDS = 2  # the processes' IDEMPOTENCY_LEASE_SECONDS: a killed request's key is free this soon
ROUNDS = 12
LOAD_WORKERS = 40  # booking POSTs kept in flight at once, each on its own connection
CLIENTS = 20
# The kill comes at a random instant this long (seconds) after the load starts: the clients connect at
# once, so every instant has LOAD_WORKERS requests in flight, at every stage (claim, commit, answer).
KILL_AFTER = (0.2, 1.2)
DRAIN_SECONDS = 60  # the last process answers every retry within this (a lease and a few Retry-Afters)


@dataclass
class Booking:
    """One booking a client wants made once: its key, its body, and every attempt at it."""

    key: str
    body: dict
    token: str
    attempts: list = field(default_factory=list)  # Outcomes, each with its `wall_started` (time.time())
    not_before: float = 0.0  # time.monotonic() before which a 409's Retry-After says not to retry
    final: Outcome | None = None

    @property
    def description(self):
        return self.body["description"]


class Load:
    """New bookings, and the retries of those whose answer was lost or that were told to come back."""

    def __init__(self, category_id, tokens, tag):
        self.category_id, self.tokens, self.tag = category_id, tokens, tag
        self.booking_date = (date.today() + timedelta(days=7)).isoformat()
        self.bookings, self.retries = [], []
        self.in_flight = 0

    def next(self, new_allowed):
        """A retry that may go now, else a new booking (if allowed), else None."""
        now = time.monotonic()
        for i, booking in enumerate(self.retries):
            if booking.not_before <= now:
                return self.retries.pop(i)
        if not new_allowed:
            return None
        n = len(self.bookings)
        booking = Booking(
            key=f"{self.tag}-key-{n}",
            body={
                "category_id": self.category_id,
                "booking_date": self.booking_date,
                "address": "1 Marina, Lagos",
                "description": f"{self.tag}-booking-{n}",
            },
            token=self.tokens[n % len(self.tokens)],
        )
        self.bookings.append(booking)
        return booking

    async def send(self, port, booking):
        """One attempt; False when this process is gone (the answer was lost: retried on the next one)."""
        wall_started = time.time()
        self.in_flight += 1
        outcome = await request(
            port, "POST", "/api/requests/", booking.body, token=booking.token, headers={"Idempotency-Key": booking.key}
        )
        self.in_flight -= 1
        outcome.wall_started = wall_started
        booking.attempts.append(outcome)
        if not outcome.answered:
            self.retries.append(booking)
            return False
        if key_in_use(outcome):
            booking.not_before = time.monotonic() + int(outcome.headers.get("retry-after", "1"))
            self.retries.append(booking)
        else:
            booking.final = outcome
        return True

    async def client(self, port, new_allowed):
        """A client loop: until its process is gone, or (new_allowed False) no retry is left to make."""
        while True:
            booking = self.next(new_allowed)
            if booking is None:
                if not self.retries:
                    return
                # Retry-After is a time, not an event: wait for the earliest one due.
                await asyncio.sleep(max(0.01, min(b.not_before for b in self.retries) - time.monotonic()))
                continue
            if not await self.send(port, booking):
                return


def key_in_use(outcome):
    return outcome.status == 409 and (outcome.body or {}).get("error", {}).get("code") == "idempotency_key_in_use"


async def kill_under_load(procfile, name, port, load):
    """LOAD_WORKERS client loops against the process; SIGKILL at a random instant. (in flight, seconds in)"""
    clients = asyncio.gather(*(load.client(port, new_allowed=True) for _ in range(LOAD_WORKERS)))
    delay = random.uniform(*KILL_AFTER)
    await asyncio.sleep(delay)  # the random instant of the fault
    in_flight = load.in_flight
    procfile.kill(name)
    await asyncio.wait_for(clients, 30)
    return in_flight, delay


async def drain(port, load):
    """Every answer still owed, from a process left alone (retries only, no new bookings)."""
    await asyncio.wait_for(
        asyncio.gather(*(load.client(port, new_allowed=False) for _ in range(LOAD_WORKERS))), DRAIN_SECONDS
    )


@dataclass
class Deployment:
    name: str  # sqlite+embedded, postgresql+redis or postgresql+embedded
    url: str


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request, tmp_path):
    """The database (and Redis) the web processes share; processes started with `procfile.env`
    (the servers are set up first, so the processes stop before them)."""
    if request.param == "sqlite":
        url, redis_url = f"sqlite:///{tmp_path / 'idempotency.sqlite3'}", ""
    else:
        if not PrivatePostgres.available():
            pytest.skip("needs PostgreSQL's initdb and pg_ctl for a database of the test's own")
        url = request.getfixturevalue("private_postgres").url
        # Redis (and the pipeline's processes) when redis-server is here; else the embedded pipeline.
        redis_url = request.getfixturevalue("private_redis").url if shutil.which("redis-server") else ""
    procfile = request.getfixturevalue("procfile")
    procfile.env = process_env(url, redis_url, IDEMPOTENCY_LEASE_SECONDS=LEASE_SECONDS, WS_PING_SECONDS=0)
    if request.param == "sqlite":
        procfile.run_once(["migrate"], procfile.env)
    if redis_url:  # events go to the stream: a dispatcher and a worker make the notifications
        procfile.start("dispatcher", "dispatcher")
        procfile.start("worker", "worker")
    mode = f"{request.param}+{'redis' if redis_url else 'embedded'}"
    return Deployment(mode, url)


def test_a_booking_retried_across_sigkilled_web_processes_is_made_once_and_answered_alike(deployment, procfile):
    category_id, tokens = make_clients(deployment.url, procfile.env, CLIENTS)
    load = Load(category_id, tokens, tag=f"kill-{deployment.name}")
    started = time.monotonic()
    kills = []
    for round_no in range(ROUNDS):
        name = f"web-{round_no}"
        port, _ = start_web(procfile, name, procfile.env)
        kills.append(asyncio.run(kill_under_load(procfile, name, port, load)))
    port, _ = start_web(procfile, "web-last", procfile.env)
    asyncio.run(drain(port, load))

    assert not load.retries, [(b.key, b.attempts[-3:]) for b in load.retries[:3]]
    stats = check_every_booking(deployment, load, procfile)
    assert all(in_flight > 0 for in_flight, _ in kills), kills  # every kill came with requests in flight
    assert stats["lost"] > 0  # (so answers were lost: LOAD_WORKERS connections are open at every instant)
    print(
        f"\nidempotency under SIGKILL ({deployment.name}): {ROUNDS} rounds, kills at "
        f"{min(d for _, d in kills):.2f}-{max(d for _, d in kills):.2f}s with "
        f"{min(n for n, _ in kills)}-{max(n for n, _ in kills)} in flight; {len(load.bookings)} bookings, "
        f"{stats['attempts']} requests; {stats['lost']} answers lost (cut off) + {stats['refused']} refused; "
        f"{stats['replays']} replayed after a lost commit, {stats['ran_again']} run again (never committed); "
        f"{stats['in_use']} 409s seen; 0 5xx; one row, event and notification each; "
        f"{time.monotonic() - started:.1f}s"
    )


def check_every_booking(deployment, load, procfile):
    """Every booking, one by one, against its rows; statistics of the run."""
    attempts = [a for b in load.bookings for a in b.attempts]
    answered = [a for a in attempts if a.answered]
    assert {a.status for a in answered} <= {201, 409}, Counter(a.status for a in answered)  # no 5xx, nothing else
    assert all(key_in_use(a) and a.headers.get("retry-after") == "1" for a in answered if a.status == 409)

    with models_bound_to(deployment.url, pool_size=2):
        ids = wait_until(
            lambda: notified_bookings(load.tag), timeout=60, interval=0.5, what="a notification for every booking"
        )
        rows, events, notifications, keys, payments = booking_rows(load.tag)
    assert set(rows) == {b.description for b in load.bookings}  # no booking without its key
    assert ids == {row.id for found in rows.values() for row in found}
    assert payments == 0  # booking takes no payment: a replay must not start one either

    fresh_fields = next(set(b.final.body) for b in load.bookings if not replayed(b.final))
    problems = []
    for booking in load.bookings:
        found, final = rows[booking.description], booking.final
        if len(found) != 1:
            problems.append((booking.key, f"{len(found)} bookings"))
            continue
        row = found[0]
        if final.status != 201 or final.body["id"] != row.id or final.body["description"] != booking.description:
            problems.append((booking.key, "final answer", final.status, final.body, row.id))
            continue
        if set(final.body) != fresh_fields or final.body["status"] != "PENDING_PAYMENT":
            problems.append((booking.key, "a replay unlike the first answer", final.body))
        # Committed by an earlier attempt (whose answer was lost) exactly when the last one is a replay.
        committed_before = row.created_at.timestamp() < final.wall_started
        if replayed(final) != committed_before:
            problems.append((booking.key, "replayed" if replayed(final) else "ran again", row.created_at, final))
        if replayed(final) and not any(a.kind == CUT_OFF for a in booking.attempts[:-1]):
            problems.append((booking.key, "replayed with no lost answer before", booking.attempts))
        if (events[row.id], notifications[row.id]) != (1, 1):
            problems.append((booking.key, "events, notifications", events[row.id], notifications[row.id]))
        key = keys.get(booking.key)
        if key is None or key.status_code != 201 or json.loads(key.body)["id"] != row.id:
            problems.append((booking.key, "stored answer", key and (key.state, key.status_code, key.body)))
    assert not problems, (len(problems), problems[:5])
    logs = "".join(procfile.log(name) for name in procfile.processes if name.startswith("web"))
    assert "Traceback" not in logs, logs[-3000:]

    lost = [b for b in load.bookings if any(a.kind == CUT_OFF for a in b.attempts)]
    return {
        "attempts": len(attempts),
        "lost": sum(a.kind == CUT_OFF for a in attempts),
        "refused": sum(a.kind == REFUSED for a in attempts),
        "replays": sum(replayed(b.final) for b in load.bookings),
        "ran_again": sum(not replayed(b.final) for b in lost),
        "in_use": sum(a.status == 409 for a in answered),
    }


def replayed(outcome):
    return outcome.headers.get("idempotent-replayed") == "true"


def bookings_of_the_run(tag, *columns):
    return ServiceRequest.select(*(columns or (ServiceRequest.id,))).where(ServiceRequest.description.startswith(tag))


def notified_bookings(tag):
    """The ids of the run's bookings, once each has its request_created notification (else None): the
    events of a killed process wait in the outbox for the next one's sweep (or the dispatcher's)."""
    ids = {row.id for row in bookings_of_the_run(tag)}
    notified = {
        row.service_request_id
        for row in Notification.select(Notification.service_request).where(
            Notification.service_request.in_(bookings_of_the_run(tag)),
            Notification.notification_type == "request_created",
        )
    }
    return ids if ids == notified else None


def booking_rows(tag):
    """The run's rows: bookings by description (a list each), and per booking id its request_created
    events and notifications; idempotency keys by key; the number of payments of these bookings."""
    mine = bookings_of_the_run(tag)
    rows = {}
    for row in bookings_of_the_run(tag, ServiceRequest.id, ServiceRequest.description, ServiceRequest.created_at):
        rows.setdefault(row.description, []).append(row)
    events = Counter(
        e.service_request_id
        for e in Event.select(Event.service_request).where(
            Event.service_request.in_(mine), Event.type == "request_created"
        )
    )
    notifications = Counter(
        n.service_request_id
        for n in Notification.select(Notification.service_request).where(
            Notification.service_request.in_(mine), Notification.notification_type == "request_created"
        )
    )
    keys = {
        k.key: k
        for k in IdempotencyKey.select().where(
            IdempotencyKey.key.startswith(f"{tag}-key-"),
            IdempotencyKey.state.in_([IdempotencyState.APPLIED, IdempotencyState.DONE]),
        )
    }
    payments = Payment.select().where(Payment.service_request.in_(mine)).count()
    return rows, events, notifications, keys, payments
