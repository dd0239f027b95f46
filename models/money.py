"""Payments, price negotiations and ratings, and the one rule that splits an agreed price."""

from decimal import Decimal
from typing import TYPE_CHECKING

import peewee

from .base import JSONField, MoneyField, TimestampedModel, UTCDateTimeField
from .service_requests import ServiceRequest
from .users import User

ZERO = Decimal("0.00")


def split_agreed_price(estimate: Decimal | None, agreed_price: Decimal) -> tuple[Decimal, Decimal]:
    """(serviceman's amount, platform's share) of the price the client agreed to pay for the work.

    The money rule, the only place it is written: the serviceman is paid the estimate they submitted
    and the platform keeps what the client agreed to pay above it. A negotiated discount therefore
    comes out of the platform's markup first; only a price agreed below the estimate itself (the
    admins consult the serviceman before accepting one) pays the serviceman that lower price, and
    then the platform keeps nothing. The platform's share is never negative, the serviceman never
    gets more than the client paid, and the two always add up to the agreed price to the kobo.
    No estimate (never inspected): the whole price is the serviceman's."""
    if estimate is None:
        return agreed_price, ZERO
    amount = min(estimate, agreed_price)
    return amount, agreed_price - amount


class PaymentType:
    BOOKING_FEE = "BOOKING_FEE"
    FINAL_PAYMENT = "FINAL_PAYMENT"
    ALL = (BOOKING_FEE, FINAL_PAYMENT)


class PaymentStatus:
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    REVIEW = "REVIEW"  # Paystack says paid, but the amount or currency disagrees with ours
    ALL = (PENDING, SUCCESS, FAILED, REVIEW)


class PaymentSource:
    """Who told us the outcome of a payment."""

    WEBHOOK = "webhook"
    VERIFY = "verify"
    RECONCILE = "reconcile"


class Payment(TimestampedModel):
    """One attempt to take one amount through Paystack, owned by the client who started it.
    `amount` is what we expect to be paid; Paystack's answer must match it to the kobo."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        service_request_id: int
        payer_id: int | None

    service_request = peewee.ForeignKeyField(ServiceRequest, backref="payments", index=True)
    payer = peewee.ForeignKeyField(User, backref="payments", null=True, index=True)
    payment_type = peewee.CharField(max_length=20)
    amount = MoneyField()
    currency = peewee.CharField(max_length=3, default="NGN")
    paystack_reference = peewee.CharField(max_length=100, unique=True)
    paystack_access_code = peewee.CharField(max_length=100, default="")
    authorization_url = peewee.CharField(max_length=500, default="")
    status = peewee.CharField(max_length=10, default=PaymentStatus.PENDING, index=True)
    paid_at = UTCDateTimeField(null=True, index=True)
    metadata = JSONField(default=dict)
    # What happened, for people reading the row: Paystack's last word, errors, who processed it.
    paystack_status = peewee.CharField(max_length=20, default="")
    failure_reason = peewee.TextField(default="")
    processed_via = peewee.CharField(max_length=10, default="")
    # Money we hold but must give back (paid after a cancellation, or paid twice): issue 11 refunds it.
    needs_refund = peewee.BooleanField(default=False, index=True)
    # What Paystack kept of it (its `fees`, in naira), recorded with the success; NULL when Paystack
    # did not say (payments verified before this was recorded). Refunds do not give fees back.
    paystack_fees = MoneyField(null=True)
    updated_at = UTCDateTimeField(null=True)


class NegotiationStatus:
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    COUNTERED = "COUNTERED"
    ALL = (PENDING, ACCEPTED, REJECTED, COUNTERED)


class PriceNegotiation(TimestampedModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        service_request_id: int
        proposed_by_id: int

    service_request = peewee.ForeignKeyField(ServiceRequest, backref="negotiations", index=True)
    proposed_by = peewee.ForeignKeyField(User, backref="+")
    proposed_amount = MoneyField()
    message = peewee.TextField(default="")
    status = peewee.CharField(max_length=10, default=NegotiationStatus.PENDING)


class Rating(TimestampedModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        service_request_id: int
        serviceman_id: int
        client_id: int

    service_request = peewee.ForeignKeyField(ServiceRequest, backref="ratings", unique=True)
    serviceman = peewee.ForeignKeyField(User, backref="ratings_received", index=True)
    client = peewee.ForeignKeyField(User, backref="+")
    rating = peewee.SmallIntegerField(constraints=[peewee.Check("rating BETWEEN 1 AND 5")])
    review = peewee.TextField(default="")
