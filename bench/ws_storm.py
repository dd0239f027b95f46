"""`bench/ws_push.py storm`: a reconnect storm against the project and a bare Tornado websocket server.

Run through ws_push.py (see its docstring). Also `python bench/ws_storm.py bare PORT SECRET`: the
bare reference server, started by the benchmark itself.
"""

import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tornado.web  # noqa: E402
import tornado.websocket  # noqa: E402
import webhooks as wh  # noqa: E402 (the benches' shared process helpers)
from pages import cpu_seconds, wait_healthy  # noqa: E402
from tornado.httpclient import AsyncHTTPClient, HTTPClient  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef-0123456"
USERS = 200


# ---------------------------------------------------------------- the bare reference server


class BareSocket(tornado.websocket.WebSocketHandler):
    """The same protocol with nothing behind it: the JWT checked with the project's own decode,
    the socket registered by user, `ready` answered; no database, no thread pool."""

    sockets = defaultdict(dict)

    def check_origin(self, origin):
        return True

    def open(self):
        self.user_id = None

    def on_message(self, raw):
        from models.foundation import tokens

        message = json.loads(raw)
        if message.get("type") == "auth" and self.user_id is None:
            claims = tokens.decode(self.application.settings["config"], message.get("token", ""), tokens.ACCESS)
            if claims is None:
                return self.close(4001, "invalid or expired token")
            self.user_id = int(claims["sub"])
            self.sockets[self.user_id][self] = None
            self.write_message(json.dumps({"type": "ready", "unread_count": 0}))

    def on_close(self):
        if self.user_id is not None:
            self.sockets[self.user_id].pop(self, None)


class BarePush(tornado.web.RequestHandler):
    def post(self, user_id):
        message = json.dumps({"type": "unread_count", "count": 0})
        for socket in list(BareSocket.sockets.get(int(user_id), ())):
            socket.write_message(message)
        self.finish({"updated": 0, "count": 0})


class BareHealth(tornado.web.RequestHandler):
    def get(self):
        self.finish("ok")


def serve_bare(port, secret):
    class Config:
        secret_key = secret

    async def serve():
        app = tornado.web.Application(
            [(r"/ws/", BareSocket), (r"/push/(\d+)", BarePush), (r"/healthz", BareHealth)], config=Config
        )
        app.listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


# ---------------------------------------------------------------- the benchmark


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (the servers) inherit it
    return hard


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


async def open_sockets(port, tokens, count, concurrency):
    """`count` sockets, tokens round-robin, `concurrency` handshakes in flight. Returns the sockets
    (with their user index), the wall time, per-open latencies (ms) and failures."""
    gate = asyncio.Semaphore(concurrency)
    opened, latencies, failures = [], [], []

    async def one(i):
        async with gate:
            started = time.perf_counter()
            try:
                ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/", connect_timeout=30)
                await ws.write_message(json.dumps({"type": "auth", "token": tokens[i % len(tokens)]}))
                message = await ws.read_message()
                if message is None or json.loads(message).get("type") != "ready":
                    failures.append(message)
                    return
            except Exception as exc:  # any failure is counted and reported
                failures.append(repr(exc))
                return
            latencies.append((time.perf_counter() - started) * 1000)
            opened.append((i % len(tokens), ws))

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return opened, time.perf_counter() - started, latencies, failures


async def push_to_all(sockets, users, fire):
    """Fire one push request per user at once; the time until every socket has its message."""

    async def receive(ws):
        while True:
            message = await ws.read_message()
            if message is None or json.loads(message).get("type") == "unread_count":
                return time.perf_counter()

    readers = [asyncio.ensure_future(receive(ws)) for _, ws in sockets]
    await asyncio.sleep(0.2)  # the readers are waiting before the first push leaves
    started = time.perf_counter()
    await asyncio.gather(*(fire(u) for u in users))
    arrivals = await asyncio.gather(*readers)
    return [(t - started) * 1000 for t in arrivals]


PUSH_PASSES = 5


