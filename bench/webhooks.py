"""Benchmark: signed Paystack `charge.success` webhooks at a steady rate, PostgreSQL + Redis mode.

Runs the project for real (`python -m server migrate`, `serve`, and unless --no-pipeline also
`dispatcher` and `worker`) on its own PostgreSQL database and Redis db 13, seeds one client, one
PENDING_PAYMENT request and one PENDING booking-fee Payment per webhook, then sends correctly
signed webhooks for distinct references open-loop: each send is scheduled at a fixed interval and
its latency runs from the scheduled moment to the response, so queueing in the server shows up.

In the same sitting the same schedule is sent to the reference, a bare Tornado handler (a
subprocess of this script) that checks the same HMAC-SHA512 signature, parses the JSON and answers
200 `{"status": "ok"}` with no database; the project/reference ratios are printed.

Afterwards it checks in the database that every request moved to PENDING_ADMIN_ASSIGNMENT exactly
once (one `payment_received` event, every Payment SUCCESS), replays a share of the webhooks and
checks that nothing doubled, reports whether the notification pipeline kept up (stream lag, RQ
queue, notifications and emails), the CPU each process used and the machine's load. Bench data
only: the database and the Redis db are emptied at start. Exits 1 if the exactly-once check fails.

    .venv/bin/python bench/webhooks.py [--rate 50 200] [--seconds 20 10] [--requests N]
        [--replay 0.1] [--no-pipeline] [--drain 30] [--py-spy profile.txt] [--logs DIR]
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tornado.web  # noqa: E402
from seed import NO_RATE_LIMITS  # noqa: E402 (bench/seed.py, beside this script)
from tornado.httpclient import AsyncHTTPClient, HTTPClient  # noqa: E402

from models.foundation.paystack import SIGNATURE_HEADER, sign, signature_is_valid  # noqa: E402

SECRET = "sk_test_bench"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_webhooks"
REDIS_URL = "redis://127.0.0.1:6379/13"
WEBHOOK_PATH = "/api/payments/webhook/"


# ---------------------------------------------------------------- the reference server


class ReferenceWebhook(tornado.web.RequestHandler):
    """What any webhook endpoint must do at least: check the signature, parse the body, answer."""

    def post(self):
        if not signature_is_valid(self.request.body, self.request.headers.get(SIGNATURE_HEADER, ""), SECRET):
            self.set_status(401)
            return self.finish({"error": "invalid_signature"})
        json.loads(self.request.body)
        self.set_header("Content-Type", "application/json")
        self.finish('{"status": "ok"}')


class ReferenceHealth(tornado.web.RequestHandler):
    def get(self):
        self.finish("ok")


def serve_reference(port):
    async def serve():
        app = tornado.web.Application([(WEBHOOK_PATH, ReferenceWebhook), (r"/healthz", ReferenceHealth)])
        app.listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_env(database_url, redis_url):
    # Explicit Paystack keys turn the local checkout off; an empty PAYSTACK_WEBHOOK_SECRET (and
    # EMAIL_HOST) keeps a developer's .env from changing the secret or sending real mail.
    return {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456",
        "PAYSTACK_SECRET_KEY": SECRET,
        "PAYSTACK_PUBLIC_KEY": "pk_test_bench",
        "PAYSTACK_WEBHOOK_SECRET": "",
        "EMAIL_HOST": "",
        "BCRYPT_ROUNDS": "4",
        **NO_RATE_LIMITS,
        "LOG_LEVEL": "WARNING",
    }


def spawn(args, env, log_dir, name):
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(port, proc, name):
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering")
        try:
            HTTPClient().fetch(f"http://127.0.0.1:{port}/healthz", request_timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer /healthz")


def stop(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cpu_seconds(pid):
    """User + system CPU of a process and its reaped children (the RQ worker forks one per job)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds():
    """Busy CPU seconds of the whole machine so far (all cores): everything but idle and iowait."""
    user, nice, system, idle, iowait, *rest = (int(x) for x in Path("/proc/stat").read_text().split()[1:11])
    return (user + nice + system + sum(rest[:3])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds():
    """CPU of the PostgreSQL backends connected to the bench database (other than this script's):
    the web process's pool keeps its connections, so before/after differences are its queries."""
    from models import database

    pids = [
        pid
        for (pid,) in database.execute_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ]
    return {pid: cpu_seconds(pid) for pid in pids}


def start_py_spy(pid, out):
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [py_spy, "record", "-p", str(pid), "-o", out, "--format", "raw", "--threads", "--nonblocking", "-r", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- data


def ensure_database(url):
    from server.startup import ensure_database as create_if_missing  # what `python -m server createdb` does

    create_if_missing(url)


def chunks(items, size):
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


def seed(count):
    """Truncate, then one admin (so payment_received notifies someone), `count` clients, requests
    PENDING_PAYMENT and PENDING booking-fee payments. Returns the payment references in order."""
    from models import ALL_MODELS, Category, Payment, PaymentType, RequestStatus, Role, ServiceRequest, User, database
    from models.foundation.tokens import hash_password

    tables = ", ".join(f'"{model._meta.table_name}"' for model in ALL_MODELS)
    database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    password = hash_password("bench-password-1", 4)
    booking_date = date.today() + timedelta(days=5)
    with database.atomic():
        User.create(
            email="admin@bench.ng", password_hash=password, first_name="Bench", last_name="Admin", role=Role.ADMIN
        )
        category = Category.create(name="Plumbing", description="Bench")
        for batch in chunks(range(count), 1000):
            User.insert_many(
                [
                    {
                        "email": f"client{i}@bench.ng",
                        "password_hash": password,
                        "first_name": "Client",
                        "last_name": str(i),
                        "phone": "+2348000000000",
                        "role": Role.CLIENT,
                    }
                    for i in batch
                ]
            ).execute()
        clients = [u.id for u in User.select(User.id).where(User.role == Role.CLIENT).order_by(User.id)]
        for batch in chunks(clients, 1000):
            ServiceRequest.insert_many(
                [
                    {
                        "client": c,
                        "category": category.id,
                        "booking_date": booking_date,
                        "address": "1 Bench Road",
                        "description": "benchmark",
                        "booking_fee": "2000.00",
                        "status": RequestStatus.PENDING_PAYMENT,
                    }
                    for c in batch
                ]
            ).execute()
        requests = list(ServiceRequest.select(ServiceRequest.id, ServiceRequest.client).order_by(ServiceRequest.id))
        references = [f"BENCH-{r.id}-{secrets.token_hex(6)}" for r in requests]
        for batch in chunks(zip(requests, references, strict=True), 1000):
            Payment.insert_many(
                [
                    {
                        "service_request": r.id,
                        "payer": r.client_id,
                        "payment_type": PaymentType.BOOKING_FEE,
                        "amount": "2000.00",
                        "currency": "NGN",
                        "paystack_reference": ref,
                    }
                    for r, ref in batch
                ]
            ).execute()
    return references


def webhook(reference):
    """(raw body, signature) of the charge.success Paystack would send for a paid booking fee."""
    paid_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raw = json.dumps(
        {
            "event": "charge.success",
            "data": {
                "reference": reference,
                "status": "success",
                "amount": 200000,
                "currency": "NGN",
                "paid_at": paid_at,
            },
        }
    ).encode()
    return raw, sign(raw, SECRET)


# ---------------------------------------------------------------- load


@dataclass
class Result:
    latency: float  # seconds from the scheduled send to the response (or the failure)
    send_lag: float  # how late the sender itself was: large values mean the client, not the server, lagged
    outcome: str  # "200", another status, or an exception's name


async def fire_at_rate(url, webhooks, rate, timeout):
    """Open loop: the i-th webhook is due at start + i/rate, whatever happened to the others."""
    http = AsyncHTTPClient()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def one(raw, signature, due):
        sent = loop.time()
        try:
            response = await http.fetch(
                url,
                method="POST",
                body=raw,
                raise_error=False,
                request_timeout=timeout,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
            )
            outcome = str(response.code)
        except Exception as exc:
            outcome = type(exc).__name__
        return Result(loop.time() - due, sent - due, outcome)

    tasks = []
    for i, (raw, signature) in enumerate(webhooks):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.ensure_future(one(raw, signature, due)))
    results = await asyncio.gather(*tasks)
    return results, loop.time() - start


def run_phase(url, webhooks, rate, timeout):
    results, wall = asyncio.run(fire_at_rate(url, webhooks, rate, timeout))
    return summarize(results, wall)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def summarize(results, wall):
    ms = sorted(r.latency * 1000 for r in results)
    outcomes = Counter(r.outcome for r in results)
    ok = outcomes.pop("200", 0)
    return {
        "sent": len(results),
        "ok": ok,
        "errors": dict(outcomes),
        "throughput": ok / wall,
        "p50": statistics.median(ms),
        "p99": percentile(ms, 0.99),
        "max": ms[-1],
        "send_lag_max": max(r.send_lag for r in results) * 1000,
    }


# ---------------------------------------------------------------- checks


def moved_once(references):
    """Exactly once, from the database: per request one payment_received and one payment_receipt
    event, status PENDING_ADMIN_ASSIGNMENT, its Payment SUCCESS and not flagged for a refund."""
    from peewee import fn

    from models import Event, Payment, PaymentStatus, RequestStatus, ServiceRequest

    payments = list(Payment.select().where(Payment.paystack_reference.in_(references)))
    request_ids = [p.service_request_id for p in payments]

    def events_per_request(kind):
        counts = dict(
            Event.select(Event.service_request, fn.COUNT(Event.id))
            .where(Event.type == kind, Event.service_request.in_(request_ids))
            .group_by(Event.service_request)
            .tuples()
        )
        return Counter(counts.get(rid, 0) for rid in request_ids)

    statuses = Counter(
        status
        for (status,) in ServiceRequest.select(ServiceRequest.status).where(ServiceRequest.id.in_(request_ids)).tuples()
    )
    received, receipts = events_per_request("payment_received"), events_per_request("payment_receipt")
    payment_statuses = Counter(p.status for p in payments)
    refunds = sum(1 for p in payments if p.needs_refund)
    n = len(references)
    ok = (
        len(request_ids) == n
        and received == Counter({1: n})
        and receipts == Counter({1: n})
        and statuses == Counter({RequestStatus.PENDING_ADMIN_ASSIGNMENT: n})
        and payment_statuses == Counter({PaymentStatus.SUCCESS: n})
        and refunds == 0
    )
    return ok, {
        "requests": len(request_ids),
        "payment_received per request": dict(received),
        "payment_receipt per request": dict(receipts),
        "request statuses": dict(statuses),
        "payment statuses": dict(payment_statuses),
        "flagged for refund": refunds,
        "events in total": Event.select().count(),
    }


def pipeline_state(redis_client):
    from models import Notification
    from workers.dispatcher import GROUP
    from workers.transport import EMAIL_QUEUE, QUEUE, STREAM

    groups = {g["name"].decode(): g for g in redis_client.xinfo_groups(STREAM)} if redis_client.exists(STREAM) else {}
    group = groups.get(GROUP, {})
    return {
        "stream lag": group.get("lag"),
        "stream pending": group.get("pending"),
        "rq queued": sum(redis_client.llen(f"rq:queue:{q}") for q in (QUEUE, EMAIL_QUEUE)),
        "rq failed": sum(redis_client.zcard(f"rq:failed:{q}") for q in (QUEUE, EMAIL_QUEUE)),
        "notifications": Notification.select().count(),
        "emails sent": Notification.select().where(Notification.sent_to_email == True).count(),
    }


def drained(state, expected_notifications):
    return (
        not state["stream lag"]
        and not state["stream pending"]
        and not state["rq queued"]
        and state["notifications"] == state["emails sent"] == expected_notifications
    )


def jobs_done(state):
    # Every event here has one recipient, so a finished job is one new notification or one sent email.
    return state["notifications"] + state["emails sent"]


def report_pipeline(redis_client, at_end, total, drain_seconds):
    expected = 2 * total  # payment_received to the admin, payment_receipt to the client
    print(f"pipeline when the load stopped ({expected} notifications and emails expected): {at_end}")
    started = time.perf_counter()
    state = pipeline_state(redis_client)
    while not drained(state, expected) and time.perf_counter() - started < drain_seconds:
        time.sleep(0.5)
        state = pipeline_state(redis_client)
    waited = time.perf_counter() - started
    done = drained(state, expected)
    verdict = f"drained {waited:.1f}s after the load" if done else f"NOT drained after {waited:.0f}s"
    print(f"pipeline {verdict}: {state}")
    if waited > 1:
        rate = (jobs_done(state) - jobs_done(at_end)) / waited
        print(
            f"pipeline: the worker finished {rate:.1f} jobs/s while draining; each webhook makes 4 jobs "
            f"(2 deliveries, 2 emails), so it keeps up with at most {rate / 4:.1f} webhooks/s"
        )


# ---------------------------------------------------------------- report


def print_cpu(cpu_used, machine_used, wall, total, ref_cpu):
    cores = os.cpu_count()
    rest = machine_used - sum(cpu_used.values())
    print(
        f"\nCPU during the project phases ({wall:.0f}s): the machine was {machine_used / wall / cores:.0%} busy "
        f"({machine_used:.1f} core-seconds of {wall * cores:.0f}): "
        + ", ".join(f"{name} {secs:.1f}" for name, secs in cpu_used.items())
        + f", the rest (Redis, short-lived connections, anything else running) {rest:.1f}; "
        f"web process {cpu_used['web'] * 1000 / total:.1f} ms of CPU per webhook "
        f"(the reference {ref_cpu * 1000 / total:.1f} ms)"
    )


def load_line():
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def print_row(name, s):
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(s["errors"].items())) or "0"
    print(
        f"  {name:<10} {s['sent']:>6} {s['ok']:>6} {s['throughput']:>10.1f} {s['p50']:>8.1f} {s['p99']:>8.1f} "
        f"{s['max']:>8.1f} {s['send_lag_max']:>9.1f}   {errors}"
    )


