"""Benchmark: the notification pipeline on PostgreSQL + Redis (`python -m server dispatcher` and
`worker`, as in production), emails to a loopback SMTP server run by this script.

1. Drain: a backlog of committed events (half `request_created`, one recipient; half
   `payment_received`, one per admin) is put on the stream at once; the script times how long the
   dispatcher and one, then two, workers take to create every notification row, publish every push
   and get every email accepted, and checks that each happened exactly once.
2. Reference, in the same sitting: the same drain, smaller, with the configuration before the
   pipeline worked in batches (`worker --fork`: RQ's forking Worker, a process per job;
   `dispatcher --batch 1`: one event per job); the project/reference ratios are printed.
3. Latency: with `python -m server serve` holding one authenticated websocket per client, this
   script commits events at a steady rate (open loop, from threads) and measures commit -> push on
   the socket, p50/p99.

Prints the figures, the targets of issue 10, the CPU each process used and the machine's load;
asserts nothing about speed, exits 1 if anything was lost or doubled. Bench data only: the
database and the Redis db are emptied at the start.

    .venv/bin/python bench/pipeline.py [--quick] [--events 3000] [--workers 1 2] [--rates 50 200]
        [--seconds 20] [--reference-events 300] [--no-reference] [--py-spy DIR] [--logs DIR]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import webhooks as wh  # noqa: E402  (process, CPU and database helpers shared by the benchmarks)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_pipeline"
ADMINS = 3
CLIENTS = 200
TARGETS = (
    "targets: >= 1000 notification rows/s and pushes/s with two workers; >= 200 emails/s; "
    "commit -> socket p50 < 20 ms and p99 < 100 ms at 50 events/s, p99 < 1 s at 200 events/s"
)
MESSAGE_ID = re.compile(rb"Message-ID: <notification-(\d+)@serviceman>", re.IGNORECASE)


# ---------------------------------------------------------------- observers


def private_redis():
    """(url, process): a redis-server of this run's own. Pub/sub channels are shared by every db of a
    Redis server, so on a shared Redis other programs' pushes would be counted here, and ours
    would reach their sockets."""
    import redis

    port = wh.free_port()
    process = wh.subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=wh.subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(200):  # a fresh process has no readiness signal: poll, bounded
        try:
            client.ping()
            return f"redis://127.0.0.1:{port}/0", process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


class SinkHandler:
    def __init__(self):
        self.per_notification = Counter()
        self.count, self.last = 0, None

    async def handle_DATA(self, server, session, envelope):
        match = MESSAGE_ID.search(envelope.content)
        self.per_notification[int(match.group(1)) if match else 0] += 1
        self.count += 1
        self.last = time.monotonic()  # CLOCK_MONOTONIC: comparable across this machine's processes
        return "250 Message accepted for delivery"


def serve_sink(port, commands):
    """The SMTP server's process: answers "report" (count, last, doubled) and "reset" on the pipe."""
    from aiosmtpd.controller import Controller

    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    commands.send("ready")
    while True:
        command = commands.recv()
        if command == "reset":
            handler.per_notification.clear()
            handler.count, handler.last = 0, None
            commands.send("ok")
        elif command == "report":
            doubled = sum(c - 1 for c in handler.per_notification.values() if c > 1)
            commands.send((handler.count, handler.last, doubled))
        else:
            controller.stop()
            return


class SmtpSink:
    """A loopback SMTP server (aiosmtpd) in a process of its own, so it competes with this script
    for no GIL: accepts everything, counts each notification's emails (by Message-ID)."""

    def __init__(self):
        import multiprocessing

        self.port = wh.free_port()
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve_sink, args=(self.port, child), daemon=True)
        self.process.start()
        assert self.pipe.poll(30) and self.pipe.recv() == "ready"

    def reset(self):
        self.pipe.send("reset")
        self.pipe.recv()

    def report(self):
        self.pipe.send("report")
        return self.pipe.recv()

    @property
    def count(self):
        return self.report()[0]

    def stop(self):
        self.pipe.send("stop")
        self.process.join(10)


