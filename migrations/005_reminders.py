"""005_reminders: a booking's reminder is sent once; the column records that it was, and when."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("service_request", reminder_sent_at=pw.DateTimeField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("service_request", "reminder_sent_at")
