"""014_delivery_state: the database records each event's delivery and each notification's push and
email, so a sweep can re-drive from it whatever a queue lost (workers/outbox.py::redrive).

Rows that exist already count as delivered and pushed (they were, or it is too late to push them);
their email state is unchanged. Three partial indexes hold only the rows still to do, so the sweep's
queries stay index range scans over a handful of rows however big the tables grow."""

import peewee as pw
from peewee_migrate import Migrator


def _partial_indexes(migrator):
    event, notification = migrator.orm["event"], migrator.orm["notification"]
    return [
        event.index(event.created_at, name="event_undelivered").where(event.delivered_at.is_null()),
        notification.index(notification.created_at, name="notification_unpushed")
        .where(notification.pushed_at.is_null()),
        notification.index(notification.created_at, name="notification_email_unsent")
        .where(notification.sent_to_email == False),
    ]


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("event", delivered_at=pw.DateTimeField(null=True),
                        redrive_claimed_until=pw.DateTimeField(null=True),
                        redrive_attempts=pw.IntegerField(default=0))
    migrator.add_fields("notification", pushed_at=pw.DateTimeField(null=True),
                        push_claimed_until=pw.DateTimeField(null=True),
                        email_claimed_until=pw.DateTimeField(null=True),
                        email_attempts=pw.IntegerField(default=0),
                        email_redrive_after=pw.DateTimeField(null=True))

    def backfill_and_index():
        event, notification = migrator.orm["event"], migrator.orm["notification"]
        event.update(delivered_at=event.created_at).where(event.delivered_at.is_null()).execute()
        notification.update(pushed_at=notification.created_at).where(notification.pushed_at.is_null()).execute()
        for index in _partial_indexes(migrator):
            # SQLite's partial indexes take no bound parameters: the predicate's values go in as literals.
            database.execute(pw.ValueLiterals(index) if database.index_value_literals else index)

    migrator.run(backfill_and_index)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    indexes = _partial_indexes(migrator)  # now: remove_fields below changes the models at once

    def drop_indexes():
        for index in indexes:
            index._model._schema.drop_index(index=index)

    migrator.run(drop_indexes)
    migrator.remove_fields("notification", "pushed_at", "push_claimed_until", "email_claimed_until",
                           "email_attempts", "email_redrive_after")
    migrator.remove_fields("event", "delivered_at", "redrive_claimed_until", "redrive_attempts")
