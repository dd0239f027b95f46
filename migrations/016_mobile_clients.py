"""016_mobile_clients: what mobile apps need (issue 24).

- `idempotency_key`: stored answers of POST/PATCH/DELETE requests sent with an Idempotency-Key,
  one per (user, key), kept 24 hours (models/idempotency.py).
- `notification.read_at`: when a notification became read, so `GET /api/sync/` can tell another
  device which ones did; indexed with its user. Notifications read before this migration have none
  (they were read before any sync cursor existed, so no cursor can miss them).
- `service_request.updated_at` indexed: an admin's sync reads the requests changed since a cursor.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class IdempotencyKey(pw.Model):
        id = pw.AutoField()
        user = pw.ForeignKeyField(column_name="user_id", field="id", model=migrator.orm["user"], on_delete="CASCADE")
        key = pw.CharField(max_length=255)
        fingerprint = pw.CharField(max_length=64)
        state = pw.CharField(max_length=10, default="running")
        owner = pw.CharField(max_length=32)
        lease_until = pw.DateTimeField()
        status_code = pw.IntegerField(null=True)
        body = pw.TextField(null=True)
        created_at = pw.DateTimeField()
        expires_at = pw.DateTimeField()

        class Meta:
            table_name = "idempotency_key"
            indexes = ((("user", "key"), True),)

    migrator.add_fields("notification", read_at=pw.DateTimeField(null=True))
    migrator.add_index("notification", "user", "read_at")
    migrator.add_index("service_request", "updated_at")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.drop_index("service_request", "updated_at")
    migrator.drop_index("notification", "user", "read_at")
    migrator.remove_fields("notification", "read_at")
    migrator.remove_model("idempotency_key")
