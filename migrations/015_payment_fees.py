"""015_payment_fees: what Paystack kept of each payment (`data.fees` of verify and charge.success,
stored in naira). Payments verified before this migration have none recorded: NULL, counted as 0
in the revenue analytics (the README says so)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("payment", paystack_fees=pw.DecimalField(auto_round=True, decimal_places=2, max_digits=14,
                                                                 null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("payment", "paystack_fees")
