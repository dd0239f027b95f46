"""The web process (`python -m server serve`) signalled and its database restarted, for real.

- SIGTERM (every deploy) and SIGINT at random instants under booking load with signed-in sockets:
  every request whose connection was accepted is answered, correctly; every booking row has its 201
  answer and every 201 its row (compared one by one by a unique description); connections attempted
  after the signal are refused; every socket is closed with 1012; the process exits 0 within the grace,
  and in embedded mode the in-process pipeline's queued jobs (each booking's email) finished first.
- PostgreSQL restarted (fast and immediate) with the web process idle: the next 200 requests answer
  200, none 5xx; PostgreSQL stopped: 503 in the contract's error shape; started again: 0 5xx.

Each run prints one line of statistics (`pytest -s` shows them).
"""

import asyncio
import random
import signal
import time
from collections import Counter
from datetime import date, timedelta

import pytest

from models import Notification, ServiceRequest

from .fault_support import make_clients, models_bound_to, process_env, start_web
from .raw_http import CUT_OFF, REFUSED, request
from .ws_support import open_signed_in

pytestmark = pytest.mark.faults

GRACE = 10  # SHUTDOWN_GRACE_SECONDS of the processes under test
LOAD_WORKERS = 80  # booking POSTs kept in flight at once, each on its own connection
SOCKETS = 50
SERVICE_RESTART = 1012


def booked_rows(url, tag):
    """{description: id} of the bookings a run created."""
    with models_bound_to(url, pool_size=2):
        query = ServiceRequest.select(ServiceRequest.id, ServiceRequest.description).where(
            ServiceRequest.description.startswith(tag)
        )
        return {row.description: row.id for row in query}


def unsent_emails(url, booking_ids):
    """Bookings of `booking_ids` whose request_created notification is missing or its email unsent."""
    with models_bound_to(url, pool_size=2):
        sent = {
            row.service_request_id
            for row in Notification.select(Notification.service_request).where(
                Notification.service_request.in_(list(booking_ids)), Notification.sent_to_email == True
            )
        }
    return set(booking_ids) - sent


async def signed_in_sockets(port, tokens):
    async def open_one(token):
        return (await open_signed_in(f"ws://127.0.0.1:{port}/ws/", token, timeout=10))[0]

    return await asyncio.gather(*(open_one(token) for token in tokens))


async def close_code(ws, timeout):
    """Read until the server closes the socket; its close code."""

    async def drain():
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(drain(), timeout)
    return ws.close_code


async def signal_under_load(port, process, signum, category_id, tokens, tag):
    """Bookings from LOAD_WORKERS loops and SOCKETS signed-in sockets; `signum` at a random instant."""
    sockets = await signed_in_sockets(port, tokens[:SOCKETS])
    booking_date = (date.today() + timedelta(days=7)).isoformat()
    outcomes, in_flight = [], [0]

    async def books(worker):
        token = tokens[worker % len(tokens)]
        for n in range(10_000):
            body = {
                "category_id": category_id,
                "booking_date": booking_date,
                "address": "1 Marina, Lagos",
                "description": f"{tag}-w{worker}-n{n}",
            }
            in_flight[0] += 1
            outcome = await request(port, "POST", "/api/requests/", body, token=token)
            in_flight[0] -= 1
            outcome.description, outcome.ended = body["description"], time.monotonic()
            outcomes.append(outcome)
            if outcome.kind == REFUSED:
                return

    load = asyncio.gather(*(books(worker) for worker in range(LOAD_WORKERS)))
    await asyncio.sleep(random.uniform(0.3, 1.5))  # the random instant of the fault
    at_signal = {"in_flight": in_flight[0], "answered": len(outcomes)}
    signalled = time.monotonic()
    process.send_signal(signum)
    await asyncio.wait_for(load, GRACE + 10)
    codes = await asyncio.gather(*(close_code(ws, GRACE + 5) for ws in sockets))
    return outcomes, signalled, at_signal, codes


