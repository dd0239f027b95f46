"""Real services for the pipeline tests: Redis (TEST_REDIS_URL, or a private redis-server; one speaking
TLS with a self-signed certificate, `tls_redis`),
an SMTP server on loopback (aiosmtpd), and the pipeline driven step by step."""

import email
import email.policy
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
import redis
from aiosmtpd.controller import Controller
from rq import SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

from models.db import database
from workers import runtime
from workers.dispatcher import Dispatcher
from workers.transport import RedisTransport

IMMEDIATE_RETRIES = (0, 0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, so a test can stop and restart it for real."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:  # a fresh process has no readiness event to await; poll, bounded
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Mailbox:
    """aiosmtpd handler: collects accepted messages; can refuse the next N with a 451."""

    def __init__(self):
        self.messages = []
        self.refuse_next = 0
        self.refused = 0
        self.arrived = threading.Condition()
        self.sessions = []  # one per SMTP connection that sent mail

    async def handle_DATA(self, server, session, envelope):
        if not any(s is session for s in self.sessions):
            self.sessions.append(session)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 Mailbox temporarily unavailable, try again"
        with self.arrived:
            self.messages.append(envelope)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, predicate, timeout=10):
        """Block until some accepted message satisfies `predicate`; returns it (or None on timeout).
        Run it off the test's loop (run_in_executor): the server under test shares that loop."""
        with self.arrived:
            found = self.arrived.wait_for(lambda: next((m for m in self.messages if predicate(m)), None), timeout)
        return found


class InProcessWorker(SimpleWorker):
    """SimpleWorker that may run off the main thread (no signal handlers, timer-based timeouts)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


class Pipeline:
    """Drives the Redis pipeline one stage at a time, synchronously, in this process."""

    def __init__(self, transport):
        self.transport = transport
        self.redis = transport.redis
        self.dispatcher = Dispatcher(self.redis, transport, consumer="test-dispatcher", min_idle_ms=0)

    def dispatch(self):
        return self.dispatcher.poll(block_ms=10)

    def work(self):
        """Run every queued job (and immediate retries) in this process."""
        return InProcessWorker(self.transport.queues, connection=self.redis).work(burst=True)

    def work_forked(self):
        """Run jobs the way `worker --fork` does: each in a forked work-horse process."""
        _close_db_connections()
        return Worker(self.transport.queues, connection=self.redis).work(burst=True)

    def work_in_child(self):
        """Run jobs the way `worker` does (PipelineWorker, no fork per job) in a child process, which
        a test may kill mid-job; returns the child's wait status."""
        from workers.worker import PipelineWorker

        _close_db_connections()
        pid = os.fork()
        if pid == 0:
            try:
                PipelineWorker(self.transport.queues, connection=self.redis).work(burst=True)
            finally:
                os._exit(0)
        return os.waitpid(pid, 0)[1]

    def recover_abandoned_jobs(self):
        """What the next worker's maintenance does once a dead worker's heartbeat expired."""
        from rq.registry import StartedJobRegistry

        for queue in self.transport.queues:
            StartedJobRegistry(queue=queue).cleanup(time.time() + 24 * 3600)

    def run(self):
        self.dispatch()
        self.work()


def _close_db_connections():
    db = database.obj
    if hasattr(db, "close_all"):
        db.close_all()
    else:
        db.close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    private = None
    if not url:
        if not shutil.which("redis-server"):
            pytest.skip("no TEST_REDIS_URL and no redis-server binary")
        private = PrivateRedis().start()
        url = private.url
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    if private:
        private.stop()


@pytest.fixture
def private_redis():
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary to stop and restart Redis")
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def mail_pipeline(mailbox, redis_url):
    """(settings, Pipeline): the Redis pipeline driven in this process, emails to the loopback SMTP server."""
    from .conftest import make_settings

    settings = make_settings(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false", REDIS_URL=redis_url
    )
    yield settings, use_pipeline(settings, redis_url)
    runtime.reset()


def use_pipeline(settings, url):
    transport = RedisTransport(url, retry_intervals=IMMEDIATE_RETRIES)
    runtime.configure(settings, transport)
    return Pipeline(transport)


def self_signed_certificate(folder):
    """A certificate for 127.0.0.1 (in its subjectAltName too, as clients check) signed by itself, made with
    the openssl command line: rediss:// tests, and Let's Encrypt's stand-in in front of nginx."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """The rediss:// URL of a redis-server of this module's own, TLS only, self-signed certificate."""
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary")
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = self_signed_certificate(folder)
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, ssl=True, ssl_cert_reqs="none", socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:  # a fresh process has no readiness event to await; poll, bounded
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace")
            if "tls" in output.lower():
                pytest.skip(f"this redis-server was built without TLS: {output.strip().splitlines()[-1:]}")
            raise AssertionError(output)
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    yield f"rediss://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def mail_text(envelope):
    """An email as its reader sees it: the decoded Subject, then every text part decoded (amounts are
    `₦22,000.00`, so headers and bodies are encoded, not plain ASCII)."""
    message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
    parts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join([str(message["Subject"]), *parts])
