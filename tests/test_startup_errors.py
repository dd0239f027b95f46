"""The commonest mistakes stop a command with one clear line, not a traceback: the database missing
or unreachable (or not migrated), the port in use, Redis unreachable or its TLS certificate refused."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import models
from server.__main__ import main as cli
from workers import runtime

from .conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-0123456789abcdef0123456789"
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def run(monkeypatch, database):
    """`run(*argv, **environ)`: the CLI's exit message; the session's database is bound again after."""

    def run(*argv, **environ):
        monkeypatch.delenv("REDIS_URL", raising=False)
        for name, value in {
            "ENV": "test",
            "SECRET_KEY": SECRET,
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": TEST_DATABASE_URL,
            **environ,
        }.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as stopped:
            cli(list(argv))
        return str(stopped.value.code)

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield run
    for signum, handler in handlers.items():  # pipeline commands install their own stop handlers
        signal.signal(signum, handler)
    models.database.initialize(database)
    runtime.reset()


def assert_one_line(message, command, *words):
    assert message.startswith(f"{command}: ") and "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, message


@pytest.mark.skipif(not ON_POSTGRES, reason="a missing database is a PostgreSQL mistake (SQLite creates the file)")
@pytest.mark.parametrize("command", ["migrate", "serve", "seed"])
def test_a_missing_postgresql_database(run, command):
    url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/serviceman_no_such_database"

    message = run(command, DATABASE_URL=url)

    assert_one_line(
        message,
        command,
        'database "serviceman_no_such_database" does not exist',
        "createdb serviceman_no_such_database",
        "make run-full",
    )


@pytest.mark.parametrize("command", ["migrate", "serve", "worker"])
def test_an_unreachable_postgresql_server(run, command):
    url = f"postgresql://serviceman:secret-password@127.0.0.1:{closed_port()}/serviceman"

    # STARTUP_WAIT_SECONDS=0: the worker would otherwise wait for the server (tests/test_pipeline_outages.py)
    message = run(command, DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:6379/0", STARTUP_WAIT_SECONDS="0")

    assert_one_line(message, command, "cannot reach PostgreSQL at 127.0.0.1:", "DATABASE_URL")
    assert "secret-password" not in message


def test_a_sqlite_file_in_a_missing_folder(run):
    message = run("serve", DATABASE_URL="sqlite:////no/such/folder/serviceman.sqlite3")

    assert_one_line(message, "serve", "cannot open the SQLite database /no/such/folder/serviceman.sqlite3")


@pytest.mark.parametrize("command", ["serve", "seed", "createadmin"])
def test_a_database_without_tables_says_to_migrate(run, command):
    empty = f"sqlite:///{tempfile.mkdtemp(prefix='serviceman-empty-')}/empty.sqlite3"
    argv = (
        [command, "--email", "a@example.ng", "--password", "long-password-1"] if command == "createadmin" else [command]
    )

    message = run(*argv, DATABASE_URL=empty)

    assert_one_line(message, command, "has no tables yet", "python -m server migrate")


@pytest.mark.parametrize("command", ["serve", "dispatcher", "worker", "cron"])
def test_an_unreachable_redis(run, command):
    message = run(command, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", STARTUP_WAIT_SECONDS="0")

    assert_one_line(message, command, "cannot reach Redis at 127.0.0.1:", "REDIS_URL")


@pytest.mark.parametrize("command", ["check", "worker"])
def test_a_rediss_certificate_that_cannot_be_verified_is_named_so(run, command, tls_redis):
    message = run(command, REDIS_URL=tls_redis)  # self-signed, REDIS_SSL_CERT_REQS unset (required)

    assert_one_line(message, command, "TLS certificate", "REDIS_SSL_CERT_REQS=none")
    assert "is redis-server running" not in message


@pytest.mark.parametrize("command", ["dispatcher", "worker", "cron"])
def test_a_pipeline_process_waiting_for_servers_still_stops_at_once_on_missing_tables(run, command):
    empty = f"sqlite:///{tempfile.mkdtemp(prefix='serviceman-empty-')}/empty.sqlite3"

    message = run(command, DATABASE_URL=empty, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")

    assert_one_line(message, command, "has no tables yet", "python -m server migrate")


def test_the_port_in_use(run, busy_port):
    message = run("serve", "--port", str(busy_port))

    assert_one_line(message, "serve", f"port {busy_port} on 127.0.0.1 is already in use", f"--port {busy_port + 1}")


def test_the_real_entry_point_prints_only_that_line(database, busy_port):
    env = {**os.environ, "ENV": "test", "SECRET_KEY": SECRET, "DATABASE_URL": TEST_DATABASE_URL, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)

    finished = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", str(busy_port)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert finished.stderr.strip().splitlines() == [
        f"serve: port {busy_port} on 127.0.0.1 is already in use (another `make run`?): stop that process or "
        f"choose another port with PORT={busy_port + 1} (or --port {busy_port + 1})"
    ]


def test_check_says_ok_for_a_migrated_database(run, capsys, monkeypatch):
    monkeypatch.setattr("server.__main__.bind", lambda *args, **kwargs: None)  # keep the session's binding
    for name, value in {"ENV": "test", "SECRET_KEY": SECRET, "DATABASE_URL": TEST_DATABASE_URL}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)

    cli(["check"])

    assert "ok: database" in capsys.readouterr().out


@pytest.mark.skipif(not ON_POSTGRES, reason="createdb creates PostgreSQL databases")
def test_createdb_creates_the_database_once(run, capsys, monkeypatch):
    import uuid

    import psycopg2
    from psycopg2 import sql

    name = f"serviceman_createdb_{uuid.uuid4().hex[:8]}"
    url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    for key, value in {"ENV": "test", "SECRET_KEY": SECRET, "DATABASE_URL": url}.items():
        monkeypatch.setenv(key, value)
    try:
        cli(["createdb"])
        cli(["createdb"])
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].endswith(f"/{name}: created") and lines[1].endswith(f"/{name}: exists")
        psycopg2.connect(url).close()
    finally:
        admin = psycopg2.connect(TEST_DATABASE_URL)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


def test_createdb_on_an_unreachable_server_is_one_line(run):
    message = run("createdb", DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed_port()}/serviceman")

    assert_one_line(message, "createdb", "cannot reach PostgreSQL at 127.0.0.1:")


def test_createdb_leaves_sqlite_alone(run, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='serviceman-')}/x.sqlite3")
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("SECRET_KEY", SECRET)

    cli(["createdb"])

    assert capsys.readouterr().out.strip().endswith("x.sqlite3: SQLite creates the file when first used")
