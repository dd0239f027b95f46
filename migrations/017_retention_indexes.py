"""017_retention_indexes: the retention job (models/actions/retention.py) finds spent refresh and
one-time tokens by `expires_at` (events and notifications by `created_at`, indexed since 001): without
these indexes each hourly run would read the whole of two tables that gain a row per sign-in."""

import peewee as pw
from peewee_migrate import Migrator

INDEXES = (("refresh_token", "expires_at"), ("one_time_token", "expires_at"))


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, column in INDEXES:
        migrator.add_index(table, column)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, column in INDEXES:
        migrator.drop_index(table, column)
