"""Refunds: money given back to a client through Paystack's Refund API.

"Never twice" is the database's job, not the caller's: a payment has at most one refund per cause
(a unique index on payment and cause; manual refunds have no cause and may be several), and every
refund is opened under a row lock on its payment after checking that the payment's refunds, this one
included, add up to no more than was paid.
"""

from typing import TYPE_CHECKING

import peewee

from models.foundation.clock import utcnow

from .base import MoneyField, TimestampedModel, UTCDateTimeField
from .money import Payment
from .service_requests import ServiceRequest
from .users import User


class RefundStatus:
    PENDING = "PENDING"  # opened; asked of Paystack (or about to be), not yet being processed
    PROCESSING = "PROCESSING"  # Paystack is processing it
    PROCESSED = "PROCESSED"  # the money is back with the client
    FAILED = "FAILED"  # Paystack refused or gave up: admins are told, and may retry
    # Paystack's `needs-attention`: it could not return the money to the card or account that paid and
    # needs the customer's bank account (an admin collects it and retries with those details).
    NEEDS_BANK = "NEEDS_BANK"
    ALL = (PENDING, PROCESSING, PROCESSED, FAILED, NEEDS_BANK)
    OPEN = (PENDING, PROCESSING)


class RefundPolicy:
    """Which rule decided the amount (stored on the refund and on the cancellation event)."""

    NOTHING_PAID = "nothing_paid"
    BEFORE_ASSIGNMENT = "before_assignment"  # the booking fee in full
    AFTER_ASSIGNMENT = "after_assignment"  # the fee less the share kept for the servicemen
    FULL_REFUND = "full_refund"  # an admin refunds everything (the platform's fault)
    UNUSABLE_PAYMENT = "unusable_payment"  # paid after cancellation, or paid twice: all of it
    MANUAL = "manual"  # an admin's refund of a verified payment, with a reason
    ALL = (NOTHING_PAID, BEFORE_ASSIGNMENT, AFTER_ASSIGNMENT, FULL_REFUND, UNUSABLE_PAYMENT, MANUAL)


class RefundCause:
    """At most one refund per payment and cause (NULL, for manual refunds, never clashes)."""

    CANCELLATION = "cancellation"
    UNUSABLE_PAYMENT = "unusable_payment"


class Refund(TimestampedModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        payment_id: int
        service_request_id: int
        requested_by_id: int | None

    payment = peewee.ForeignKeyField(Payment, backref="refunds", index=True)
    service_request = peewee.ForeignKeyField(ServiceRequest, backref="refunds", index=True)
    amount = MoneyField(constraints=[peewee.Check("amount > 0")])
    currency = peewee.CharField(max_length=3, default="NGN")
    status = peewee.CharField(max_length=10, default=RefundStatus.PENDING, index=True)
    cause = peewee.CharField(max_length=20, null=True)
    policy = peewee.CharField(max_length=20)
    reason = peewee.TextField(default="")
    requested_by = peewee.ForeignKeyField(User, null=True, backref="+")
    # Ours, made before Paystack is first asked and sent as its merchant note: after a timeout the
    # retry finds the refund Paystack may already have made instead of making a second one.
    reference = peewee.CharField(max_length=100, unique=True)
    paystack_refund_id = peewee.CharField(max_length=40, null=True, index=True)
    paystack_status = peewee.CharField(max_length=20, default="")
    attempts = peewee.IntegerField(default=0)
    asked_at = UTCDateTimeField(null=True)  # Paystack was asked (the answer may have been lost)
    submitted_at = UTCDateTimeField(null=True)  # Paystack accepted it
    processed_at = UTCDateTimeField(null=True, index=True)
    failure_reason = peewee.TextField(default="")
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("payment", "cause"), True),)
