"""011_refunds: refunds through Paystack, at most one per payment and cause (issue 11)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class Refund(pw.Model):
        id = pw.AutoField()
        created_at = pw.DateTimeField(index=True)
        payment = pw.ForeignKeyField(column_name="payment_id", field="id", model=migrator.orm["payment"], index=True)
        service_request = pw.ForeignKeyField(column_name="service_request_id", field="id",
                                             model=migrator.orm["service_request"], index=True)
        amount = pw.DecimalField(auto_round=True, decimal_places=2, max_digits=14,
                                 constraints=[pw.Check("amount > 0")])
        currency = pw.CharField(default="NGN", max_length=3)
        status = pw.CharField(default="PENDING", index=True, max_length=10)
        cause = pw.CharField(max_length=20, null=True)
        policy = pw.CharField(max_length=20)
        reason = pw.TextField(default="")
        requested_by = pw.ForeignKeyField(column_name="requested_by_id", field="id", model=migrator.orm["user"],
                                          null=True)
        reference = pw.CharField(max_length=100, unique=True)
        paystack_refund_id = pw.CharField(max_length=40, null=True, index=True)
        paystack_status = pw.CharField(default="", max_length=20)
        attempts = pw.IntegerField(default=0)
        asked_at = pw.DateTimeField(null=True)
        submitted_at = pw.DateTimeField(null=True)
        processed_at = pw.DateTimeField(index=True, null=True)
        failure_reason = pw.TextField(default="")
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "refund"
            indexes = [(("payment", "cause"), True)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("refund")