class PushWatcher(threading.Thread):
    """Subscribes as a web process does and records every push: notification ids, and when."""

    def __init__(self, redis_url):
        import redis

        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.redis_url = redis_url
        self.per_notification = Counter()
        self.unread_counts, self.last = 0, None
        self.stopping = False
        self.subscribed = threading.Event()

    def run(self):
        from workers.transport import user_channel

        pubsub = self.client.pubsub()
        pubsub.psubscribe(user_channel(self.redis_url, "") + "*")
        while not self.stopping:
            item = pubsub.get_message(timeout=0.2)
            if item is None:
                continue
            if item["type"] == "psubscribe":
                self.subscribed.set()
            if item["type"] != "pmessage":
                continue
            message = json.loads(item["data"])
            if message["type"] == "notification":
                self.per_notification[message["notification"]["id"]] += 1
            else:
                self.unread_counts += 1
            self.last = time.monotonic()
        pubsub.close()

    def reset(self):
        self.per_notification.clear()
        self.unread_counts, self.last = 0, None


# ---------------------------------------------------------------- data


def seed(clients):
    """Emptied tables, ADMINS admins, one category, `clients` clients with one request each."""
    from models import ALL_MODELS, Category, RequestStatus, Role, ServiceRequest, User, database
    from models.foundation.tokens import hash_password

    for model in ALL_MODELS:
        model.truncate_table(restart_identity=True, cascade=True)
    password = hash_password("bench-password-1", 4)
    with database.atomic():
        User.insert_many(
            [
                {
                    "email": f"admin{i}@bench.ng",
                    "password_hash": password,
                    "first_name": "Admin",
                    "last_name": str(i),
                    "role": Role.ADMIN,
                }
                for i in range(ADMINS)
            ]
        ).execute()
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
                for i in range(clients)
            ]
        ).execute()
        category = Category.create(name="Plumbing", description="Bench")
        ids = [u.id for u in User.select(User.id).where(User.role == Role.CLIENT).order_by(User.id)]
        ServiceRequest.insert_many(
            [
                {
                    "client": c,
                    "category": category.id,
                    "booking_date": date.today() + timedelta(5),
                    "address": "1 Bench Road, Yaba",
                    "description": "benchmark",
                    "booking_fee": "2000.00",
                    "status": RequestStatus.PENDING_ADMIN_ASSIGNMENT,
                }
                for c in ids
            ]
        ).execute()
    return list(ServiceRequest.select().order_by(ServiceRequest.id))


def backlog(requests, count):
    """`count` committed events (already marked published: this script puts them on the stream),
    alternating request_created (1 recipient) and payment_received (ADMINS recipients).
    Returns (event ids, notifications expected)."""
    from models import Event, Notification
    from models.foundation.clock import utcnow

    Notification.truncate_table(restart_identity=True, cascade=True)
    Event.truncate_table(restart_identity=True, cascade=True)
    now, rows = utcnow(), []
    for i in range(count):
        request = requests[i % len(requests)]
        kind = "request_created" if i % 2 == 0 else "payment_received"
        rows.append(
            {
                "type": kind,
                "service_request": request.id,
                "payload": {
                    "amount": "2000.00",
                    "booking_fee": "2000.00",
                    "service_request_id": request.id,
                    "is_emergency": False,
                },
                "published_at": now,
            }
        )
    ids = []
    for chunk in wh.chunks(rows, 1000):
        ids += [e.id for e in Event.insert_many(chunk).returning(Event.id).execute()]
    expected = sum(1 if row["type"] == "request_created" else ADMINS for row in rows)
    return ids, expected


# ---------------------------------------------------------------- processes


def pipeline_env(args, sink):
    return {
        **wh.project_env(args.database_url, args.redis_url),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_HOST_USER": "",
        "DEFAULT_FROM_EMAIL": "bench@serviceman.ng",
    }


def start_pipeline(args, env, log_dir, workers, reference=False):
    """The dispatcher and `workers` workers, once they listen; {name: Popen}."""
    import redis
    from rq import Queue, Worker

    from workers.dispatcher import GROUP
    from workers.transport import QUEUE, STREAM

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    dispatcher = ["-m", "server", "dispatcher"] + (["--batch", "1"] if reference else [])
    worker = ["-m", "server", "worker"] + (["--fork"] if reference else [])
    procs = {"dispatcher": wh.spawn(dispatcher, env, log_dir, "dispatcher")}
    for i in range(workers):
        procs[f"worker{i + 1}"] = wh.spawn(worker, env, log_dir, f"worker{i + 1}")
    queue = Queue(QUEUE, connection=client)
    deadline = time.monotonic() + 60
    while True:  # no readiness signal from these processes: poll Redis for their registrations, bounded
        groups = client.xinfo_groups(STREAM) if client.exists(STREAM) else []
        if Worker.count(connection=client, queue=queue) >= workers and any(g["name"] == GROUP.encode() for g in groups):
            break
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} at start-up (logs: {log_dir})")
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline processes did not start")
        time.sleep(0.1)
    time.sleep(0.5)  # the dispatcher is blocked in XREADGROUP by now
    return procs, client


