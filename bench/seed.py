"""The benchmark data shared by the benchmarks: a large, realistic catalogue and busy accounts.

RESETS the database it is given (every table truncated, ids restarted), then bulk-inserts through
Peewee, in a few seconds:

- 50 categories and 10,000 approved servicemen (plus 500 pending ones, never listed), each in one to
  three categories, with ratings, rating counts, completed jobs and availability spread out;
- one admin and 200 clients (`admin@bench.ng`, `client<N>@bench.ng`, password `bench-password-1`,
  hashed once at bcrypt cost 4: bench accounts only);
- 20,000 bookings across those clients, a quarter of them assigned to servicemen in an active status
  (so `active_jobs` is not always 0);
- 100,000 notifications: 500 for each client, 30% unread (the benchmark lists read client0's).

    .venv/bin/python bench/seed.py [--database-url postgresql://postgres@127.0.0.1:5432/bench_pages]

Refuses a database whose name lacks "bench" unless --force: it empties whatever it is pointed at.
"""

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_pages"
PASSWORD = "bench-password-1"
CATEGORIES = 50
SERVICEMEN = 10_000
PENDING_SERVICEMEN = 500
CLIENTS = 200
BOOKINGS = 20_000
NOTIFICATIONS_PER_CLIENT = 500
BATCH = 5_000


# The benchmarks sign in, register and pay for many users from one address: their servers run with
# the rate limits off (`**NO_RATE_LIMITS` in the server's environment).
NO_RATE_LIMITS = {f"RATE_LIMIT_{name}": "" for name in ("LOGIN", "REGISTER", "REFRESH", "EMAIL", "PAYMENT_INITIALIZE")}


def ensure_database(url):
    """Create the PostgreSQL database if missing (the server's migrate needs it to exist)."""
    from server.startup import ensure_database as create_if_missing  # what `python -m server createdb` does

    create_if_missing(url)


def _insert(model, rows):
    rows = list(rows)
    for i in range(0, len(rows), BATCH):
        model.insert_many(rows[i : i + BATCH]).execute()


def _truncate():
    from models import ALL_MODELS, database

    if database.obj.truncate_table:  # PostgreSQL: one TRUNCATE of everything, ids restarted
        for model in reversed(ALL_MODELS):
            model.truncate_table(restart_identity=True, cascade=True)
    else:
        for model in reversed(ALL_MODELS):
            model.delete().execute()


