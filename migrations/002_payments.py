"""002_payments: a payment belongs to the client who started it, and keeps what happened to it."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        "payment",
        payer=pw.ForeignKeyField(column_name="payer_id", field="id", model=migrator.orm["user"], null=True,
                                 index=True),
        authorization_url=pw.CharField(default="", max_length=500),
        paystack_status=pw.CharField(default="", max_length=20),
        failure_reason=pw.TextField(default=""),
        processed_via=pw.CharField(default="", max_length=10),
        needs_refund=pw.BooleanField(default=False, index=True),
        updated_at=pw.DateTimeField(null=True),
    )


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("payment", "payer", "authorization_url", "paystack_status", "failure_reason",
                           "processed_via", "needs_refund", "updated_at")
