"""Metrics, logs and error reports of real processes (`python -m server serve|dispatcher|worker|cron`),
as a deployment runs them: one PROMETHEUS_MULTIPROC_DIR, LOG_FORMAT=json, Sentry posting to an ingest
stand-in. The suite's database (SQLite or PostgreSQL) and Redis are theirs."""

import json
import time

import pytest
import redis as redis_client
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Retry

from workers.transport import QUEUE, STREAM

from .fault_support import Procfile, http_call, process_env, wait_until
from .pipeline_support import free_port
from .sentry_support import SentryIngest, dying_job, failing_job

TOKEN = "metrics-token-for-the-tests-0123456789"
RELEASE = "observability-test-release"


@pytest.fixture
def ingest():
    server = SentryIngest().start()
    yield server
    server.stop()


@pytest.fixture
def deployment(settings, redis_url, ingest, tmp_path):
    """(procfile, base url): web, dispatcher, worker and cron sharing a multiprocess metrics directory."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = process_env(
        settings.database_url,
        redis_url,
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        LOG_FORMAT="json",
        SENTRY_DSN=ingest.dsn("publickey"),
        SENTRY_RELEASE=RELEASE,
        TRUSTED_PROXIES="127.0.0.1",
        DB_POOL_SIZE="2",
    )
    processes = Procfile(env, tmp_path)
    processes.start("web", "serve", "--port", str(port))
    for kind in ("dispatcher", "worker", "cron"):
        processes.start(kind, kind)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _status(f"{base}/livez") == 200, what="the web process")
    try:
        yield processes, base
    finally:
        processes.stop_all()


def _status(url):
    try:
        return http_call("GET", url, timeout=2)[0]
    except OSError:
        return None


def scrape(base, token=TOKEN):
    """{(name, frozenset(labels)): value} of one scrape, parsed by prometheus_client's own parser."""
    import urllib.request

    request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return sum(v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found))


def json_lines(text):
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_every_process_kind_is_measured_logged_and_reported(deployment, settings, redis_url, ingest, category):
    processes, base = deployment
    wait_until(
        lambda: all(
            value(scrape(base), "serviceman_processes", process=kind) == 1
            for kind in ("web", "dispatcher", "worker", "cron")
        ),
        what="every process kind in /metrics",
    )

    # A request behind the trusted proxy, with its id: a serviceman applies (an event for the admins,
    # delivered by the dispatcher and the worker) and is sent a verification email (a job).
    applicant = {
        "email": "obs-applicant@example.com",
        "password": "Sturdy-Pass-2027",
        "first_name": "Ola",
        "last_name": "Ade",
        "phone": "+2348031112222",
        "role": "serviceman",
    }
    status, _ = http_call(
        "POST",
        f"{base}/api/auth/register/",
        {**applicant, "category_ids": [category.id]},
        headers={"X-Request-ID": "obs-req-1", "X-Forwarded-For": "203.0.113.9"},
    )
    assert status == 201

    samples = wait_until(
        lambda: (
            lambda s: (
                s
                if value(s, "serviceman_job_duration_seconds_count", job="email_verification_link", outcome="ok") >= 1
                and value(s, "serviceman_job_duration_seconds_count", job="deliver_events") >= 1
                else None
            )
        )(scrape(base)),
        what="the jobs in /metrics",
    )
    assert (
        value(samples, "serviceman_http_requests_total", method="POST", route="/api/auth/register/", status="201") == 1
    )
    assert value(samples, "serviceman_http_request_duration_seconds_count", route="/api/auth/register/") == 1
    assert value(samples, "serviceman_outbox_events_waiting") == 0
    assert value(samples, "serviceman_state_up", source="redis") == 1
    assert ("serviceman_stream_events_waiting", frozenset()) in samples
    if settings.database_url.startswith("postgres"):  # SQLite has no pool
        assert value(samples, "serviceman_db_pool_max_connections", process="web") == 2
        assert value(samples, "serviceman_db_pool_connections", process="web", state="in_use") >= 1  # the scrape's

    # The access log: JSON, the request id, the client as the proxy reported it, never the body.
    web = json_lines(processes.log("web"))
    access = [line for line in web if line["logger"] == "tornado.access" and line.get("route") == "/api/auth/register/"]
    assert len(access) == 1
    assert access[0]["request_id"] == "obs-req-1" and access[0]["status"] == 201
    assert access[0]["client_ip"] == "203.0.113.9" and access[0]["duration_s"] > 0
    assert {"time", "level", "message", "user_id"} <= set(access[0])
    # The worker's lines of those jobs name the request that caused them.
    worker_lines = json_lines(processes.log("worker"))
    assert any(line.get("request_id") == "obs-req-1" and "deliver_events" in line["message"] for line in worker_lines)
    assert any(
        line.get("request_id") == "obs-req-1" and "email_verification_link" in line["message"] for line in worker_lines
    )
    for name in ("web", "dispatcher", "worker", "cron"):
        assert "Sturdy-Pass-2027" not in processes.log(name)

    # A job failing twice (one retry): both attempts counted, one report of that failure kind.
    Queue(QUEUE, connection=redis_client.Redis.from_url(redis_url)).enqueue(failing_job, retry=Retry(max=1))
    samples = wait_until(
        lambda: (lambda s: s if value(s, "serviceman_job_failures_total", job="failing_job") == 2 else None)(
            scrape(base)
        ),
        what="two failed attempts",
    )
    events = ingest.wait_for_events(lambda found: any(_is_job_failure(event) for event in found))
    reports = [event for event in events if _is_job_failure(event)]
    assert len(reports) == 1
    assert reports[0]["tags"]["process"] == "worker" and reports[0]["tags"]["job"] == "failing_job"
    assert reports[0]["release"] == RELEASE


