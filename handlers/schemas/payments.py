"""Payment schemas: initialize, the payment resource, list filters."""

from marshmallow import Schema, fields, validate

from models.money import PaymentStatus, PaymentType

from .common import Id, Integer, Money, PageQuerySchema

# Request #1's booking fee (models/actions/payments.py makes the reference; Paystack the code).
EXAMPLE_REFERENCE = "SM-1-B-9f3c2a7d41e8b05c6a1d"
EXAMPLE_ACCESS_CODE = "0peioxfhpn7kq2d"


class InitializeSchema(Schema):
    service_request_id = Id(required=True, metadata={"example": 1})
    payment_type = fields.String(
        required=True, validate=validate.OneOf(PaymentType.ALL), metadata={"example": PaymentType.BOOKING_FEE}
    )


class CheckoutSchema(Schema):
    authorization_url = fields.String(
        required=True,
        metadata={
            "description": "Send the client here to pay.",
            "example": f"https://checkout.paystack.com/{EXAMPLE_ACCESS_CODE}",
        },
    )
    access_code = fields.String(
        required=True, attribute="paystack_access_code", metadata={"example": EXAMPLE_ACCESS_CODE}
    )
    reference = fields.String(required=True, attribute="paystack_reference", metadata={"example": EXAMPLE_REFERENCE})
    amount = Money(required=True, metadata={"description": "Naira, computed by the server.", "example": "2000.00"})
    currency = fields.String(required=True, metadata={"example": "NGN"})
    payment_id = fields.Integer(required=True, attribute="id", metadata={"example": 57})
    status = fields.String(required=True, metadata={"example": PaymentStatus.PENDING})


class PaymentSchema(Schema):
    id = fields.Integer(metadata={"example": 57})
    service_request_id = fields.Integer(metadata={"example": 1})
    payment_type = fields.String(metadata={"enum": list(PaymentType.ALL), "example": PaymentType.BOOKING_FEE})
    amount = Money(metadata={"example": "2000.00"})
    currency = fields.String(metadata={"example": "NGN"})
    paystack_reference = fields.String(metadata={"example": EXAMPLE_REFERENCE})
    status = fields.String(metadata={"enum": list(PaymentStatus.ALL), "example": PaymentStatus.SUCCESS})
    paid_at = fields.DateTime(allow_none=True, metadata={"example": "2026-11-20T09:34:12+00:00"})
    created_at = fields.DateTime()
    needs_refund = fields.Boolean(
        metadata={
            "description": "Paid but unusable (request cancelled or already paid): to be refunded.",
            "example": False,
        }
    )


class PaymentListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(PaymentStatus.ALL))
    payment_type = fields.String(validate=validate.OneOf(PaymentType.ALL))
    service_request_id = Integer()


class WebhookAckSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
