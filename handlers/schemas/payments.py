"""Payment schemas: initialize, the payment resource, list filters."""
from marshmallow import Schema, fields, validate

from models.money import PaymentStatus, PaymentType

from .common import Id, Integer, Money, PageQuerySchema


class InitializeSchema(Schema):
    service_request_id = Id(required=True)
    payment_type = fields.String(required=True, validate=validate.OneOf(PaymentType.ALL))


class CheckoutSchema(Schema):
    authorization_url = fields.String(required=True, metadata={"description": "Send the client here to pay."})
    access_code = fields.String(required=True, attribute="paystack_access_code")
    reference = fields.String(required=True, attribute="paystack_reference")
    amount = Money(required=True, metadata={"description": "Naira, computed by the server."})
    currency = fields.String(required=True, metadata={"example": "NGN"})
    payment_id = fields.Integer(required=True, attribute="id")
    status = fields.String(required=True)


class PaymentSchema(Schema):
    id = fields.Integer()
    service_request_id = fields.Integer()
    payment_type = fields.String(metadata={"enum": list(PaymentType.ALL)})
    amount = Money()
    currency = fields.String()
    paystack_reference = fields.String()
    status = fields.String(metadata={"enum": list(PaymentStatus.ALL)})
    paid_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    needs_refund = fields.Boolean(metadata={"description": "Paid but unusable (request cancelled or already "
                                                           "paid): to be refunded."})


class PaymentListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(PaymentStatus.ALL))
    payment_type = fields.String(validate=validate.OneOf(PaymentType.ALL))
    service_request_id = Integer()


class WebhookAckSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