def seed(seed_value=10):
    """Reset and fill the bound database; returns a summary dict (emails, counts, timings)."""
    from models import (
        ApprovalStatus,
        Category,
        Notification,
        RequestStatus,
        Role,
        ServicemanCategory,
        ServicemanProfile,
        ServiceRequest,
        User,
        database,
    )
    from models.foundation.tokens import hash_password

    rnd = random.Random(seed_value)
    started = time.perf_counter()
    password = hash_password(PASSWORD, 4)
    now = datetime.now(UTC).replace(tzinfo=None)
    with database.atomic():
        _truncate()
        _insert(
            Category,
            (
                {
                    "name": f"Bench category {i:02d}",
                    "name_key": f"bench category {i:02d}",
                    "description": "Benchmark category",
                    "created_at": now,
                }
                for i in range(CATEGORIES)
            ),
        )
        category_ids = [c.id for c in Category.select(Category.id).order_by(Category.id)]
        User.insert(
            email="admin@bench.ng", password_hash=password, first_name="Bench", last_name="Admin", role=Role.ADMIN
        ).execute()
        _insert(
            User,
            (
                {
                    "email": f"client{i}@bench.ng",
                    "password_hash": password,
                    "first_name": "Client",
                    "last_name": str(i),
                    "phone": "+2348000000000",
                    "role": Role.CLIENT,
                }
                for i in range(CLIENTS)
            ),
        )
        _insert(
            User,
            (
                {
                    "email": f"serviceman{i}@bench.ng",
                    "password_hash": password,
                    "first_name": rnd.choice(["Emeka", "Tunde", "Ngozi", "Musa", "Aisha", "Chidi", "Bola"]),
                    "last_name": f"Bench{i}",
                    "phone": "+2348000000000",
                    "role": Role.SERVICEMAN,
                }
                for i in range(SERVICEMEN + PENDING_SERVICEMEN)
            ),
        )
        servicemen = [u.id for u in User.select(User.id).where(User.role == Role.SERVICEMAN).order_by(User.id)]
        clients = [u.id for u in User.select(User.id).where(User.role == Role.CLIENT).order_by(User.id)]

        def profile(i, user_id):
            rated = rnd.random() < 0.8
            return {
                "user": user_id,
                "bio": "Benchmark serviceman: ten years of careful work in Lagos.",
                "years_of_experience": rnd.randint(0, 30),
                "rating": f"{rnd.uniform(3, 5):.2f}" if rated else "0.00",
                "rating_count": rnd.randint(1, 300) if rated else 0,
                "jobs_completed": rnd.randint(0, 500),
                "is_available": rnd.random() < 0.85,
                "approval_status": ApprovalStatus.APPROVED if i < SERVICEMEN else ApprovalStatus.PENDING_APPROVAL,
            }

        profile_rows = [profile(i, user_id) for i, user_id in enumerate(servicemen)]
        _insert(ServicemanProfile, profile_rows)
        profiles = [p.id for p in ServicemanProfile.select(ServicemanProfile.id).order_by(ServicemanProfile.id)]
        links = []
        for i, (profile_id, row) in enumerate(zip(profiles, profile_rows, strict=True)):
            # Each category gets its 200 "own" servicemen plus a spread of second and third trades.
            chosen = {category_ids[i % CATEGORIES]}
            chosen.update(rnd.sample(category_ids, rnd.randint(0, 2)))
            # The listing copy that models/actions/listing.py keeps (all bench accounts are active).
            copy = {
                "listed": row["approval_status"] == ApprovalStatus.APPROVED,
                "rating": row["rating"],
                "rating_count": row["rating_count"],
                "jobs_completed": row["jobs_completed"],
            }
            links.extend({"profile": profile_id, "category": c, **copy} for c in chosen)
        _insert(ServicemanCategory, links)

        booking_date = date.today() + timedelta(days=5)
        active = RequestStatus.ACTIVE_FOR_SERVICEMAN
        listed = servicemen[:SERVICEMEN]

        def booking(i):
            assigned = i % 4 == 0
            primary, backup = rnd.sample(listed, 2) if assigned else (None, None)
            return {
                "client": clients[i % CLIENTS],
                "category": category_ids[i % CATEGORIES],
                "booking_date": booking_date,
                "address": f"{i} Bench Road, Lekki",
                "description": "Benchmark booking: kitchen sink leaking under the cabinet.",
                "booking_fee": "2000.00",
                "primary_serviceman": primary,
                "backup_serviceman": backup,
                "status": rnd.choice(active)
                if assigned
                else rnd.choice(
                    [
                        RequestStatus.PENDING_PAYMENT,
                        RequestStatus.PENDING_ADMIN_ASSIGNMENT,
                        RequestStatus.COMPLETED,
                        RequestStatus.CANCELLED,
                    ]
                ),
                "is_emergency": i % 10 == 0,
                "created_at": now - timedelta(minutes=BOOKINGS - i),
                "updated_at": now,
            }

        _insert(ServiceRequest, (booking(i) for i in range(BOOKINGS)))

        def notification(client_index, k):
            return {
                "user": clients[client_index],
                "notification_type": "request_created",
                "title": "Booking received",
                "message": "We received your booking and will assign a serviceman.",
                # Already emailed and pushed: the re-drive sweep would otherwise queue 100,000
                # emails (and push the recent rows) and compete with whatever is being measured.
                "payload": {"bench": k},
                "is_read": rnd.random() >= 0.3,
                "sent_to_email": True,
                "email_sent_at": now,
                "pushed_at": now,
                "created_at": now - timedelta(seconds=NOTIFICATIONS_PER_CLIENT - k),
            }

        _insert(Notification, (notification(c, k) for c in range(CLIENTS) for k in range(NOTIFICATIONS_PER_CLIENT)))
    # Statistics and visibility maps as autovacuum leaves them on a live database: the planner sees the
    # real sizes, and index-only scans (the listing's count) need not visit the table.
    if database.obj.truncate_table:
        for model in (User, ServicemanProfile, ServicemanCategory, ServiceRequest, Notification, Category):
            database.execute_sql(f'VACUUM ANALYZE "{model._meta.table_name}"')
    return {
        "seconds": time.perf_counter() - started,
        "categories": category_ids,
        "admin": "admin@bench.ng",
        "clients": [f"client{i}@bench.ng" for i in range(CLIENTS)],
        "password": PASSWORD,
        "servicemen": SERVICEMEN,
        "bookings": BOOKINGS,
        "notifications": CLIENTS * NOTIFICATIONS_PER_CLIENT,
    }


def prepare(database_url, force=False):
    """Create, migrate (with the project's own command), bind and seed; returns seed()'s summary."""
    import os
    import subprocess

    import models

    name = urlparse(database_url).path.lstrip("/")
    if "bench" not in name and not force:
        sys.exit(f"seed: refusing to empty database {name!r} (its name lacks 'bench'; --force to insist)")
    if database_url.startswith("postgres"):
        ensure_database(database_url)
    env = {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    models.bind(database_url)
    return seed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--force", action="store_true", help="empty a database whose name lacks 'bench'")
    args = parser.parse_args()
    summary = prepare(args.database_url, args.force)
    print(
        f"bench data ready in {summary['seconds']:.1f}s: {len(summary['categories'])} categories, "
        f"{summary['servicemen']} approved servicemen, {summary['bookings']} bookings, "
        f"{summary['notifications']} notifications; admin {summary['admin']}, clients client0..."
        f"{len(summary['clients']) - 1}@bench.ng, password {summary['password']}"
    )
