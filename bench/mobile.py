"""Benchmark: what a phone's polling costs (issue 24), against a bare Tornado handler in the same sitting.

Starts `python -m server serve` (PostgreSQL + Redis mode) on a database it empties and fills with
USERS signed-in clients holding NOTES notifications each, and a bare Tornado JSON handler (the
floor). A raw keep-alive HTTP/1.1 load generator (CONNECTIONS connections, each request as the next
client) then measures requests/s and p50/p99 of:
    floor                       the bare handler
    GET /api/notifications/?page_size=20        (what phones poll today: the baseline)
    GET /api/notifications/unread-count/        (the other baseline)
    GET /api/sync/?since=<cursor> + If-None-Match, nothing new (the 304 path; target >= 50% of floor)
and the bytes on the wire of one "nothing new" poll (request + answer; target <= 500). Then:
    memory per held poll: HELD long-polls (`wait=25`, nothing new) held at once by a second web process
    (METRICS_TOKEN set: its serviceman_sync_polls_held gauge confirms every poll is held when RSS is read);
    wake-up latency: 200 long-polls and 200 websockets (one each per user) held while notifications are
    committed and pushed (as the pipeline pushes them) at 50 events/s to their users; commit -> poll
    answer received and commit -> socket push received, p50/p99, for the same events.

    .venv/bin/python bench/mobile.py [--quick] [--users 1000] [--held 10000] [--database bench_mobile]

Needs PostgreSQL at 127.0.0.1:5432 (trust auth) and Redis at 127.0.0.1:6379. Prints numbers; asserts nothing.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "bench-secret-key-0123456789abcdef0123456789"
METRICS_TOKEN = "bench-metrics-token"  # the held-polls server only: its gauge says how many it holds
FLOOR_SERVER = """
import sys, tornado.ioloop, tornado.web
class H(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"count": 3}')
app = tornado.web.Application([(r"/", H)])
app.listen(int(sys.argv[1]), "127.0.0.1")
tornado.ioloop.IOLoop.current().start()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def environment(database_url, redis_url):
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
        "ENV": "development",
        "LOG_LEVEL": "ERROR",
        "BCRYPT_ROUNDS": "4",
        "DB_POOL_SIZE": "8",
        **{f"RATE_LIMIT_{n}": "" for n in ("LOGIN", "REGISTER", "REFRESH", "EMAIL", "PAYMENT_INITIALIZE")},
    }


def seed(env, users, notes):
    """Fresh tables, USERS clients with NOTES notifications each; their access tokens."""
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    import models
    from models.foundation.settings import load_settings
    from models.foundation.tokens import access_token

    settings = load_settings(environ=env, read_dotenv=False)
    db = models.bind(settings.database_url)
    with db.connection_context():
        with db.atomic():
            for model in reversed(models.ALL_MODELS):
                model.delete().execute()
        rows = [
            {
                "email": f"phone{i}@bench.ng",
                "password_hash": "!",
                "first_name": "Ada",
                "last_name": str(i),
                "phone": "+2348000000000",
                "role": "client",
            }
            for i in range(users)
        ]
        with db.atomic():
            models.User.insert_many(rows).execute()
        clients = list(models.User.select().order_by(models.User.id))
        with db.atomic():
            batch = [
                {
                    "user": c.id,
                    "notification_type": "job_confirmed",
                    "title": f"Booking #{k}: job confirmed",
                    "message": "Your booking is complete. Rate the serviceman from the app.",
                    "payload": {},
                    "is_read": k % 3 == 0,
                }
                for c in clients
                for k in range(notes)
            ]
            for start in range(0, len(batch), 5000):
                models.Notification.insert_many(batch[start : start + 5000]).execute()
    return settings, [(c.id, access_token(settings, c)) for c in clients]


def start(args, env):
    proc = subprocess.Popen(args, env=env, cwd=ROOT)
    return proc


async def wait_up(port):
    for _ in range(300):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing answers on {port}")


class Connection:
    """One keep-alive HTTP/1.1 connection, raw: requests written as bytes, answers read by Content-Length."""

    def __init__(self, port):
        self.port = port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, raw):
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return int(head[9:12]), head, body

    def close(self):
        self.writer.close()


def get(path, headers=()):
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def load(port, requests, seconds, connections):
    """Closed loop: each connection sends the next request of `requests` (cycled) as soon as it has an answer."""
    counter, latencies, statuses = [0], [], {}
    deadline = time.monotonic() + seconds

    async def worker():
        conn = await Connection(port).open()
        while time.monotonic() < deadline:
            raw = requests[counter[0] % len(requests)]
            counter[0] += 1
            started = time.perf_counter()
            status, _, _ = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "statuses": statuses,
    }


