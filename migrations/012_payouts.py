"""012_payouts: servicemen's bank accounts (masked), the payout ledger and its transfer attempts."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class PayoutAccount(pw.Model):
        id = pw.AutoField()
        created_at = pw.DateTimeField(index=True)
        serviceman = pw.ForeignKeyField(column_name="serviceman_id", field="id", model=migrator.orm["user"],
                                        on_delete="CASCADE", unique=True)
        bank_code = pw.CharField(max_length=20)
        bank_name = pw.CharField(default="", max_length=100)
        account_last4 = pw.CharField(max_length=4)
        account_name = pw.CharField(max_length=200)
        recipient_code = pw.CharField(max_length=64)
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "payout_account"

    @migrator.create_model
    class Payout(pw.Model):
        id = pw.AutoField()
        created_at = pw.DateTimeField(index=True)
        serviceman = pw.ForeignKeyField(column_name="serviceman_id", field="id", model=migrator.orm["user"],
                                        index=True)
        service_request = pw.ForeignKeyField(column_name="service_request_id", field="id",
                                             model=migrator.orm["service_request"], unique=True)
        amount = pw.DecimalField(auto_round=True, decimal_places=2, max_digits=14)
        platform_share = pw.DecimalField(auto_round=True, decimal_places=2, max_digits=14)
        currency = pw.CharField(default="NGN", max_length=3)
        status = pw.CharField(default="OWED", index=True, max_length=12)
        transfer_reference = pw.CharField(max_length=100, unique=True)
        approved_by = pw.ForeignKeyField(column_name="approved_by_id", field="id", model=migrator.orm["user"],
                                         null=True)
        approved_at = pw.DateTimeField(null=True)
        sent_at = pw.DateTimeField(null=True)
        paid_at = pw.DateTimeField(null=True, index=True)
        failure_reason = pw.TextField(default="")
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "payout"

    @migrator.create_model
    class PayoutTransfer(pw.Model):
        id = pw.AutoField()
        created_at = pw.DateTimeField(index=True)
        payout = pw.ForeignKeyField(column_name="payout_id", field="id", model=migrator.orm["payout"], index=True)
        reference = pw.CharField(max_length=100, unique=True)
        amount = pw.DecimalField(auto_round=True, decimal_places=2, max_digits=14)
        recipient_code = pw.CharField(max_length=64)
        status = pw.CharField(default="APPROVED", max_length=12)
        paystack_status = pw.CharField(default="", max_length=20)
        transfer_code = pw.CharField(default="", max_length=64)
        failure_reason = pw.TextField(default="")
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "payout_transfer"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("payout_transfer")
    migrator.remove_model("payout")
    migrator.remove_model("payout_account")
