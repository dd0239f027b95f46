"""Backup and restore time of a database with 100,000 bookings (the issue's figure), through the real
commands: `python -m server backup` and `python -m server restore` (which migrates afterwards).

bench/seed.py's data (10,500 servicemen, 20,000 bookings, 100,000 notifications) plus 80,000 more
bookings, each of the 100,000 with a paid booking fee and two timeline events:

    .venv/bin/python bench/backup.py [--database-url postgresql://postgres@127.0.0.1:5432/bench_backup]

Refuses a database whose name lacks "bench" (it is emptied); the restored copy is dropped afterwards.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import seed  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_backup"
BOOKINGS = 100_000


def add_bookings():
    """Top seed()'s bookings up to BOOKINGS, and give each a paid booking fee and two events."""
    from models import Event, Payment, PaymentStatus, PaymentType, RequestStatus, Role, ServiceRequest, User, database

    now = datetime.now(UTC).replace(tzinfo=None)
    template = ServiceRequest.select().order_by(ServiceRequest.id).first()
    clients = [u.id for u in User.select(User.id).where(User.role == Role.CLIENT)]
    with database.atomic():
        missing = BOOKINGS - ServiceRequest.select().count()
        seed._insert(
            ServiceRequest,
            (
                {
                    "client": clients[i % len(clients)],
                    "category": template.category_id,
                    "booking_date": template.booking_date,
                    "address": f"{i} Bench Close, Yaba",
                    "description": "Benchmark booking: the generator will not start.",
                    "booking_fee": "2000.00",
                    "status": RequestStatus.COMPLETED,
                    "created_at": now - timedelta(minutes=i),
                    "updated_at": now,
                }
                for i in range(missing)
            ),
        )
        rows = list(ServiceRequest.select(ServiceRequest.id, ServiceRequest.client).tuples())
        seed._insert(
            Payment,
            (
                {
                    "service_request": request_id,
                    "payer": client_id,
                    "payment_type": PaymentType.BOOKING_FEE,
                    "amount": "2000.00",
                    "paystack_reference": f"SM-{request_id}-B-bench",
                    "status": PaymentStatus.SUCCESS,
                    "paid_at": now,
                    "metadata": {"bench": True},
                    "created_at": now,
                }
                for request_id, client_id in rows
            ),
        )
        seed._insert(
            Event,
            (
                {
                    "type": kind,
                    "service_request": request_id,
                    "payload": {"service_request_id": request_id},
                    "published_at": now,
                    "delivered_at": now,
                    "created_at": now,
                }
                for request_id, _ in rows
                for kind in ("request_created", "payment_received")
            ),
        )
    database.execute_sql("VACUUM ANALYZE")


def drop_database(url):
    """DROP DATABASE is outside any query builder: composed with psycopg2's sql module."""
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


def run(*args, database_url):
    env = {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456",
    }
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "server", *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    args = parser.parse_args()
    import models
    from models import Event, Notification, Payment, ServiceRequest
    from workers.backup import list_backups

    started = time.perf_counter()
    seed.prepare(args.database_url)
    add_bookings()
    print(
        f"seeded in {time.perf_counter() - started:.0f} s: {ServiceRequest.select().count()} bookings, "
        f"{Payment.select().count()} payments, {Event.select().count()} events, "
        f"{Notification.select().count()} notifications"
    )
    parts = urlsplit(args.database_url)
    restored = urlunsplit(parts._replace(path=parts.path + "_restored"))
    with tempfile.TemporaryDirectory(prefix="serviceman-backup-bench-") as folder:
        backup_seconds = run("backup", "--dir", folder, database_url=args.database_url)
        [dump] = list_backups(folder)
        size = dump.stat().st_size
        try:
            restore_seconds = run("restore", str(dump), "--database-url", restored, database_url=args.database_url)
            models.bind(restored)
            assert ServiceRequest.select().count() == BOOKINGS
        finally:
            models.database.close()
            drop_database(restored)
    print(
        f"backup: {backup_seconds:.1f} s, {size / 1e6:.1f} MB (pg_dump custom format); "
        f"restore + migrate: {restore_seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
