"""Benchmark: the public servicemen page and the busy lists at 64 connections, against a bare Tornado.

Seeds the shared bench data (bench/seed.py: 10,000 approved servicemen in 50 categories, 20,000
bookings, 100,000 notifications) into its own PostgreSQL database, starts ONE web process
(`python -m server serve`, embedded mode, no Redis) and, in the same sitting, a bare Tornado JSON
handler (a subprocess of this script) that answers the very bytes of the servicemen page without a
database. Each page is then loaded with `wrk` (closed loop, keep-alive, 64 connections, 2 threads):

- `GET /api/categories/{id}/servicemen/`        anyone (the issue's page)
- the same page over 500 URLs                   every category's first five pages in both orders
- `GET /api/requests/`                          as the admin (all 20,000 bookings)
- `GET /api/requests/`                          as a client (their 100)
- `GET /api/notifications/`                     as a client (their 500)

and prints requests/s, p50/p99, the ratio to the bare handler and to the Django REST framework +
gunicorn build's recorded figure for the servicemen page (~95 requests/s on this machine; it cannot
run here), the CPU the web process and PostgreSQL used, and the machine's load.

    .venv/bin/python bench/pages.py [--quick] [--seconds 15] [--connections 64] [--skip-seed]
        [--py-spy stacks.txt PAGE] [--database-url ...]

Needs PostgreSQL at 127.0.0.1:5432 (trust auth) and `wrk` (`apt-get install wrk`). Empties and
refills the database it is given (default bench_pages). Asserts nothing about speed.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import seed as bench_seed  # noqa: E402
import tornado.web  # noqa: E402
import webhooks as wh  # noqa: E402 (the benches' shared process helpers)
from tornado.httpclient import HTTPClient, HTTPClientError  # noqa: E402

DJANGO_SERVICEMEN_RPS = 95  # the figure for the DRF + gunicorn build of the servicemen page
TARGET_RPS = 4 * DJANGO_SERVICEMEN_RPS


class BareJson(tornado.web.RequestHandler):
    """The least a JSON page can cost in Tornado: answer prepared bytes."""

    def initialize(self, body):
        self.body = body

    def get(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(self.body)


def serve_reference(port, body_file):
    body = Path(body_file).read_bytes()

    async def serve():
        app = tornado.web.Application([(r"/.*", BareJson, {"body": body})])
        app.listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


def cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def postgres_pids(database_name):
    """The backends of the bench database (the web process's pool holds its connections)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database_name,))
        pids = [row[0] for row in cur.fetchall()]
    conn.close()
    return pids


def wait_healthy(url, proc):
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            HTTPClient().fetch(url, request_timeout=1)
            return
        except HTTPClientError:
            return  # it answers (a 404 from the reference is fine)
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def fetch_json(url, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = HTTPClient().fetch(
        url,
        method="POST" if body else "GET",
        headers=headers,
        body=json.dumps(body) if body else None,
        request_timeout=60,
    )
    return response.body


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * UNITS[unit]


WRK_PATHS = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def wrk_paths_script(paths, directory):
    """A wrk script that cycles through `paths` (each thread from the first)."""
    script = Path(directory) / f"paths-{len(paths)}.lua"
    script.write_text(WRK_PATHS % ", ".join(json.dumps(p) for p in paths))
    return script


def run_wrk(url, seconds, connections, token=None, script=None):
    """wrk's requests/s, p50, p99 (ms), non-2xx count and socket errors."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    if script:
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1).strip() if errors else "",
    }


def load_line():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=bench_seed.DATABASE_URL)
    parser.add_argument("--seconds", type=int, default=15, help="per page and per server")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="5 s per measurement, 1 s warm-up")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the data of an earlier run")
    parser.add_argument("--only", help="measure only pages whose name contains this")
    parser.add_argument(
        "--py-spy",
        nargs=2,
        metavar=("OUT.txt", "PAGE"),
        help="py-spy the web process (collapsed stacks) while PAGE (a name substring) runs",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --py-spy: only samples holding the GIL (where the CPU goes, not the waits)",
    )
    parser.add_argument("--listing-cache-seconds", help="LISTING_CACHE_SECONDS of the web process (0: no cache)")
    parser.add_argument("--pool-size", type=int, default=None, help="DB_POOL_SIZE of the web process")
    parser.add_argument(
        "--project",
        default=str(ROOT),
        help="serve from this checkout instead (e.g. `git worktree`/`git archive` of an earlier "
        "commit) to compare in one sitting; the data is seeded by this one",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 5, 1
    if shutil.which("wrk") is None:
        sys.exit("bench/pages.py needs wrk (apt-get install wrk)")

    print(f"load before: {load_line()} ({os.cpu_count()} cores)")
    if args.skip_seed:
        import models

        models.bind(args.database_url)
    else:
        summary = bench_seed.prepare(args.database_url)
        print(
            f"seeded in {summary['seconds']:.1f}s: {summary['servicemen']} servicemen, {summary['bookings']} "
            f"bookings, {summary['notifications']} notifications"
        )
    from models import Category

    category_ids = [c.id for c in Category.select(Category.id).order_by(Category.id)]
    category_id = category_ids[0]
    # Every category's first five pages in both orders: a page is rebuilt once per key per expiry.
    spread = [
        f"/api/categories/{c}/servicemen/?ordering={o}&page={p}"
        for p in range(1, 6)
        for o in ("-rating", "-jobs_completed")
        for c in category_ids
    ]

    port, ref_port = wh.free_port(), wh.free_port()
    env = {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": "",
        "SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456",
        "LOG_LEVEL": "WARNING",
        "BCRYPT_ROUNDS": "4",
        **bench_seed.NO_RATE_LIMITS,
        "ACCESS_TOKEN_MINUTES": "120",
        "EMAIL_HOST": "",
    }
    if args.pool_size:
        env["DB_POOL_SIZE"] = str(args.pool_size)
    if args.listing_cache_seconds is not None:
        env["LISTING_CACHE_SECONDS"] = args.listing_cache_seconds
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            web = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--port", str(port)], env=env, cwd=args.project
            )
            procs.append(web)
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base + "/healthz", web)

            def login(email):
                body = fetch_json(base + "/api/auth/login/", body={"email": email, "password": bench_seed.PASSWORD})
                return json.loads(body)["access"]

            admin, client = login("admin@bench.ng"), login("client0@bench.ng")
            pages = [
                ("servicemen page", f"/api/categories/{category_id}/servicemen/", None),
                (f"servicemen, {len(spread)} URLs", spread, None),
                ("bookings, admin", "/api/requests/", admin),
                ("bookings, client", "/api/requests/", client),
                ("notifications, client", "/api/notifications/", client),
            ]
            if args.only:
                pages = [p for p in pages if args.only in p[0]]
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(fetch_json(base + pages[0][1], pages[0][2]))
            ref = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; sys.path.insert(0, 'bench'); import pages; "
                    f"pages.serve_reference({ref_port}, {str(body_file)!r})",
                ],
                cwd=ROOT,
            )
            procs.append(ref)
            wait_healthy(f"http://127.0.0.1:{ref_port}/", ref)

            run_wrk(f"http://127.0.0.1:{ref_port}/", args.warmup, args.connections)
            reference = run_wrk(f"http://127.0.0.1:{ref_port}/", args.seconds, args.connections)
            print(
                f"\nbare Tornado JSON handler ({body_file.stat().st_size} bytes, the servicemen page's body): "
                f"{reference['rps']:.0f} req/s, p50 {reference['p50']:.1f} ms, p99 {reference['p99']:.1f} ms"
            )
            print(
                f"\n{'page':24} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} {'x Django':>8} "
                f"{'web CPU':>8} {'pg CPU':>7} {'errors':>6}  load after"
            )
            db_name = args.database_url.rsplit("/", 1)[1]
            for name, path, token in pages:
                script = None
                if isinstance(path, list):
                    script, path = wrk_paths_script(path, tmp), path[0]
                url = base + path
                fetch_json(url, token)  # fails loudly on a non-2xx before measuring
                run_wrk(url, args.warmup, args.connections, token, script)
                pg = {pid: cpu_seconds(pid) for pid in postgres_pids(db_name)}
                web_cpu = cpu_seconds(web.pid)
                spy = None
                if args.py_spy and args.py_spy[1] in name:
                    spy = subprocess.Popen(
                        [
                            str(Path(sys.executable).with_name("py-spy")),
                            "record",
                            "-p",
                            str(web.pid),
                            "-o",
                            args.py_spy[0],
                            "-d",
                            str(args.seconds),
                            "--nonblocking",
                            "-r",
                            "200",
                            "--format",
                            "raw",
                            *(["--gil"] if args.gil else []),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                result = run_wrk(url, args.seconds, args.connections, token, script)
                web_cpu = cpu_seconds(web.pid) - web_cpu
                pg_cpu = sum(cpu_seconds(pid) - before for pid, before in pg.items())
                if spy:
                    spy.wait(30)
                bad = result["non2xx"] + (1 if result["errors"] else 0)
                print(
                    f"{name:24} {result['rps']:7.0f} {result['p50']:8.1f} {result['p99']:8.1f} "
                    f"{result['rps'] / reference['rps']:7.2f} {result['rps'] / DJANGO_SERVICEMEN_RPS:8.2f} "
                    f"{web_cpu / args.seconds:7.0%} {pg_cpu / args.seconds:6.0%} {bad:>6}  {load_line()}"
                )
                if result["errors"] or result["non2xx"]:
                    print(f"    non-2xx {result['non2xx']}, socket errors: {result['errors'] or 'none'}")
            print(
                f"\nDjango REST framework + gunicorn, servicemen page (recorded, cannot run here): "
                f"~{DJANGO_SERVICEMEN_RPS} req/s; target >= {TARGET_RPS} req/s and >= 25% of the bare handler, "
                f"p99 < 250 ms"
            )
            print("CPU columns: share of one core over the measurement; load after: 1/5/15-minute load average")
        finally:
            wh.stop(procs)


if __name__ == "__main__":
    main()
