"""Real servers and real processes for the fault tests (tests/test_faults_*.py).

- PrivatePostgres: a PostgreSQL cluster of the test's own (initdb + pg_ctl on a free loopback port,
  run as the `postgres` user when we are root), so a test can restart or stop it for real without
  touching the shared server.
- PrivateRedis (tests/pipeline_support.py) does the same for Redis.
- Procfile: the processes of the Procfile (`python -m server serve|dispatcher|worker|cron`) started as
  a deployment starts them, with logs in files, so a test can SIGKILL, SIGTERM or SIGINT them.

Every wait here polls a real server or process for a bounded time: a process has no event to await.
"""

import contextlib
import glob
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .pipeline_support import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "fault-tests-secret-key-0123456789abcdef-012345"


def postgres_bin(name):
    """The server-side PostgreSQL binary `name` (initdb, pg_ctl), or None when not installed."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_postgres(args):
    """initdb and the server refuse to run as root: run them as the postgres user instead."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    """A PostgreSQL server of this test's own: `start()`, `stop()`, `restart()`, `url`."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="serviceman-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/serviceman"
        self._initialized = False

    @staticmethod
    def available():
        return bool(postgres_bin("initdb") and postgres_bin("pg_ctl")) and (
            os.geteuid() != 0 or shutil.which("runuser") is not None
        )

    def _run(self, *args, check=True):
        return subprocess.run(
            _as_postgres(list(args)), check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60
        )

    def _init(self):
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"
        )
        self._initialized = True

    def start(self):
        if not self._initialized:
            self._init()
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        return self

    def stop(self, mode="fast"):
        """mode: smart, fast (ends every session; what a managed restart does) or immediate (a crash)."""
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def create_database(self, name="serviceman"):
        from server.startup import ensure_database

        url = f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
        ensure_database(url)
        return url

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres():
    """A private PostgreSQL cluster with a migrated `serviceman` database; removed after the test."""
    if not PrivatePostgres.available():
        pytest.skip("needs PostgreSQL's initdb and pg_ctl to restart a database of the test's own")
    server = PrivatePostgres().start()
    server.create_database()
    Procfile.run_once(["migrate"], process_env(server.url))
    yield server
    server.destroy()


def process_env(database_url, redis_url="", **overrides):
    """The environment a deployment gives the Procfile's processes (no developer .env leaks in)."""
    from models.foundation.settings import RATE_LIMIT_DEFAULTS

    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "SENTRY"))}
    env.update(
        {
            "ENV": "development",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": SECRET_KEY,
            "PAYSTACK_SECRET_KEY": "sk_test_faults",
            "PAYSTACK_PUBLIC_KEY": "pk_test_faults",
            "PAYSTACK_WEBHOOK_SECRET": "",
            "EMAIL_HOST": "",
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **{f"RATE_LIMIT_{name.upper()}": "" for name in RATE_LIMIT_DEFAULTS},
        }
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class Procfile:
    """The Procfile's processes of one test, each `python -m server <command>`, logs under `log_dir`."""

    def __init__(self, env, log_dir):
        self.env = env
        self.log_dir = Path(log_dir)
        self.processes = {}  # name -> Popen

    @staticmethod
    def run_once(args, env, timeout=120):
        done = subprocess.run(
            [sys.executable, "-m", "server", *args],
            env=env,
            cwd=ROOT,
            timeout=timeout,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert done.returncode == 0, done.stdout.decode(errors="replace")
        return done.stdout.decode(errors="replace")

    def start(self, name, *args, env=None):
        """Start `python -m server <args>` as `name` (e.g. start("web", "serve", "--port", "8123"))."""
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "server", *args], env=env or self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self.processes[name]

    def log(self, name):
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def signal(self, name, signum):
        self.processes[name].send_signal(signum)

    def kill(self, name):
        """SIGKILL: the process dies at once, as the OOM killer or a lost machine does it."""
        process = self.processes[name]
        process.kill()
        process.wait(10)

    def wait(self, name, timeout=40):
        return self.processes[name].wait(timeout)

    def stop_all(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def procfile(tmp_path):
    """Start processes with `procfile.start(name, *args, env=...)`; all are stopped after the test
    (their logs are printed when it failed, under `tmp_path`)."""
    processes = Procfile({}, tmp_path)
    yield processes
    processes.stop_all()


@contextlib.contextmanager
def models_bound_to(database_url, pool_size=4):
    """This test process's models bound to the database the processes under test use, for the
    block; the suite's own binding afterwards."""
    import models

    saved = models.database.obj
    db = models.bind(database_url, pool_size=pool_size)
    try:
        yield db
    finally:
        db.close_all() if hasattr(db, "close_all") else db.close()
        models.database.initialize(saved)


def wait_until(predicate, timeout=30, interval=0.05, what="condition"):
    """Poll `predicate` (a real server or process, no event to await) until true; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def make_clients(url, env, count):
    """`count` clients with access tokens valid for processes started with `env`, and a category to book."""
    from models.foundation.settings import load_settings
    from models.foundation.tokens import access_token

    from .factories import CategoryFactory, ClientFactory

    settings = load_settings(environ=env)
    with models_bound_to(url, pool_size=2):
        category = CategoryFactory()
        clients = [ClientFactory() for _ in range(count)]
        return category.id, [access_token(settings, client) for client in clients]


def answers_http(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status > 0
    except OSError:
        return False


def start_web(procfile, name, env):
    """`python -m server serve` on a free port, once it answers HTTP: (port, Popen)."""
    port = free_port()
    process = procfile.start(name, "serve", "--port", str(port), env=env)

    def serving():
        assert process.poll() is None, procfile.log(name)
        return answers_http(port)

    wait_until(serving, timeout=30, what=f"{name} to serve")
    return port, process


def configure_postgres(server, **parameters):
    """Set server parameters of a PrivatePostgres (e.g. default_transaction_read_only="on": a failover
    to a read-only replica) by appending them to its postgresql.conf and reloading it: every session,
    pooled ones included, takes them at its next transaction. No SQL, no restart."""
    with open(server.data / "postgresql.conf", "a") as conf:
        for name, value in parameters.items():
            conf.write(f"\n{name} = '{value}'\n")
    server._run(postgres_bin("pg_ctl"), "-D", str(server.data), "reload")


def http_call(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or None) of one request to a process under test, errors included."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


class DurableRedis:
    """A redis-server of the test's own with an append-only file (fsync on every write), so a test can
    restart it keeping its data (`restart()`) or losing it all, as a failover can (`restart(lose_data=True)`)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="serviceman-redis-"))
        self.process = None

    def start(self):
        import redis

        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_until(lambda: _pings(client), timeout=15, interval=0.02, what="redis-server to answer")
        return self

    def stop(self):
        """SIGTERM: Redis writes what it holds and exits (a managed restart)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)
            self.process = None

    def restart(self, lose_data=False):
        self.stop()
        if lose_data:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir()
        self.start()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client):
    import redis

    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def durable_redis():
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary to restart Redis")
    server = DurableRedis().start()
    yield server
    server.destroy()


def process_tree(pid):
    """`pid` and all its descendants (a worker, its work-horse, its scheduler), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def signal_tree(pid, signum):
    """Signal every process of the tree at once, as Heroku signals every process of a dyno."""
    for member in process_tree(pid):
        try:
            os.kill(member, signum)
        except ProcessLookupError:
            pass
