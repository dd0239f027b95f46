"""Backups: `python -m server backup` writes a pg_dump file and prunes old ones by count and age; the
restore drill backs up a populated database, restores it with `python -m server restore` into a new
one, migrates it, and finds every row and a whole booking again. The cron process takes them on
BACKUP_SCHEDULE. The drill needs PostgreSQL (TEST_DATABASE_URL); the rest runs everywhere."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest
import time_machine
from playhouse.shortcuts import model_to_dict

import models
from models import Event, Notification, Payment, PaymentStatus, PaymentType, RefreshToken, RequestStatus, ServiceRequest
from models.foundation.clock import utcnow
from models.foundation.settings import PROJECT_ROOT
from workers import backup
from workers.backup import BackupError, BackupSchedule, list_backups, prune

from .conftest import TEST_DATABASE_URL, make_settings
from .factories import ClientFactory, ServicemanFactory, ServiceRequestFactory

ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="pg_dump/pg_restore need PostgreSQL: set TEST_DATABASE_URL to a postgresql:// URL to run the restore drill",
)
NOW = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def backup_file(folder, at):
    path = folder / f"serviceman-{at:%Y%m%dT%H%M%SZ}.dump"
    path.write_bytes(b"PGDMP")
    return path


def test_pruning_keeps_the_newest_count_and_anything_younger_than_the_age(tmp_path):
    daily = [backup_file(tmp_path, NOW - timedelta(days=age)) for age in range(40)]  # newest first
    stranger = tmp_path / "notes.txt"
    stranger.write_text("not a backup")
    partial = tmp_path / "serviceman-20260101T000000Z.dump.partial"
    partial.write_bytes(b"")

    deleted = prune(tmp_path, keep_count=5, keep_days=30, now=NOW)

    assert sorted(deleted) == sorted(daily[31:])  # older than 30 days and beyond the newest 5
    assert list_backups(tmp_path) == daily[:31]
    assert stranger.exists() and partial.exists()  # only our finished backups are ever deleted


def test_the_newest_count_survives_however_old(tmp_path):
    old = [backup_file(tmp_path, NOW - timedelta(days=100 + age)) for age in range(4)]

    assert sorted(prune(tmp_path, keep_count=3, keep_days=30, now=NOW)) == [old[3]]
    assert list_backups(tmp_path) == old[:3]


def test_sqlite_has_no_pg_dump_backup(tmp_path):
    with pytest.raises(BackupError, match="backups need PostgreSQL"):
        backup.take_backup("sqlite:///x.sqlite3", tmp_path, 3, 30)
    assert list(tmp_path.iterdir()) == []


def test_the_password_goes_in_the_environment_never_the_command_line():
    url, env = backup.libpq_target("postgresql://app:s3cret-pass@db.internal:6543/serviceman?sslmode=require")

    assert url == "postgresql://app@db.internal:6543/serviceman?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret-pass"


def test_the_backup_schedule_falls_due_on_its_cron_expression(tmp_path, monkeypatch):
    settings = make_settings(BACKUP_SCHEDULE="30 2 * * *", BACKUP_DIR=str(tmp_path))
    taken = []
    monkeypatch.setattr(backup, "take_backup", lambda *args: taken.append(args))
    schedule = BackupSchedule(settings, now=NOW - timedelta(days=2))  # 29 June, 03:00: past that day's 02:30

    assert schedule.next_at == datetime(2026, 6, 30, 2, 30, tzinfo=UTC)
    assert not schedule.tick(now=datetime(2026, 6, 30, 2, 29, tzinfo=UTC))
    assert schedule.tick(now=NOW)  # asleep through two runs: one backup, not two
    schedule.join(10)
    assert taken == [(settings.database_url, str(tmp_path), 14, 30)]
    assert schedule.next_at == datetime(2026, 7, 2, 2, 30, tzinfo=UTC)
    assert schedule.seconds_until_due(NOW) == pytest.approx(23.5 * 3600)


def test_a_schedule_that_cannot_work_is_refused(tmp_path):
    with pytest.raises(BackupError, match="BACKUP_DIR is not"):
        BackupSchedule.from_settings(make_settings(BACKUP_SCHEDULE="30 2 * * *"))
    assert BackupSchedule.from_settings(make_settings(BACKUP_SCHEDULE="external")) is None
    assert BackupSchedule.from_settings(make_settings()) is None


# The restore drill --------------------------------------------------------------------------------


def run_server(*args, database_url=TEST_DATABASE_URL, **env):
    environ = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    environ.update(
        ENV="test",
        SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        DATABASE_URL=database_url,
        REDIS_URL="",
        LOG_LEVEL="WARNING",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=environ,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def other_database_url(name):
    parts = urlsplit(TEST_DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(url):
    """DROP DATABASE is outside any query builder: composed with psycopg2's sql module (tests only)."""
    import psycopg2
    from playhouse.db_url import parse as parse_db_url
    from psycopg2 import sql

    params = parse_db_url(url)
    name = params.pop("database")
    connection = psycopg2.connect(dbname="postgres", **params)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        connection.close()