def check_signal_run(url, procfile, name, signum, category_id, tokens, embedded):
    env = procfile.env
    port, process = start_web(procfile, name, env)
    tag = f"{name}-"
    outcomes, signalled, at_signal, codes = asyncio.run(
        signal_under_load(port, process, signum, category_id, tokens, tag)
    )
    exit_code = process.wait(GRACE + 5)
    exited_after = time.monotonic() - signalled
    rows = booked_rows(url, tag)

    cut_off = [o for o in outcomes if o.kind == CUT_OFF]
    assert not cut_off, (f"{len(cut_off)} accepted request(s) cut off", cut_off[:3], procfile.log(name)[-3000:])
    refused = [o for o in outcomes if o.kind == REFUSED]
    assert len(refused) == LOAD_WORKERS  # every loop ended on a refused connection
    assert all(o.started >= signalled for o in refused), "a connection was refused before the signal"
    assert not {o.description for o in refused} & set(rows)
    answered = [o for o in outcomes if o.answered]
    wrong = [(o.status, o.body) for o in answered if o.status != 201]
    assert not wrong, wrong[:5]
    assert {o.description: o.body["id"] for o in answered} == rows  # every 201 its row, every row its 201
    assert codes == [SERVICE_RESTART] * SOCKETS, Counter(codes)
    assert exit_code == 0, procfile.log(name)[-3000:]
    assert exited_after < GRACE
    log = procfile.log(name)
    assert "Traceback" not in log and "0 request(s) cut off" in log, log[-3000:]
    if embedded:  # the in-process pipeline's queued jobs (the bookings' emails) finished before the exit
        assert not unsent_emails(url, rows.values())
    after = sum(1 for o in answered if o.ended > signalled)
    print(
        f"\n{name}: {signal.Signals(signum).name} at {signalled - min(o.started for o in outcomes):.2f}s into "
        f"the load, {at_signal['in_flight']} request(s) in flight; {len(answered)} answered 201 "
        f"({after} after the signal), {len(refused)} refused after it, 0 cut off, rows {len(rows)} = 201s; "
        f"{SOCKETS} sockets closed 1012; exit 0 after {exited_after:.2f}s"
    )


def sqlite_web(procfile, tmp_path, **overrides):
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    procfile.env = process_env(url, SHUTDOWN_GRACE_SECONDS=GRACE, WS_PING_SECONDS=0, **overrides)
    procfile.run_once(["migrate"], procfile.env)
    return url


@pytest.mark.parametrize("signum, runs", [(signal.SIGTERM, 10), (signal.SIGINT, 3)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_under_load_answers_every_accepted_request_and_closes_sockets_with_1012(
    procfile, tmp_path, signum, runs
):
    url = sqlite_web(procfile, tmp_path)
    category_id, tokens = make_clients(url, procfile.env, LOAD_WORKERS)
    for run in range(runs):
        check_signal_run(
            url, procfile, f"web-{signal.Signals(signum).name}-{run}", signum, category_id, tokens, embedded=True
        )


def test_sigterm_under_load_with_postgresql_and_redis(private_postgres, private_redis, procfile):
    procfile.env = process_env(private_postgres.url, private_redis.url, SHUTDOWN_GRACE_SECONDS=GRACE, WS_PING_SECONDS=0)
    category_id, tokens = make_clients(private_postgres.url, procfile.env, LOAD_WORKERS)
    for run in range(3):
        check_signal_run(
            private_postgres.url, procfile, f"web-pg-SIGTERM-{run}", signal.SIGTERM, category_id, tokens, embedded=False
        )


async def burst(port, tokens, count, concurrency=20):
    """`count` signed-in GETs (the sign-in lookup and a list query each), `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n):
        async with gate:
            return await request(port, "GET", "/api/requests/", token=tokens[n % len(tokens)])

    return await asyncio.gather(*(one(n) for n in range(count)))


def statuses(outcomes):
    return Counter(o.status if o.answered else o.kind for o in outcomes)


def test_postgresql_restarted_or_stopped_under_an_idle_web_process(private_postgres, procfile):
    procfile.env = process_env(private_postgres.url, DB_POOL_SIZE=8)
    _, tokens = make_clients(private_postgres.url, procfile.env, 20)
    port, _ = start_web(procfile, "web", procfile.env)
    for mode in ("fast", "fast", "immediate", "fast"):
        assert statuses(asyncio.run(burst(port, tokens, 100))) == {200: 100}  # the pool fills up
        private_postgres.restart(mode)
        after = statuses(asyncio.run(burst(port, tokens, 200)))
        assert after == {200: 200}, (mode, after)
        print(f"\nPostgreSQL restart ({mode}) under an idle web process: next 200 requests {dict(after)}")

    private_postgres.stop()
    down = asyncio.run(burst(port, tokens, 50))
    assert statuses(down) == {503: 50}, statuses(down)
    assert {o.body["error"]["code"] for o in down} == {"database_unavailable"}
    assert all(isinstance(o.body["error"]["message"], str) for o in down)
    private_postgres.start()
    back = statuses(asyncio.run(burst(port, tokens, 200)))
    assert back == {200: 200}, back
    print(f"\nPostgreSQL stopped: 50 requests {dict(statuses(down))}; started again: next 200 {dict(back)}")
