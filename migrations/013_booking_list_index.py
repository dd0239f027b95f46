"""013_booking_list_index: a client's bookings by (client, is_deleted, created_at, id). With the
deleted flag in the key, the list's COUNT is an index-only scan instead of visiting every booking's
row to skip deleted ones, and the page reads exactly its 20 rows (EXPLAIN ANALYZE in bench/README.md)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_index("service_request", "client", "is_deleted", "created_at", "id")
    migrator.drop_index("service_request", "client", "created_at", "id")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_index("service_request", "client", "created_at", "id")
    migrator.drop_index("service_request", "client", "is_deleted", "created_at", "id")
