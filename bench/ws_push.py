"""Benchmark: websockets. Two modes.

`latency` (the default): websocket push latency and web-process memory with many sockets (embedded
mode). Starts `python -m server serve` on a temporary SQLite database, connects SOCKETS websockets
spread over CLIENTS users, then has each client book a service and measures the time from the booking
request to the push arriving on every one of that client's sockets.

    .venv/bin/python bench/ws_push.py [latency] [--clients 50] [--sockets 1000]

`storm`: a reconnect storm, the project against a bare Tornado server speaking the same protocol
(first message `{"type": "auth", "token": ...}` checked as a JWT, answered `{"type": "ready", ...}`,
no database), in one sitting. On the shared bench data (bench/seed.py, PostgreSQL), with access
tokens from 200 real logins: opens SOCKETS authenticated sockets with CONCURRENCY handshakes in
flight (opens/s, handshake p50/p99), the server's RSS per socket with all of them open, then pushes
to all of them: every user calls `POST /api/notifications/read-all/` at once (the project pushes
the new unread count to each of that user's sockets; the bare server's `/push/<user>` does the
same) and the time until every socket has its message. Prints the ratios and the machine's load.

    .venv/bin/python bench/ws_push.py storm [--quick] [--sockets 10000] [--concurrency 200] [--skip-seed]

Prints numbers; asserts nothing.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from seed import NO_RATE_LIMITS  # bench/seed.py, beside this script
from tornado.httpclient import AsyncHTTPClient, HTTPClient
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port, db):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "BCRYPT_ROUNDS": "4",
        **NO_RATE_LIMITS,
        "ENV": "development",
    }

    def run(*args):
        subprocess.run(
            [sys.executable, "-m", "server", *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )

    run("migrate")
    run("seed")
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", str(port)], env=env, cwd=ROOT)
    for _ in range(200):
        try:
            HTTPClient().fetch(f"http://127.0.0.1:{port}/healthz")
            return server
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


async def main(clients, sockets, port):
    base, http = f"http://127.0.0.1:{port}", AsyncHTTPClient(max_clients=50)

    async def post(path, body, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.fetch(base + path, method="POST", body=json.dumps(body), headers=headers)
        return json.loads(response.body)

    tokens = []
    for i in range(clients):
        result = await post(
            "/api/auth/register/",
            {
                "email": f"bench{i}@example.ng",
                "password": PASSWORD,
                "first_name": "B",
                "last_name": str(i),
                "phone": "+2348000000000",
                "role": "client",
            },
        )
        tokens.append(result["access"])
    per_client = max(1, sockets // clients)
    rss_before = rss_mib(SERVER.pid)
    conns = {}
    for i, token in enumerate(tokens):
        conns[i] = []
        for _ in range(per_client):
            ws = await websocket_connect(f"ws://127.0.0.1:{port}/ws/")
            await ws.write_message(json.dumps({"type": "auth", "token": token}))
            await ws.read_message()
            conns[i].append(ws)
    total = sum(len(v) for v in conns.values())
    rss_after = rss_mib(SERVER.pid)

    async def one(i):
        started = time.perf_counter()
        await post(
            "/api/requests/",
            {
                "category_id": 1,
                "booking_date": str(date.today() + timedelta(days=5)),
                "address": "1 Bench Road",
                "description": "benchmark",
            },
            tokens[i],
        )

        async def first_notification(ws):
            while json.loads(await ws.read_message())["type"] != "notification":
                pass

        await asyncio.gather(*(first_notification(ws) for ws in conns[i]))
        return time.perf_counter() - started

    wall = time.perf_counter()
    latencies = sorted(await asyncio.gather(*(one(i) for i in range(clients))))
    wall = time.perf_counter() - wall
    ms = [x * 1000 for x in latencies]
    print(f"sockets connected            {total} ({per_client} per client, {clients} clients)")
    print(
        f"web RSS before/after sockets {rss_before:.1f} MiB / {rss_after:.1f} MiB "
        f"({(rss_after - rss_before) * 1024 / max(total, 1):.1f} KiB per socket)"
    )
    print(f"booking -> push on all sockets, {clients} concurrent bookings in {wall:.2f}s")
    print(f"  p50 {statistics.median(ms):.1f} ms  p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms  max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=["latency", "storm"], default="latency")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=None, help="latency: 1000; storm: 10000")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--concurrency", type=int, default=200, help="storm: handshakes in flight")
    parser.add_argument("--quick", action="store_true", help="storm: 2,000 sockets")
    parser.add_argument("--skip-seed", action="store_true", help="storm: reuse the bench data already there")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_pages")
    parser.add_argument("--project", help="storm: serve from this checkout (an earlier commit) instead")
    parser.add_argument("--py-spy", metavar="OUT.txt", help="storm: profile the project's opens (collapsed stacks)")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --py-spy: only samples holding the GIL (where the CPU goes, not the waits)",
    )
    args = parser.parse_args()
    if args.mode == "storm":
        import ws_storm

        ws_storm.run(args)
        sys.exit(0)
    args.sockets = args.sockets or 1000
    with tempfile.TemporaryDirectory() as tmp:
        SERVER = start_server(args.port, Path(tmp) / "bench.sqlite3")
        try:
            asyncio.run(main(args.clients, args.sockets, args.port))
        finally:
            SERVER.terminate()
            SERVER.wait(10)