def print_phase(rate, seconds, reference, project):
    print(f"\n{rate:g}/s for {seconds:g}s ({project['sent']} webhooks)")
    print(
        f"  {'':<10} {'sent':>6} {'200':>6} {'achieved/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'send lag':>9}   errors"
    )
    print_row("reference", reference)
    print_row("project", project)
    print(
        f"  project/reference: p50 x{project['p50'] / reference['p50']:.1f}, "
        f"p99 x{project['p99'] / reference['p99']:.1f}"
    )


# ---------------------------------------------------------------- main


def phases_from(args):
    """[(rate, seconds, count)]: --seconds pairs with --rate (one value applies to all phases)."""
    seconds = args.seconds if len(args.seconds) == len(args.rate) else args.seconds[:1] * len(args.rate)
    phases = []
    for rate, secs in zip(args.rate, seconds, strict=True):
        count = int(rate * secs)
        phases.append((rate, secs, min(count, args.requests) if args.requests else count))
    return phases


def send_all(url, phases, bodies_for, timeout):
    results, offset = [], 0
    for rate, _, count in phases:
        results.append(run_phase(url, bodies_for(offset, count), rate, timeout))
        offset += count
    return results


def report_exits(procs, log_dir):
    """A project process that died during the load explains errors the figures alone cannot."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"code {proc.returncode}"
            tail = (log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
            print(f"WARNING: the {name} process exited during the run ({how}); last log lines:", *tail, sep="\n  ")


def count_log_problems(log_dir):
    return sum(
        1
        for log in log_dir.glob("*.log")
        for line in log.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    )


def prepare(args, env, total):
    """A migrated, truncated database with `total` payable requests, and an empty Redis db."""
    import redis

    import models

    ensure_database(args.database_url)
    redis_client = redis.Redis.from_url(args.redis_url)
    redis_client.flushdb()  # a bench-only db: stale stream entries or jobs would skew the pipeline figures
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    models.bind(args.database_url)
    started = time.perf_counter()
    references = seed(total)
    print(f"seeded {total} clients, requests PENDING_PAYMENT and payments in {time.perf_counter() - started:.1f}s")
    return redis_client, references


def start_processes(args, env, log_dir, procs):
    """The reference, the web process and (unless --no-pipeline) the dispatcher and the worker."""
    ref_port, web_port = free_port(), free_port()
    reference = subprocess.Popen([sys.executable, __file__, "--serve-reference", str(ref_port)], cwd=ROOT)
    procs.append(reference)
    project = {"web": spawn(["-m", "server", "serve", "--port", str(web_port)], env, log_dir, "web")}
    if args.pipeline:
        project.update({name: spawn(["-m", "server", name], env, log_dir, name) for name in ("dispatcher", "worker")})
    procs.extend(project.values())
    wait_healthy(ref_port, reference, "reference")
    wait_healthy(web_port, project["web"], "web")
    url = "http://127.0.0.1:{}" + WEBHOOK_PATH
    return reference, project, url.format(ref_port), url.format(web_port)


def measure_reference(reference, url, phases, timeout):
    cpu = cpu_seconds(reference.pid)
    results = send_all(
        url,
        phases,
        lambda offset, count: [webhook(f"REF-{offset + i}-{secrets.token_hex(6)}") for i in range(count)],
        timeout,
    )
    return results, cpu_seconds(reference.pid) - cpu


def measure_project(project, url, phases, references, timeout):
    """Latencies per phase, and the CPU each process (and the machine) spent meanwhile."""
    measured = {name: proc.pid for name, proc in project.items()}
    measured["load generator"] = os.getpid()
    cpu_before = {name: cpu_seconds(pid) for name, pid in measured.items()}
    machine_before, wall_before, pg_before = machine_cpu_seconds(), time.perf_counter(), postgres_cpu_seconds()
    results = send_all(
        url, phases, lambda offset, count: [webhook(ref) for ref in references[offset : offset + count]], timeout
    )
    cpu_used = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in measured.items()}
    cpu_used["PostgreSQL"] = sum(secs - pg_before.get(pid, 0) for pid, secs in postgres_cpu_seconds().items())
    return results, cpu_used, machine_cpu_seconds() - machine_before, time.perf_counter() - wall_before


def check_exactly_once(url, references, share, rate, timeout):
    """Each request moved once; then a replayed share of the webhooks must change nothing."""
    ok, details = moved_once(references)
    print(f"\nafter the run: {details}")
    replay_refs = references[:: max(1, round(1 / share))] if share else []
    if replay_refs:
        replay = run_phase(url, [webhook(r) for r in replay_refs], rate, timeout)
        events_before = details["events in total"]
        ok_again, details = moved_once(references)
        new_events = details["events in total"] - events_before
        print(
            f"replayed {len(replay_refs)} webhooks at {rate:g}/s: {replay['ok']} answered 200, "
            f"p50 {replay['p50']:.1f} ms, p99 {replay['p99']:.1f} ms; new events {new_events}"
        )
        ok = ok and ok_again and new_events == 0 and replay["ok"] == len(replay_refs)
    print(
        f"{'PASS' if ok else 'FAIL'}: each of {len(references)} requests moved to PENDING_ADMIN_ASSIGNMENT "
        f"exactly once" + (f", and {len(replay_refs)} replayed webhooks changed nothing" if replay_refs else "")
    )
    return ok


def run(args, log_dir):
    phases = phases_from(args)
    total = sum(count for _, _, count in phases)
    env = project_env(args.database_url, args.redis_url)
    print(f"machine: {os.cpu_count()} cores, load average before {load_line()}")
    redis_client, references = prepare(args, env, total)
    procs = []
    try:
        reference, project, ref_url, web_url = start_processes(args, env, log_dir, procs)
        AsyncHTTPClient.configure(None, max_clients=5000)
        # The reference goes first so it never shares the CPU with the project's pipeline catching up.
        ref_results, ref_cpu = measure_reference(reference, ref_url, phases, args.timeout)
        spy = start_py_spy(project["web"].pid, args.py_spy) if args.py_spy else None
        results, cpu_used, machine_used, wall = measure_project(project, web_url, phases, references, args.timeout)
        if spy:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C, not on SIGTERM
            spy.wait(30)
        load_after = load_line()
        report_exits(project, log_dir)
        at_end = pipeline_state(redis_client) if args.pipeline else None

        for (rate, secs, _), ref, proj in zip(phases, ref_results, results, strict=True):
            print_phase(rate, secs, ref, proj)
        print_cpu(cpu_used, machine_used, wall, total, ref_cpu)
        ok = check_exactly_once(web_url, references, args.replay, phases[-1][0], args.timeout)
        if args.pipeline:
            report_pipeline(redis_client, at_end, total, args.drain)
        print(f"warning/error lines in the project's logs: {count_log_problems(log_dir)}")
        print(
            f"machine: {os.cpu_count()} cores, load average right after the load {load_after}, at the end {load_line()}"
        )
        return ok
    finally:
        stop(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[50, 200], help="webhooks per second, per phase")
    parser.add_argument("--seconds", type=float, nargs="+", default=[20, 10], help="duration of each phase")
    parser.add_argument("--requests", type=int, default=0, help="at most this many webhooks per phase")
    parser.add_argument("--replay", type=float, default=0.1, help="share of webhooks sent a second time")
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a webhook counts as failed")
    parser.add_argument(
        "--no-pipeline", dest="pipeline", action="store_false", help="do not start the dispatcher and worker"
    )
    parser.add_argument("--drain", type=float, default=30, help="seconds to wait for the pipeline to catch up")
    parser.add_argument("--py-spy", metavar="FILE", help="record the web process with py-spy (raw format)")
    parser.add_argument("--logs", metavar="DIR", help="keep the project's logs (web, dispatcher, worker) here")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--serve-reference", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_reference:
        return serve_reference(args.serve_reference)
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
        ok = run(args, Path(args.logs))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            ok = run(args, Path(tmp))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