@pytest.fixture
def restored_url():
    url = other_database_url(f"{urlsplit(TEST_DATABASE_URL).path.lstrip('/')}_restored_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


def populate():
    """A booking walked to COMPLETED with its payments, timeline and notifications, beside a few more."""
    client, serviceman = ClientFactory(), ServicemanFactory()
    booking = ServiceRequestFactory(
        client=client,
        primary_serviceman=serviceman,
        backup_serviceman=ServicemanFactory(),
        status=RequestStatus.COMPLETED,
        estimate_amount=Decimal("20000.00"),
        markup_percentage=Decimal("10.00"),
        final_cost=Decimal("22000.00"),
        is_emergency=True,
        description="Burst pipe under the kitchen sink, ₦ and all.",
    )
    for kind, amount in ((PaymentType.BOOKING_FEE, "5000.00"), (PaymentType.FINAL_PAYMENT, "22000.00")):
        Payment.create(
            service_request=booking,
            payer=client,
            payment_type=kind,
            amount=Decimal(amount),
            paystack_reference=f"SM-{booking.id}-{kind}",
            status=PaymentStatus.SUCCESS,
            paid_at=utcnow(),
            metadata={"channel": "card"},
        )
    for status in (RequestStatus.PENDING_ADMIN_ASSIGNMENT, RequestStatus.ASSIGNED, RequestStatus.COMPLETED):
        event = Event.create(
            type="request_updated",
            service_request=booking,
            to_status=status,
            payload={"service_request_id": booking.id},
            published_at=utcnow(),
            delivered_at=utcnow(),
        )
        Notification.create(
            user=client,
            event=event,
            service_request=booking,
            notification_type="request_updated",
            title="Update",
            message=f"Your booking is {status}.",
            payload={"status": status},
        )
    for _ in range(5):
        ServiceRequestFactory(client=client)
    RefreshToken.create(jti=uuid.uuid4().hex, family="f", user=client, expires_at=utcnow() + timedelta(days=7))
    return booking


def counts():
    return {model._meta.table_name: model.select().count() for model in models.ALL_MODELS}


def whole_booking(booking_id):
    booking = ServiceRequest.get_by_id(booking_id)
    return {
        "booking": model_to_dict(booking, recurse=True),
        "payments": [model_to_dict(p, recurse=False) for p in booking.payments.order_by(Payment.id)],
        "events": [model_to_dict(e, recurse=False) for e in booking.events.order_by(Event.id)],
        "notifications": [model_to_dict(n, recurse=False) for n in booking.notifications.order_by(Notification.id)],
    }


@needs_postgres
def test_restore_drill(tmp_path, restored_url):
    booking = populate()
    before, expected = counts(), whole_booking(booking.id)
    assert before["service_request"] == 6 and before["payment"] == 2 and before["event"] == 3

    made = run_server("backup", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    [dump] = list_backups(tmp_path)
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    restored = run_server("restore", str(dump), "--database-url", restored_url)
    assert restored.returncode == 0, restored.stderr
    assert "migrations applied: none (up to date)" in restored.stdout

    copy = peewee.PostgresqlDatabase(None)
    copy.init(**{"database": urlsplit(restored_url).path.lstrip("/"), **_connection_params(restored_url)})
    with copy.bind_ctx(models.ALL_MODELS):
        assert counts() == before
        assert whole_booking(booking.id) == expected
        ServiceRequestFactory()  # the sequences came along: new rows get new ids
    copy.close()
    again = run_server("check", database_url=restored_url)
    assert again.returncode == 0 and again.stdout.startswith("ok: database"), again


def _connection_params(url):
    from playhouse.db_url import parse as parse_db_url

    params = parse_db_url(url)
    params.pop("database")
    return params


@needs_postgres
def test_restore_refuses_a_database_that_has_tables(tmp_path):
    populate()
    assert run_server("backup", "--dir", str(tmp_path)).returncode == 0
    before = counts()

    refused = run_server("restore", str(list_backups(tmp_path)[0]))  # into DATABASE_URL itself

    assert refused.returncode == 1
    assert "already has" in refused.stderr and "restore into a new or empty database" in refused.stderr
    assert counts() == before


@needs_postgres
def test_a_broken_backup_restores_nothing(tmp_path, restored_url):
    broken = tmp_path / "serviceman-20260701T030000Z.dump"
    broken.write_bytes(b"PGDMP" + b"\0" * 100)

    refused = run_server("restore", str(broken), "--database-url", restored_url)

    assert refused.returncode == 1 and refused.stderr.startswith("restore: pg_restore failed"), refused.stderr
    copy = peewee.PostgresqlDatabase(urlsplit(restored_url).path.lstrip("/"), **_connection_params(restored_url))
    assert copy.get_tables() == []
    copy.close()


@needs_postgres
def test_the_scheduled_backup_writes_a_dump_and_prunes(tmp_path):
    populate()
    settings = make_settings(
        BACKUP_SCHEDULE="0 * * * *", BACKUP_DIR=str(tmp_path), BACKUP_KEEP_COUNT="1", BACKUP_KEEP_DAYS="0"
    )
    old = backup_file(tmp_path, datetime.now(UTC) - timedelta(days=2))
    schedule = BackupSchedule.from_settings(settings)

    with time_machine.travel(schedule.next_at + timedelta(seconds=1), tick=False):
        assert schedule.tick()
    schedule.join(120)

    assert isinstance(schedule.last_result, type(tmp_path)), schedule.last_result
    assert list_backups(tmp_path) == [schedule.last_result] and not old.exists()


def test_the_cron_process_takes_the_backup_when_it_falls_due(redis_url, tmp_path, monkeypatch):
    """run_cron (what `python -m server cron` runs) ticks the backup schedule between its periodic jobs and
    wakes up for it: a backup due in a second is taken although the next periodic job is a minute away."""
    import threading

    from workers import runtime
    from workers.cron import run_cron
    from workers.outages import Stopping
    from workers.transport import RedisTransport

    taken = threading.Event()
    monkeypatch.setattr(backup, "take_backup", lambda *args: taken.set())
    schedule = BackupSchedule(make_settings(BACKUP_SCHEDULE="* * * * *", BACKUP_DIR=str(tmp_path)))
    schedule.next_at = datetime.now(UTC) + timedelta(seconds=1)
    stopping = Stopping()
    thread = threading.Thread(
        target=run_cron,
        args=(RedisTransport(redis_url), [(runtime.settings, 60)], stopping),
        kwargs={"backups": schedule},
        daemon=True,
    )
    thread.start()
    try:
        assert taken.wait(10)
    finally:
        stopping.set()
        thread.join(10)
    assert not thread.is_alive()