def line(name, result, floor=None):
    share = f"{result['rps'] / floor['rps']:6.0%}" if floor else "      "
    print(f"{name:44} {result['rps']:8.0f} {result['p50']:8.1f} {result['p99']:8.1f} {share}  {result['statuses']}")


async def cursors(port, users):
    conn, found = await Connection(port).open(), {}
    for user_id, token in users:
        path = "/api/sync/"
        while True:  # the snapshot, then along until nothing is new: the cursor a phone polls with
            status, _, body = await conn.request(get(path, [f"Authorization: Bearer {token}"]))
            assert status == 200, (status, body[:200])
            answer = json.loads(body)
            if path != "/api/sync/" and not (answer["notifications"] or answer["read"] or answer["requests"]):
                break
            path = f"/api/sync/?since={answer['cursor']}"
        found[user_id] = answer["cursor"]
    conn.close()
    return found


def sync_poll(token, cursor, wait=None, spelt_out=False):
    """A phone's poll as the README advises: the previous answer's ETag in If-None-Match stands in for
    `since` (`spelt_out`: the cursor sent in the query string too, as the first clients did)."""
    query = "&".join(([f"since={cursor}"] if spelt_out else []) + ([f"wait={wait}"] if wait else []))
    path = f"/api/sync/?{query}" if query else "/api/sync/"
    return get(path, [f"Authorization: Bearer {token}", f'If-None-Match: "{cursor}"'])


async def polls_held(port):
    """The web process's own count of the long-polls it holds (serviceman_sync_polls_held on /metrics)."""
    conn = await Connection(port).open()
    try:
        _, _, body = await conn.request(get("/metrics", [f"Authorization: Bearer {METRICS_TOKEN}"]))
    finally:
        conn.close()
    for line in body.decode().splitlines():
        if line.startswith("serviceman_sync_polls_held"):
            return int(float(line.split()[-1]))
    return 0


async def held_memory(port, pid, users, marks, held):
    """RSS of the web process once `held` long-polls are held (its own gauge says so), against before
    they were sent (their connections already open)."""
    conns = []
    for start in range(0, held, 500):
        conns += await asyncio.gather(*(Connection(port).open() for _ in range(min(500, held - start))))
    await asyncio.sleep(1)
    before = rss_kib(pid)
    for i, conn in enumerate(conns):
        user_id, token = users[i % len(users)]
        conn.writer.write(sync_poll(token, marks[user_id], wait=25))
    deadline, count = time.monotonic() + 20, 0
    while time.monotonic() < deadline and (count := await polls_held(port)) < held:
        await asyncio.sleep(0.2)
    after = rss_kib(pid)
    answered = {}  # status -> polls answered before the memory was read (none, if all were held)
    for conn in conns:
        if conn.reader.at_eof() or len(conn.reader._buffer):
            status = bytes(conn.reader._buffer[9:12]).decode() or "closed"
            answered[status] = answered.get(status, 0) + 1
    for conn in conns:
        conn.writer.transport.abort()
    return (after - before) / held, before, after, count, answered


