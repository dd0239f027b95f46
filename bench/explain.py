"""EXPLAIN ANALYZE of the queries behind the benchmarked pages, as the project builds them.

    .venv/bin/python bench/explain.py [--database-url ...]   (after bench/seed.py or bench/pages.py)

A diagnostic for bench/README.md: it prints PostgreSQL's plan and timings of each query one page of
each list runs (the count, the rows, the batch lookups). Read-only.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import seed as bench_seed  # noqa: E402


def explain(title, query):
    from models import database

    sql, params = database.get_sql_context().sql(query).query()
    print(f"--- {title}\n{sql}\n    params: {params}")
    for (line,) in database.execute_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params):
        print("   ", line)


def count_query(query):
    """The query Peewee's `.count()` runs (COUNT over the wrapped query)."""
    import peewee

    clone = query.order_by().alias("_wrapped")
    if clone._count_can_project_one():
        clone = clone.select(peewee.SQL("1"))
    return peewee.Select([clone], [peewee.fn.COUNT(peewee.SQL("1"))])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=bench_seed.DATABASE_URL)
    args = parser.parse_args()
    import peewee

    import models
    from models import Category, ServiceRequest, User, database
    from models.actions import booking, catalog, notifications

    models.bind(args.database_url)
    category_id = Category.select(Category.id).order_by(Category.id).first().id
    admin = User.get(User.email == "admin@bench.ng")
    client = User.get(User.email == "client0@bench.ng")
    with database.connection_context():
        page = catalog.category_servicemen(category_id)
        explain("servicemen: count", count_query(page))
        explain("servicemen: page 1", page.paginate(1, 20))
        links = list(page.paginate(1, 20))
        explain(
            "servicemen: profiles and users of the page",
            catalog._listed_servicemen().where(
                models.ServicemanProfile.id.in_([profile_id for (profile_id,) in links])
            ),
        )
        profiles = list(
            models.ServicemanProfile.select().where(
                models.ServicemanProfile.id.in_([profile_id for (profile_id,) in links])
            )
        )
        explain(
            "servicemen: categories of the page",
            models.ServicemanCategory.select().where(models.ServicemanCategory.profile.in_([p.id for p in profiles])),
        )
        primary, backup = (
            ServiceRequest.select(role, peewee.fn.COUNT(ServiceRequest.id))
            .where(
                role.in_([p.user_id for p in profiles]),
                ServiceRequest.status.in_(models.RequestStatus.ACTIVE_FOR_SERVICEMAN),
                ServiceRequest.is_deleted == False,
            )
            .group_by(role)
            for role in (ServiceRequest.primary_serviceman, ServiceRequest.backup_serviceman)
        )
        explain("servicemen: active jobs", primary + backup)
        for who, user in (("admin", admin), ("client", client)):
            query = booking.list_requests(user)
            explain(f"bookings ({who}): count", count_query(query))
            explain(f"bookings ({who}): page 1", query.paginate(1, 20))
        query = notifications.list_notifications(client)
        explain("notifications (client): count", count_query(query))
        explain("notifications (client): page 1", query.paginate(1, 20))


if __name__ == "__main__":
    main()