def start_py_spy(procs, out_dir, label):
    if not out_dir:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [wh.start_py_spy(proc.pid, str(Path(out_dir) / f"{label}-{name}.txt")) for name, proc in procs.items()]


def stop_py_spy(spies):
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    for spy in spies:
        spy.wait(30)


# ---------------------------------------------------------------- drain


def drain(args, log_dir, requests, sink, pushes, workers, events, reference=False):
    """Put `events` events on the stream at once; time rows, pushes and emails until all are done."""
    from models import Notification
    from workers.transport import STREAM

    event_ids, expected = backlog(requests, events)
    sink.reset()
    pushes.reset()
    label = f"reference-{workers}w" if reference else f"drain-{workers}w"
    procs, client = start_pipeline(args, pipeline_env(args, sink), log_dir, workers, reference)
    spies = start_py_spy(procs, args.py_spy, label)
    try:
        cpu_before = {name: wh.cpu_seconds(p.pid) for name, p in procs.items()}
        machine_before = wh.machine_cpu_seconds()
        started = time.monotonic()
        with client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.xadd(STREAM, {"event_id": str(event_id)})
            pipe.execute()
        rows_done = None
        while time.monotonic() - started < args.timeout:
            if rows_done is None and Notification.select().count() >= expected:
                rows_done = time.monotonic()
            if rows_done and len(pushes.per_notification) >= expected and sink.count >= expected:
                break
            time.sleep(0.05)
        wall = time.monotonic() - started
        cpu = {name: wh.cpu_seconds(p.pid) - cpu_before[name] for name, p in procs.items()}
        machine = wh.machine_cpu_seconds() - machine_before
    finally:
        stop_py_spy(spies)
        wh.stop(list(procs.values()))
    time.sleep(0.3)  # pushes and emails in flight when the processes stopped
    emails, emails_last, emails_doubled = sink.report()
    rows = Notification.select().count()
    emailed = Notification.select().where(Notification.sent_to_email == True).count()
    result = {
        "label": label,
        "workers": workers,
        "events": events,
        "rows": rows,
        "expected": expected,
        "wall": wall,
        "events/s": events / (rows_done - started) if rows_done else 0.0,
        "rows/s": rows / ((rows_done or time.monotonic()) - started),
        "pushes/s": len(pushes.per_notification) / ((pushes.last or started + 1) - started),
        "emails/s": emails / ((emails_last or started + 1) - started),
        "pushes": len(pushes.per_notification),
        "pushes doubled": sum(1 for c in pushes.per_notification.values() if c > 1),
        "unread counts": pushes.unread_counts,
        "emails": emails,
        "marked sent": emailed,
        "emails doubled": emails_doubled,
        "cpu": cpu,
        "machine cpu": machine,
    }
    result["ok"] = (
        rows == expected
        and result["pushes"] == expected
        and result["pushes doubled"] == 0
        and result["emails"] == expected
        and result["emails doubled"] == 0
        and emailed == expected
    )
    return result


def print_drain(result):
    r = result
    print(
        f"\n{r['label']}: {r['events']} events -> {r['expected']} notifications, drained in {r['wall']:.1f}s"
        f"{'' if r['ok'] else '  (INCOMPLETE or DOUBLED, see below)'}"
    )
    print(
        f"  events/s {r['events/s']:8.1f}   rows/s {r['rows/s']:8.1f}   pushes/s {r['pushes/s']:8.1f}   "
        f"emails/s {r['emails/s']:8.1f}"
    )
    print(
        f"  rows {r['rows']}/{r['expected']}, pushes {r['pushes']} (doubled {r['pushes doubled']}, unread counts "
        f"{r['unread counts']}), emails accepted {r['emails']} (doubled {r['emails doubled']}), marked sent "
        f"{r['marked sent']}"
    )
    cores = os.cpu_count()
    print(
        "  CPU core-seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["cpu"].items())
        + f"; whole machine {r['machine cpu']:.1f} of {r['wall'] * cores:.0f} "
        f"({r['machine cpu'] / r['wall'] / cores:.0%} busy)"
    )
    worker_cpu = sum(v for k, v in r["cpu"].items() if k.startswith("worker"))
    per = worker_cpu * 1000 / max(1, r["rows"])
    print(
        f"  worker CPU per notification (row, push and email): {per:.2f} ms, i.e. one busy core would do "
        f"{1000 / per if per else 0:.0f} notifications/s (the load decides how much core the workers got)"
    )


