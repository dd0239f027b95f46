"""Liveness, readiness and health of a real `serve` process while its own PostgreSQL and Redis stop
and start again: 503 (never 500) within a fraction of a second when the database is down, readiness
kept while only Redis is down, 200 again once each is back."""

import time

import pytest

from .fault_support import http_call, process_env, wait_until
from .pipeline_support import free_port

pytestmark = pytest.mark.faults

FAST = 1.0  # seconds: a probe answers within this even while a dependency is down


def probe(base, path):
    started = time.monotonic()
    status, body = http_call("GET", f"{base}{path}", timeout=5)
    return status, body, time.monotonic() - started


def probes(base):
    return {path: probe(base, path) for path in ("/livez", "/readyz", "/healthz")}


def answers(base, path, status):
    try:
        return probe(base, path)[0] == status
    except OSError:
        return False


def test_probes_follow_the_database_and_redis_going_down_and_back(private_postgres, private_redis, procfile):
    port = free_port()
    procfile.start("web", "serve", "--port", str(port), env=process_env(private_postgres.url, private_redis.url))
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(base, "/healthz", 200), timeout=30, what="the web process to be healthy")
    up = {"status": "ok", "database": "ok", "redis": "ok"}
    assert {path: result[:2] for path, result in probes(base).items()} == {
        "/livez": (200, {"status": "ok"}),
        "/readyz": (200, up),
        "/healthz": (200, up),
    }

    # When PostgreSQL stops: not ready, not healthy, at once; still alive.
    private_postgres.stop()
    down = {"status": "unavailable", "database": "unavailable", "redis": "ok"}
    results = probes(base)
    assert {path: result[:2] for path, result in results.items()} == {
        "/livez": (200, {"status": "ok"}),
        "/readyz": (503, down),
        "/healthz": (503, down),
    }, procfile.log("web")
    slowest = max(seconds for _, _, seconds in results.values())
    assert slowest < FAST, f"a probe took {slowest:.3f}s with the database down"

    # When it is back: ready and healthy again.
    private_postgres.start()
    started = time.monotonic()
    wait_until(
        lambda: answers(base, "/readyz", 200) and answers(base, "/healthz", 200),
        timeout=10,
        what="ready again after PostgreSQL started",
    )
    print(f"ready {time.monotonic() - started:.3f}s after PostgreSQL started; slowest probe while down {slowest:.3f}s")

    # When only Redis stops: still ready (the web process serves without it), Redis reported down;
    # /healthz names it with a 503.
    private_redis.stop()
    redis_down = {"status": "ok", "database": "ok", "redis": "unavailable"}
    results = probes(base)
    assert results["/readyz"][:2] == (200, redis_down)
    assert results["/healthz"][:2] == (503, {**redis_down, "status": "unavailable"})
    assert results["/livez"][0] == 200
    assert max(seconds for _, _, seconds in results.values()) < FAST
    private_redis.start()
    wait_until(lambda: answers(base, "/healthz", 200), timeout=10, what="healthy again after Redis started")