def measure(name, port, pid, tokens, count, concurrency, fire, users, after_opens=None):
    async def go():
        rss_before, cpu_before = rss_kib(pid), cpu_seconds(pid)
        sockets, wall, latencies, failures = await open_sockets(port, tokens, count, concurrency)
        cpu = cpu_seconds(pid) - cpu_before
        if after_opens:
            after_opens()
        await asyncio.sleep(1)
        rss_after = rss_kib(pid)
        push_ms = await push_to_all(sockets, users, fire)
        # A single pass of either server varies by 2x from run to run: the median pass of several.
        passes = [await push_to_all(sockets, users, fire) for _ in range(PUSH_PASSES)]
        push_ms_2 = sorted(passes, key=max)[len(passes) // 2]
        for _, ws in sockets:
            ws.close()
        return {
            "name": name,
            "opened": len(sockets),
            "wall": wall,
            "rate": len(sockets) / wall,
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "failures": failures,
            "kib_per_socket": (rss_after - rss_before) / max(len(sockets), 1),
            "rss_mib": rss_after / 1024,
            "cpu": cpu,
            "push_all": max(push_ms_2),
            "push_p50": statistics.median(push_ms_2),
            "push_all_first": max(push_ms),
            "push_all_passes": sorted(max(p) for p in passes),
        }

    return asyncio.run(go())


def report(row):
    per_open = row["cpu"] * 1000 / max(row["opened"], 1)
    print(
        f"{row['name']:8} {row['opened']:6d} sockets in {row['wall']:6.2f}s = {row['rate']:6.0f} opens/s "
        f"(handshake p50 {row['p50']:6.1f} ms, p99 {row['p99']:7.1f} ms; server CPU {per_open:.2f} ms/open, "
        f"i.e. {1000 / max(per_open, 0.001):.0f} opens per CPU-second)  "
        f"RSS {row['rss_mib']:6.1f} MiB, {row['kib_per_socket']:5.1f} KiB/socket  "
        f"push to all: {row['push_all']:7.1f} ms (the median of {PUSH_PASSES} passes; "
        f"its p50 {row['push_p50']:6.1f}; "
        f"passes {', '.join(f'{ms:.0f}' for ms in row['push_all_passes'])}; first pass {row['push_all_first']:.1f})"
    )
    if row["failures"]:
        print(f"         {len(row['failures'])} failed opens, e.g. {row['failures'][:3]}")


def run(args):
    import seed as bench_seed

    count = args.sockets or (2000 if args.quick else 10000)
    hard = raise_nofile()
    print(
        f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores); "
        f"RLIMIT_NOFILE raised to {hard}"
    )
    if hard < count + 1000:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} sockets")
    if not args.skip_seed:
        summary = bench_seed.prepare(args.database_url)
        print(f"seeded in {summary['seconds']:.1f}s")
    env = {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": "",
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "BCRYPT_ROUNDS": "4",
        **bench_seed.NO_RATE_LIMITS,
        "ACCESS_TOKEN_MINUTES": "120",
        "EMAIL_HOST": "",
        "WS_MAX_SOCKETS_PER_USER": str(count),
    }
    port, bare_port = args.port, args.port + 1
    procs = []
    try:
        web = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port)], env=env, cwd=args.project or ROOT
        )
        procs.append(web)
        bare = subprocess.Popen([sys.executable, str(Path(__file__)), "bare", str(bare_port), SECRET], cwd=ROOT)
        procs.append(bare)
        wait_healthy(f"http://127.0.0.1:{port}/healthz", web)
        wait_healthy(f"http://127.0.0.1:{bare_port}/healthz", bare)

        def login(i):
            body = json.dumps({"email": f"client{i}@bench.ng", "password": bench_seed.PASSWORD})
            response = HTTPClient().fetch(f"http://127.0.0.1:{port}/api/auth/login/", method="POST", body=body)
            return json.loads(response.body)["access"]

        tokens = [login(i) for i in range(USERS)]

        def http():
            return AsyncHTTPClient(max_clients=USERS)  # one per event loop (each asyncio.run has its own)

        async def fire_project(u):
            await http().fetch(
                f"http://127.0.0.1:{port}/api/notifications/read-all/",
                method="POST",
                body="",
                headers={"Authorization": f"Bearer {tokens[u]}"},
                request_timeout=120,
            )

        async def fire_bare(u):
            import jwt

            user_id = jwt.decode(tokens[u], options={"verify_signature": False})["sub"]
            await http().fetch(
                f"http://127.0.0.1:{bare_port}/push/{user_id}", method="POST", body="", request_timeout=120
            )

        users = range(USERS)

        # Read-all once beforehand: the measured pushes then cost no UPDATE of 100,000 rows.
        async def read_all():
            await asyncio.gather(*(fire_project(u) for u in users))

        asyncio.run(read_all())
        rows = [measure("bare", bare_port, bare.pid, tokens, count, args.concurrency, fire_bare, users)]
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "-p",
                    str(web.pid),
                    "-o",
                    args.py_spy,
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-r",
                    "200",
                    *(["--gil"] if args.gil else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        def stop_spy():  # the profile covers the opens only, not the pushes after them
            if spy:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(30)

        rows.append(
            measure(
                "project", port, web.pid, tokens, count, args.concurrency, fire_project, users, after_opens=stop_spy
            )
        )
        print(
            f"\n{count} sockets over {USERS} users, {args.concurrency} handshakes in flight, client and servers "
            f"on the same machine"
        )
        for row in rows:
            report(row)
        ref, project = rows
        print(
            f"\nproject / bare: opens/s x{project['rate'] / ref['rate']:.2f} (server CPU per open "
            f"x{project['cpu'] / project['opened'] / (ref['cpu'] / ref['opened']):.2f}), memory per socket "
            f"x{project['kib_per_socket'] / max(ref['kib_per_socket'], 0.001):.2f}, push to all "
            f"x{project['push_all'] / ref['push_all']:.2f}"
        )
        print("targets: >= 1,000 opens/s per web process; <= 20 KB per socket at 10,000; push to all <= 1.5x bare")
        print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        wh.stop(procs)


if __name__ == "__main__" and sys.argv[1:2] == ["bare"]:
    serve_bare(int(sys.argv[2]), sys.argv[3])