# ---------------------------------------------------------------- latency


def mint_tokens(args, users):
    from models.foundation.settings import load_settings
    from models.foundation.tokens import access_token

    os.environ.update(wh.project_env(args.database_url, args.redis_url))
    settings = load_settings()
    return {u.id: access_token(settings, u) for u in users}


async def open_sockets(url, tokens):
    from tornado.websocket import websocket_connect

    sockets = {}
    for user_id, token in tokens.items():
        ws = await websocket_connect(url)
        await ws.write_message(json.dumps({"type": "auth", "token": token}))
        while json.loads(await asyncio.wait_for(ws.read_message(), 30)).get("type") != "ready":
            pass
        sockets[user_id] = ws
    return sockets


COMMITTED = {}  # event id -> the moment its transaction committed (an after-commit hook, see latency())


def note_commit(event_id):
    COMMITTED[event_id] = time.monotonic()


def commit_at_rate(requests, rate, seconds):
    """Open loop: event i is committed at start + i/rate, from a few threads so one slow commit
    does not delay the next. Returns (count, the sender's worst lag, {seq: event id})."""
    from models import ServiceRequest
    from models.workflow import record_event, unit_of_work

    event_of_seq = {}

    def commit(seq, request):
        with unit_of_work():
            event = record_event(request, "request_created", None, payload={"bench_seq": seq, "booking_fee": "2000.00"})
        event_of_seq[seq] = event.id

    count = int(rate * seconds)
    lag = 0.0
    with ThreadPoolExecutor(max_workers=6) as pool:  # the pool of 8 connections, less this thread's
        start = time.monotonic() + 0.2
        for seq in range(count):
            due = start + seq / rate
            time.sleep(max(0.0, due - time.monotonic()))
            lag = max(lag, time.monotonic() - due)
            request = requests[seq % len(requests)]
            pool.submit(_with_connection, commit, seq, ServiceRequest(id=request.id, is_emergency=False))
    return count, lag, event_of_seq


def _with_connection(fn, *args):
    from models import database

    with database.connection_context():
        fn(*args)


def latency(args, log_dir, requests, sink, rate, seconds):
    """Commit -> socket latency at a steady `rate` of events, with the web process holding the sockets."""
    from models.workflow import on_event_committed
    from server.pipeline import start_pipeline
    from workers import runtime
    from workers.transport import RedisTransport

    env = pipeline_env(args, sink)
    procs, _ = start_pipeline(args, env, log_dir, args.latency_workers)
    port = wh.free_port()
    procs["web"] = wh.spawn(["-m", "server", "serve", "--port", str(port)], env, log_dir, "web")
    spies = []
    try:
        wh.wait_healthy(port, procs["web"], "web")
        users = {r.client_id for r in requests[: args.sockets]}
        from models import User

        tokens = mint_tokens(args, list(User.select().where(User.id.in_(list(users)))))
        # Registered before start_pipeline() adds the publish: hooks run in order, so this notes
        # the commit itself, not the commit plus the publish.
        on_event_committed(note_commit)
        start_pipeline(None, RedisTransport(args.redis_url))
        chosen = [r for r in requests if r.client_id in users]
        received = {}

        async def run():
            sockets = await open_sockets(f"ws://127.0.0.1:{port}/ws/", tokens)

            async def listen(ws):
                while True:
                    raw = await ws.read_message()
                    if raw is None:
                        return
                    message = json.loads(raw)
                    if message["type"] == "notification":
                        seq = message["notification"]["payload"].get("bench_seq")
                        if seq is not None:
                            received[seq] = time.monotonic()

            listeners = [asyncio.ensure_future(listen(ws)) for ws in sockets.values()]
            loop = asyncio.get_running_loop()
            spies.extend(start_py_spy(procs, args.py_spy, f"latency-{rate:g}"))
            count, lag, event_of_seq = await loop.run_in_executor(None, commit_at_rate, chosen, rate, seconds)
            deadline = time.monotonic() + args.timeout
            while len(received) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for task in listeners:
                task.cancel()
            for ws in sockets.values():
                ws.close()
            return count, lag, event_of_seq

        cpu_before = {name: wh.cpu_seconds(p.pid) for name, p in procs.items()}
        started = time.monotonic()
        count, lag, event_of_seq = asyncio.run(run())
        wall = time.monotonic() - started
        cpu = {name: wh.cpu_seconds(p.pid) - cpu_before[name] for name, p in procs.items()}
    finally:
        stop_py_spy(spies)
        runtime.reset()
        wh.stop(list(procs.values()))
    ms = sorted(
        (received[s] - COMMITTED[event_of_seq[s]]) * 1000
        for s in received
        if s in event_of_seq and event_of_seq[s] in COMMITTED
    )
    return {
        "rate": rate,
        "sent": count,
        "received": len(received),
        "p50": statistics.median(ms) if ms else None,
        "p99": wh.percentile(ms, 0.99) if ms else None,
        "max": ms[-1] if ms else None,
        "send lag": lag * 1000,
        "wall": wall,
        "cpu": cpu,
    }


