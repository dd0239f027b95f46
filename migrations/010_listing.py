"""010_listing: index-backed lists. The public servicemen page reads a copy of each serviceman's
listed state, rating and completed jobs on their category links (one index range scan for the count
and the page, instead of joining 10,000 profiles and users); a client's bookings and a user's
notifications are read newest first straight from an index. Figures in bench/README.md."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        "serviceman_category",
        listed=pw.BooleanField(default=False),
        rating=pw.DecimalField(max_digits=3, decimal_places=2, auto_round=True, default=0),
        rating_count=pw.IntegerField(default=0),
        jobs_completed=pw.IntegerField(default=0),
    )

    def copy_listing():
        link, profile, user = (migrator.orm["serviceman_category"], migrator.orm["serviceman_profile"],
                               migrator.orm["user"])
        rows = (profile.select(profile.id, profile.approval_status, profile.rating, profile.rating_count,
                               profile.jobs_completed, user.is_active)
                .join(user, on=(profile.user == user.id)).tuples())
        for profile_id, status, rating, rating_count, jobs_completed, is_active in rows:
            link.update(listed=status == "APPROVED" and is_active, rating=rating, rating_count=rating_count,
                        jobs_completed=jobs_completed).where(link.profile == profile_id).execute()

    migrator.run(copy_listing)
    migrator.add_index("serviceman_category", "category", "listed", "rating", "rating_count", "profile")
    migrator.add_index("serviceman_category", "category", "listed", "jobs_completed", "profile")
    migrator.add_index("service_request", "client", "created_at", "id")
    migrator.add_index("notification", "user", "created_at", "id")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.drop_index("notification", "user", "created_at", "id")
    migrator.drop_index("service_request", "client", "created_at", "id")
    migrator.drop_index("serviceman_category", "category", "listed", "jobs_completed", "profile")
    migrator.drop_index("serviceman_category", "category", "listed", "rating", "rating_count", "profile")
    migrator.remove_fields("serviceman_category", "listed", "rating", "rating_count", "jobs_completed")
