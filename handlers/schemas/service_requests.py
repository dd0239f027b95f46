"""Booking schemas: quotes, creating/editing requests, the request resource, its timeline."""
from marshmallow import Schema, fields, validate

from models.service_requests import RequestStatus

from .common import Id, Money, PageQuerySchema

Text = lambda **kw: fields.String(validate=validate.Length(min=1, max=2000), **kw)  # noqa: E731


class QuoteQuerySchema(Schema):
    booking_date = fields.Date(required=True)
    is_emergency = fields.Boolean(load_default=None, allow_none=True)


class QuoteSchema(Schema):
    booking_date = fields.Date()
    is_emergency = fields.Boolean()
    auto_flagged_emergency = fields.Boolean()
    booking_fee = Money()
    currency = fields.Constant("NGN")


class RequestCreateSchema(Schema):
    category_id = Id(required=True)
    serviceman_id = Id(load_default=None, allow_none=True)
    booking_date = fields.Date(required=True)
    address = Text(required=True)
    description = Text(required=True)
    is_emergency = fields.Boolean(load_default=None, allow_none=True)


class RequestUpdateSchema(Schema):
    booking_date = fields.Date()
    is_emergency = fields.Boolean()
    address = Text()
    description = Text()


class ServiceRequestSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    client_id = fields.Integer()
    category_id = fields.Integer()
    preferred_serviceman_id = fields.Integer(allow_none=True)
    primary_serviceman_id = fields.Integer(allow_none=True)
    backup_serviceman_id = fields.Integer(allow_none=True)
    booking_date = fields.Date()
    address = fields.String()
    description = fields.String()
    is_emergency = fields.Boolean()
    auto_flagged_emergency = fields.Boolean()
    booking_fee = Money()
    estimate_amount = Money(allow_none=True)
    estimate_notes = fields.String()
    markup_percentage = Money(allow_none=True)
    final_cost = Money(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class RequestWithWarningsSchema(ServiceRequestSchema):
    """A request just booked or assigned, with what the caller should know about the servicemen chosen."""

    warnings = fields.List(fields.String(), dump_only=True, dump_default=list, metadata={
        "description": "Why the chosen servicemen may be slow to respond (unavailable, busy); empty when none.",
        "example": ["The preferred serviceman is not available at the moment."]})


class RequestListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(RequestStatus.ALL))
    is_emergency = fields.Boolean()


class EventSchema(Schema):
    id = fields.Integer()
    type = fields.String()
    actor_id = fields.Integer(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    payload = fields.Dict()
    created_at = fields.DateTime()


class CancelSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class EmergencySchema(Schema):
    is_emergency = fields.Boolean(required=True)