def print_latency(r):
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    print(
        f"\ncommit -> socket at {r['rate']:g} events/s: {r['sent']} committed, {r['received']} pushed to a socket; "
        f"p50 {fmt(r['p50'])} ms, p99 {fmt(r['p99'])} ms, max {fmt(r['max'])} ms "
        f"(committer lag up to {r['send lag']:.0f} ms)"
    )
    print("  CPU core-seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in r["cpu"].items()) + f" over {r['wall']:.0f}s")


# ---------------------------------------------------------------- main


def run(args, log_dir):
    import models

    print(f"machine: {os.cpu_count()} cores, load average before {wh.load_line()}")
    print(TARGETS)
    wh.ensure_database(args.database_url)
    env = wh.project_env(args.database_url, args.redis_url)
    wh.subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, stdout=wh.subprocess.DEVNULL
    )
    models.bind(args.database_url)
    requests = seed(CLIENTS)
    sink, pushes = SmtpSink(), PushWatcher(args.redis_url)
    pushes.start()
    pushes.subscribed.wait(10)
    ok = True
    try:
        drains = []
        for workers in args.workers:
            drains.append(drain(args, log_dir, requests, sink, pushes, workers, args.events))
            print_drain(drains[-1])
            ok = ok and drains[-1]["ok"]
        if args.reference:
            ref = drain(args, log_dir, requests, sink, pushes, 1, args.reference_events, reference=True)
            print_drain(ref)
            ok = ok and ref["ok"]
            print("\nproject / reference (the reference: `worker --fork`, `dispatcher --batch 1`, one worker):")
            for r in drains:
                print(
                    f"  {r['label']}: "
                    + ", ".join(
                        f"{k} x{r[k] / ref[k]:.1f}" for k in ("events/s", "rows/s", "pushes/s", "emails/s") if ref[k]
                    )
                )
        for rate in args.rates:
            result = latency(args, log_dir, requests, sink, rate, args.seconds)
            print_latency(result)
            ok = ok and result["received"] == result["sent"]
    finally:
        pushes.stopping = True
        pushes.join(5)
        sink.stop()
    print(f"\nwarning/error lines in the project's logs: {wh.count_log_problems(log_dir)}")
    print(f"{'PASS' if ok else 'FAIL'}: every notification created, pushed and emailed exactly once")
    print(f"machine: {os.cpu_count()} cores, load average at the end {wh.load_line()}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a run of a couple of minutes: 1000 events, 150 for the reference, 10 s per rate",
    )
    parser.add_argument("--events", type=int, default=3000, help="backlog size of each drain")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="one drain per worker count")
    parser.add_argument("--reference-events", type=int, default=300)
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    parser.add_argument("--rates", type=float, nargs="*", default=[50, 200], help="events/s of the latency phases")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each latency phase")
    parser.add_argument("--sockets", type=int, default=100, help="clients with a socket open in the latency phases")
    parser.add_argument("--latency-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300, help="give up on a phase after this many seconds")
    parser.add_argument("--py-spy", metavar="DIR", help="record every pipeline process with py-spy (raw format)")
    parser.add_argument("--logs", metavar="DIR", help="keep the processes' logs here")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", help="an EMPTY Redis of its own (flushed); default: a private redis-server")
    args = parser.parse_args()
    if args.quick:
        args.events, args.reference_events, args.seconds = min(args.events, 1000), min(args.reference_events, 150), 10
    redis_server = None
    if not args.redis_url:
        args.redis_url, redis_server = private_redis()
    try:
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            ok = run(args, Path(args.logs))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                ok = run(args, Path(tmp))
    finally:
        if redis_server:
            wh.stop([redis_server])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