def _is_job_failure(event):
    return any(found.get("type") == "JobFailure" for found in event.get("exception", {}).get("values", []))


def test_metrics_need_the_token(deployment):
    _processes, base = deployment
    assert http_call("GET", f"{base}/metrics")[0] == 401
    assert http_call("GET", f"{base}/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_a_dispatcher_failing_every_turn_is_reported_once(deployment, redis_url, ingest):
    processes, _base = deployment
    client = redis_client.Redis.from_url(redis_url)
    wait_until(lambda: client.exists(STREAM) and client.xinfo_groups(STREAM), what="the dispatcher's group")
    # The stream replaced by a key of another type: every turn of the dispatcher's loop fails.
    client.delete(STREAM)
    client.set(STREAM, b"not a stream")
    wait_until(
        lambda: processes.log("dispatcher").count("dispatcher loop error") >= 4, timeout=20, what="four failed turns"
    )
    events = ingest.wait_for_events(lambda found: any(_is_dispatcher_error(event) for event in found))
    time.sleep(0.5)  # anything a later turn sent would have arrived by now (each turn waits a second)
    reports = [event for event in ingest.events() if _is_dispatcher_error(event)]
    assert len(reports) == 1, [event.get("tags") for event in events]
    assert reports[0]["tags"]["process"] == "dispatcher" and reports[0]["release"] == RELEASE
    client.delete(STREAM)


def _is_dispatcher_error(event):
    return event.get("logger") == "serviceman.dispatcher" or (event.get("tags") or {}).get("process") == "dispatcher"


def test_a_work_horse_that_dies_is_reported(settings, redis_url, ingest, tmp_path):
    """`worker --fork`: a job's process killed mid-job raises nothing, yet is one report and a failure."""
    env = process_env(
        settings.database_url, redis_url, SENTRY_DSN=ingest.dsn("publickey"), SENTRY_RELEASE=RELEASE, LOG_FORMAT="json"
    )
    processes = Procfile(env, tmp_path)
    try:
        processes.start("worker", "worker", "--fork")
        Queue(QUEUE, connection=redis_client.Redis.from_url(redis_url)).enqueue(dying_job)
        events = ingest.wait_for_events(
            lambda found: any(
                "dying_job" in (event.get("message") or "") or "dying_job" in json.dumps(event.get("logentry"))
                for event in found
            ),
            timeout=30,
        )
    finally:
        processes.stop_all()
    reports = [event for event in events if (event.get("tags") or {}).get("job") == "dying_job"]
    assert len(reports) == 1 and reports[0]["tags"]["process"] == "worker"
