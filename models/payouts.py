"""Paying servicemen: their bank account (a Paystack transfer recipient), the payout each completed
request owes, and every transfer attempt made to settle it."""

from typing import TYPE_CHECKING

import peewee

from models.foundation.clock import utcnow

from .base import MoneyField, TimestampedModel, UTCDateTimeField
from .service_requests import ServiceRequest
from .users import User


class PayoutStatus:
    OWED = "OWED"  # earned, waiting for an admin's approval (again, after a failed attempt)
    APPROVED = "APPROVED"  # approved; the transfer is being sent (or its answer was lost: retried)
    IN_TRANSIT = "IN_TRANSIT"  # Paystack accepted the transfer; the bank has not confirmed it yet
    # Paystack holds the transfer in status `otp` (OTP for transfers is on for the business): an admin
    # enters the OTP Paystack sent to the business's phone (finalize), or turns OTP off and finalizes.
    AWAITING_OTP = "AWAITING_OTP"
    PAID = "PAID"  # transfer.success
    FAILED = "FAILED"  # an attempt's outcome (the payout itself returns to OWED)
    REVERSED = "REVERSED"  # an attempt's outcome (the payout itself returns to OWED)
    ALL = (OWED, APPROVED, AWAITING_OTP, IN_TRANSIT, PAID, FAILED, REVERSED)
    APPROVABLE = (OWED, APPROVED, FAILED, REVERSED)  # APPROVED again: re-send the same reference


# Events on a request's timeline about its payout: the serviceman's pay and bank are no business of
# the client's or the backup's, so only admins see these there (the payee has the ledger and notices).
PAYOUT_EVENTS = ("payout_owed", "payout_approved", "payout_sent", "payout_paid", "payout_failed", "payout_needs_otp")


class PayoutAccount(TimestampedModel):
    """A serviceman's bank account as Paystack resolved it. Only the last four digits are kept: the
    full number lives at Paystack, behind `recipient_code`."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        serviceman_id: int

    serviceman = peewee.ForeignKeyField(User, backref="+", unique=True, on_delete="CASCADE")
    bank_code = peewee.CharField(max_length=20)
    bank_name = peewee.CharField(max_length=100, default="")
    account_last4 = peewee.CharField(max_length=4)
    account_name = peewee.CharField(max_length=200)
    recipient_code = peewee.CharField(max_length=64)
    updated_at = UTCDateTimeField(default=utcnow)

    @property
    def account_number_masked(self) -> str:
        return f"******{self.account_last4}"


class Payout(TimestampedModel):
    """What one completed request owes its primary serviceman (one per request, by the unique index).
    `transfer_reference` is the reference of the current (or next) transfer attempt: generated and
    stored before Paystack is called, so a retry re-sends it and Paystack never pays twice."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        serviceman_id: int
        service_request_id: int
        approved_by_id: int | None

    serviceman = peewee.ForeignKeyField(User, backref="+", index=True)
    service_request = peewee.ForeignKeyField(ServiceRequest, backref="+", unique=True)
    amount = MoneyField()
    platform_share = MoneyField()
    currency = peewee.CharField(max_length=3, default="NGN")
    status = peewee.CharField(max_length=12, default=PayoutStatus.OWED, index=True)
    transfer_reference = peewee.CharField(max_length=100, unique=True)
    approved_by = peewee.ForeignKeyField(User, null=True, backref="+")
    approved_at = UTCDateTimeField(null=True)
    sent_at = UTCDateTimeField(null=True)
    paid_at = UTCDateTimeField(null=True, index=True)
    failure_reason = peewee.TextField(default="")
    updated_at = UTCDateTimeField(default=utcnow)


class PayoutTransfer(TimestampedModel):
    """One attempt to pay a payout through Paystack (kept after it fails or is reversed)."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        payout_id: int

    payout = peewee.ForeignKeyField(Payout, backref="transfers", index=True)
    reference = peewee.CharField(max_length=100, unique=True)
    amount = MoneyField()
    recipient_code = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=12, default=PayoutStatus.APPROVED)
    paystack_status = peewee.CharField(max_length=20, default="")
    transfer_code = peewee.CharField(max_length=64, default="")
    failure_reason = peewee.TextField(default="")
    updated_at = UTCDateTimeField(default=utcnow)
