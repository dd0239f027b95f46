"""Benchmark: what recording metrics costs a request (issue 25).

Starts two web processes (`python -m server serve`, embedded mode, one SQLite database) in the same
sitting: one with METRICS_TOKEN and PROMETHEUS_MULTIPROC_DIR (metrics recorded to files, as in
production), one without (nothing recorded). Each page is requested N times over one keep-alive
connection, alternating the two processes for several rounds, and the web process's own CPU time
per request is compared (the client's speed does not enter into it; wall-clock figures on a shared
machine would mostly measure the neighbours):

- `GET /livez`                      no I/O: the request path alone, where the overhead is largest
- `GET /api/categories/`            a database read, a typical small API answer

    .venv/bin/python bench/metrics_overhead.py [--requests 3000] [--rounds 4]

Prints the CPU microseconds per request with metrics off and on, their ratio and difference, and
the cost of the recording call alone (timed in a loop: the difference above is within the noise).
Asserts nothing about speed.
"""

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import webhooks as wh  # noqa: E402 (the benches' shared process helpers)

PAGES = ("/livez", "/api/categories/")


def start(name, database_url, folder, metrics):
    port = wh.free_port()
    env = {**wh.project_env(database_url, ""), "LOG_LEVEL": "WARNING", "METRICS_TOKEN": ""}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if metrics:
        metrics_dir = folder / "metrics"
        metrics_dir.mkdir(exist_ok=True)
        env.update(METRICS_TOKEN="bench-metrics-token-0123456789abcdef", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    proc = wh.spawn(["-m", "server", "serve", "--port", str(port)], env, folder, name)
    wh.wait_healthy(port, proc, name)
    return proc, port


def load(port, path, count):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(count):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
    connection.close()


def cpu_per_request(proc, port, path, count):
    load(port, path, 200)  # warm-up: imports, caches, the first connection of the pool
    before = wh.cpu_seconds(proc.pid)
    load(port, path, count)
    return (wh.cpu_seconds(proc.pid) - before) / count * 1e6  # microseconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="metrics-overhead-"))
    database_url = f"sqlite:///{folder / 'bench.sqlite3'}"
    env = wh.project_env(database_url, "")
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run([sys.executable, "-m", "server", "seed"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    off, on = start("off", database_url, folder, False), start("on", database_url, folder, True)
    try:
        print(f"{args.requests} requests a round, {args.rounds} rounds, alternating; web process CPU per request")
        for path in PAGES:
            figures = {"off": [], "on": []}
            for _ in range(args.rounds):
                for name, (proc, port) in (("off", off), ("on", on)):
                    figures[name].append(cpu_per_request(proc, port, path, args.requests))
            off_us, on_us = statistics.median(figures["off"]), statistics.median(figures["on"])
            print(
                f"{path:20} off {off_us:7.1f} µs  on {on_us:7.1f} µs  ratio {on_us / off_us:5.3f}  "
                f"(+{on_us - off_us:5.1f} µs; rounds off {[round(v) for v in figures['off']]}, "
                f"on {[round(v) for v in figures['on']]})"
            )
    finally:
        wh.stop([off[0], on[0]])
    print(f"recording alone (one request's counter and histogram, multiprocess files): {recording_cost(folder):.1f} µs")
    if os.environ.get("KEEP"):
        print(f"logs in {folder}")


RECORDING = """
import time
from models.foundation import metrics
metrics.enable("web")
started = time.perf_counter()
for _ in range(20000):
    metrics.request_answered("GET", "/api/categories/", 200, 0.003)
print((time.perf_counter() - started) / 20000 * 1e6)
"""


def recording_cost(folder):
    """What `metrics.request_answered` costs per call, measured alone (no noise from the HTTP path)."""
    metrics_dir = folder / "metrics-alone"
    metrics_dir.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", RECORDING],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    return float(done.stdout.strip())


if __name__ == "__main__":
    main()
