"""Refund schemas: the cancellation quote, the refund resource, manual refunds, list filters."""

from marshmallow import Schema, fields, validate

from models.actions.cancellation import CHOICES, POLICY
from models.refunds import RefundPolicy, RefundStatus

from ..inputs import MultiLineText
from .common import Integer, Money, PageQuerySchema
from .pricing import Amount

# Request #128 (booking fee NGN 2000.00, payment #57) cancelled by the client before assignment.
EXAMPLE_REASON = (
    "Booking cancelled by the client (Found a plumber closer to home). No serviceman has been "
    "assigned yet, so the booking fee is refunded in full: NGN 2000.00."
)

RefundChoice = lambda **kw: fields.String(  # noqa: E731
    load_default=POLICY,
    validate=validate.OneOf(CHOICES),
    metadata={
        "description": "`policy`: the cancellation policy decides. `full_refund` (admins only): everything paid "
        "is refunded (the platform's fault, or no serviceman could be found).",
        "example": POLICY,
    },
    **kw,
)


class CancellationQuoteQuerySchema(Schema):
    refund = RefundChoice()


class CancellationQuoteSchema(Schema):
    refund_amount = Money(required=True, metadata={"example": "2000.00"})
    kept_amount = Money(
        required=True, metadata={"description": "Kept for the servicemen's trouble.", "example": "0.00"}
    )
    paid_amount = Money(
        required=True, metadata={"description": "Verified payments not yet refunded.", "example": "2000.00"}
    )
    currency = fields.String(required=True, metadata={"example": "NGN"})
    policy = fields.String(
        required=True, metadata={"enum": list(RefundPolicy.ALL), "example": RefundPolicy.BEFORE_ASSIGNMENT}
    )
    refund = fields.String(required=True, attribute="choice", metadata={"enum": list(CHOICES), "example": POLICY})
    reason = fields.String(
        required=True,
        metadata={
            "example": "No serviceman has been assigned yet, so the booking fee is refunded in full: NGN 2000.00."
        },
    )


class RefundSchema(Schema):
    id = fields.Integer(metadata={"example": 9})
    payment_id = fields.Integer(metadata={"example": 57})
    service_request_id = fields.Integer(metadata={"example": 128})
    amount = Money(metadata={"example": "2000.00"})
    currency = fields.String(metadata={"example": "NGN"})
    status = fields.String(metadata={"enum": list(RefundStatus.ALL), "example": RefundStatus.PROCESSED})
    reason = fields.String(metadata={"example": EXAMPLE_REASON})
    policy = fields.String(metadata={"enum": list(RefundPolicy.ALL), "example": RefundPolicy.BEFORE_ASSIGNMENT})
    reference = fields.String(
        metadata={"description": "Ours, sent to Paystack as the merchant note.", "example": "SM-R-57-3c9a41e8b05c6a1d"}
    )
    paystack_refund_id = fields.String(allow_none=True, metadata={"example": "3018284"})
    paystack_status = fields.String(metadata={"example": "processed"})
    failure_reason = fields.String(metadata={"example": ""})
    attempts = fields.Integer(metadata={"example": 1})
    requested_by_id = fields.Integer(allow_none=True, metadata={"example": 17})
    created_at = fields.DateTime()
    processed_at = fields.DateTime(allow_none=True, metadata={"example": "2026-11-21T10:02:44+00:00"})


class ManualRefundSchema(Schema):
    amount = Amount(
        load_default=None,
        allow_none=True,
        metadata={"description": "Naira; omitted: all that is left of the payment.", "example": "1500.00"},
    )
    reason = MultiLineText(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "Serviceman arrived three hours late; goodwill refund agreed."},
    )


class RefundListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(RefundStatus.ALL))
    service_request_id = Integer()
    payment_id = Integer()


class CustomerDetailsSchema(Schema):
    """The customer's bank account for a refund Paystack cannot return on its own (NEEDS_BANK)."""

    bank_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9A-Za-z]{1,20}$", error="Not a bank code."),
        metadata={"description": "Paystack's code for the bank (GET /api/banks/).", "example": "058"},
    )
    account_number = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{10}$", error="A NUBAN account number has 10 digits."),
        metadata={"description": "Sent to Paystack only; never stored.", "example": "0123456789"},
    )