async def wake_latency(port, settings, users, marks, seconds, rate=50, polls=200):
    """`polls` users long-poll in a loop and hold a websocket each; notifications are committed and
    pushed to them at `rate`/s. Commit -> long-poll answer and commit -> socket push, same events."""
    import models
    from workers import runtime
    from workers.delivery import push_new
    from workers.transport import RedisTransport

    runtime.configure(settings, RedisTransport(settings.redis_url))
    chosen = users[:polls]
    committed, polled, pushed, stop = {}, [], [], asyncio.Event()

    async def poller(user_id, token):
        conn, cursor = await Connection(port).open(), marks[user_id]
        try:
            while not stop.is_set():
                status, head, body = await conn.request(sync_poll(token, cursor, wait=25))
                arrived = time.perf_counter()
                if status == 200:
                    answer = json.loads(body)
                    cursor = answer["cursor"]
                    for note in answer["notifications"]:
                        if note["id"] in committed:
                            polled.append(arrived - committed[note["id"]])
        finally:
            conn.writer.transport.abort()

    async def socket(token):
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/ws/")
        await ws.write_message(json.dumps({"type": "auth", "token": token}))
        await ws.read_message()  # ready
        try:
            while not stop.is_set():
                message = await ws.read_message()
                arrived = time.perf_counter()
                if message is None:
                    return
                data = json.loads(message)
                if data["type"] == "notification" and data["notification"]["id"] in committed:
                    pushed.append(arrived - committed[data["notification"]["id"]])
        finally:
            ws.close()

    def commit(user_id):
        with models.database.connection_context():
            note = models.Notification.create(
                user=user_id, notification_type="job_confirmed", title="Wake up", message="A change", payload={}
            )
            committed[note.id] = time.perf_counter()
            push_new([note])

    tasks = [asyncio.ensure_future(poller(*u)) for u in chosen]
    tasks += [asyncio.ensure_future(socket(token)) for _, token in chosen]
    await asyncio.sleep(2)
    loop = asyncio.get_running_loop()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick = time.monotonic()
        await loop.run_in_executor(None, commit, random.choice(chosen)[0])
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))
    await asyncio.sleep(1)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sorted(polled), sorted(pushed)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s per measurement, 200 users, 2,000 held polls")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--notes", type=int, default=50)
    parser.add_argument("--held", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database", default="bench_mobile")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.users, args.held = 5, 200, 2000
    env = environment(f"postgresql://postgres@127.0.0.1:5432/{args.database}", args.redis)
    print(f"seeding {args.users} clients x {args.notes} notifications ...", flush=True)
    settings, users = seed(env, args.users, args.notes)
    port, floor_port = free_port(), free_port()
    server = start([sys.executable, "-m", "server", "serve", "--port", str(port)], env)
    floor_server = start([sys.executable, "-c", FLOOR_SERVER, str(floor_port)], env)
    try:
        await wait_up(port)
        await wait_up(floor_port)
        await asyncio.sleep(11)  # past the sync lag (10 s) since the seed: the cursors a phone holds once quiet
        marks = await cursors(port, users)
        auth = {uid: f"Authorization: Bearer {token}" for uid, token in users}
        lists = [get("/api/notifications/?page_size=20", [auth[uid]]) for uid, _ in users]
        counts = [get("/api/notifications/unread-count/", [auth[uid]]) for uid, _ in users]
        polls = [sync_poll(token, marks[uid]) for uid, token in users]

        print(
            f"\n{'what (64 connections, each request the next client)':44} {'req/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'floor':>6}"
        )
        await load(floor_port, [get("/")], 2, args.connections)  # warm-up
        floor = await load(floor_port, [get("/")], args.seconds, args.connections)
        line("bare Tornado handler (the floor)", floor)
        for name, requests in (
            ("GET /api/notifications/?page_size=20", lists),
            ("GET /api/notifications/unread-count/", counts),
            ("GET /api/sync/ 304, nothing new", polls),
        ):
            await load(port, requests, 2, args.connections)  # warm-up (the 304 path's first read of each cursor)
            line(name, await load(port, requests, args.seconds, args.connections), floor)
        floor_again = await load(floor_port, [get("/")], args.seconds, args.connections)
        line("bare Tornado handler (again, after)", floor_again)

        conn = await Connection(port).open()
        uid, token = users[0]
        status, head, body = await conn.request(polls[0])
        print(
            f"\none 'nothing new' poll: {status}, request {len(polls[0])} bytes + answer {len(head) + len(body)} "
            f"bytes = {len(polls[0]) + len(head) + len(body)} bytes on the wire (HTTP, before TCP/TLS); "
            f"the access token alone is {len(token)} bytes"
        )
        spelt_out = sync_poll(token, marks[uid], spelt_out=True)
        status, head, body = await conn.request(spelt_out)
        print(f"the same poll with ?since= too: {status}, {len(spelt_out) + len(head) + len(body)} bytes")
        status, head, body = await conn.request(lists[0])
        print(f"one list poll (page_size=20): {len(lists[0]) + len(head) + len(body)} bytes")
        conn.close()

        polled, pushed = await wake_latency(port, settings, users, marks, args.seconds)
        for name, latencies in (("long-poll answer", polled), ("socket push (the same events)", pushed)):
            if latencies:
                print(
                    f"wake-up at 50 events/s ({len(latencies)} events, 200 polls and 200 sockets held): commit -> "
                    f"{name} p50 {statistics.median(latencies) * 1000:.1f} ms, "
                    f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
                )
        await asyncio.sleep(11)  # past the sync lag since the wake-up run's commits: quiet cursors, as above
        marks = await cursors(port, users)
        # A web process of its own for the held polls, with /metrics on (the throughput runs had it off).
        held_port = free_port()
        held_server = start(
            [sys.executable, "-m", "server", "serve", "--port", str(held_port)], {**env, "METRICS_TOKEN": METRICS_TOKEN}
        )
        try:
            await wait_up(held_port)
            per_poll, before, after, count, answered = await held_memory(
                held_port, held_server.pid, users, marks, args.held
            )
        finally:
            held_server.terminate()
            held_server.wait(40)
        print(
            f"\nheld long-polls: {args.held} sent, {count} held by the server's own gauge, {answered} answered early; "
            f"web process RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, {per_poll:.1f} KiB per held poll"
        )
        print(f"\nload average: {os.getloadavg()}")
    finally:
        server.terminate()
        floor_server.terminate()
        server.wait(40)
        floor_server.wait(40)


if __name__ == "__main__":
    asyncio.run(main())
