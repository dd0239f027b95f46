"""Booking schemas: quotes, creating/editing requests, the request resource, its timeline."""

from marshmallow import Schema, fields, validate

from models.service_requests import RequestStatus

from ..inputs import MultiLineText
from .common import EXAMPLE_BOOKING_DATE, Boolean, Id, Money, PageQuerySchema
from .notifications import EXAMPLE_ASSIGNED

Text = lambda **kw: fields.String(validate=validate.Length(min=1, max=2000), **kw)  # noqa: E731
LongText = lambda **kw: MultiLineText(validate=validate.Length(min=1, max=2000), **kw)  # noqa: E731

# Request #1: client #2 books serviceman #3 (plumbing, category #1) in Lekki, two weeks ahead.
EXAMPLE_DATE = EXAMPLE_BOOKING_DATE
EXAMPLE_ADDRESS = "14 Admiralty Way, Lekki Phase 1, Lagos"
EXAMPLE_DESCRIPTION = "Kitchen sink pipe leaking under the cabinet; the tap no longer shuts off fully."


class QuoteQuerySchema(Schema):
    booking_date = fields.Date(required=True)
    is_emergency = fields.Boolean(load_default=None, allow_none=True)


class QuoteSchema(Schema):
    booking_date = fields.Date(metadata={"example": EXAMPLE_DATE})
    is_emergency = fields.Boolean(metadata={"example": False})
    auto_flagged_emergency = fields.Boolean(metadata={"example": False})
    booking_fee = Money(metadata={"example": "2000.00"})
    currency = fields.Constant("NGN")


class RequestCreateSchema(Schema):
    category_id = Id(required=True, metadata={"example": 1})
    serviceman_id = Id(load_default=None, allow_none=True, metadata={"example": 3})
    booking_date = fields.Date(required=True, metadata={"example": EXAMPLE_DATE})
    address = Text(required=True, metadata={"example": EXAMPLE_ADDRESS})
    description = LongText(required=True, metadata={"example": EXAMPLE_DESCRIPTION})
    is_emergency = Boolean(load_default=None, allow_none=True, metadata={"example": False})


class RequestUpdateSchema(Schema):
    booking_date = fields.Date(metadata={"example": EXAMPLE_DATE})
    is_emergency = Boolean(metadata={"example": False})
    address = Text(metadata={"example": "14 Admiralty Way, Lekki Phase 1, Lagos (gate 2, ask for Mrs Obi)"})
    description = LongText(metadata={"example": EXAMPLE_DESCRIPTION})


class ServiceRequestSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    status = fields.String(metadata={"example": "AWAITING_CLIENT_APPROVAL"})
    client_id = fields.Integer(metadata={"example": 2})
    category_id = fields.Integer(metadata={"example": 1})
    preferred_serviceman_id = fields.Integer(allow_none=True, metadata={"example": 3})
    primary_serviceman_id = fields.Integer(allow_none=True, metadata={"example": 3})
    backup_serviceman_id = fields.Integer(allow_none=True, metadata={"example": 4})
    booking_date = fields.Date(metadata={"example": EXAMPLE_DATE})
    address = fields.String(metadata={"example": EXAMPLE_ADDRESS})
    description = fields.String(metadata={"example": EXAMPLE_DESCRIPTION})
    is_emergency = fields.Boolean(metadata={"example": False})
    auto_flagged_emergency = fields.Boolean(metadata={"example": False})
    booking_fee = Money(metadata={"example": "2000.00"})
    estimate_amount = Money(allow_none=True, metadata={"example": "15000.00"})
    estimate_notes = fields.String(
        metadata={
            "example": "Corroded PVC joint under the kitchen sink and a worn tap cartridge; price covers both parts."
        }
    )
    markup_percentage = Money(allow_none=True, metadata={"example": "10.00"})
    final_cost = Money(allow_none=True, metadata={"example": "16500.00"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class RequestWithWarningsSchema(ServiceRequestSchema):
    """A request just booked or assigned, with what the caller should know about the servicemen chosen."""

    warnings = fields.List(
        fields.String(),
        dump_only=True,
        dump_default=list,
        metadata={
            "description": "Why the chosen servicemen may be slow to respond (unavailable, busy); empty when none.",
            "example": ["The preferred serviceman is not available at the moment."],
        },
    )


class RequestListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(RequestStatus.ALL))
    is_emergency = fields.Boolean()


class EventSchema(Schema):
    id = fields.Integer(metadata={"example": 512})
    type = fields.String(metadata={"example": "serviceman_assigned"})
    actor_id = fields.Integer(allow_none=True, metadata={"example": 1})
    from_status = fields.String(allow_none=True, metadata={"example": "PENDING_ADMIN_ASSIGNMENT"})
    to_status = fields.String(allow_none=True, metadata={"example": "ASSIGNED"})
    payload = fields.Dict(metadata={"example": EXAMPLE_ASSIGNED})
    created_at = fields.DateTime()


class CancelSchema(Schema):
    reason = MultiLineText(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"example": "Found a plumber closer to home; no longer needed."},
    )
    refund = fields.String(
        load_default="policy",
        validate=validate.OneOf(("policy", "full_refund")),
        metadata={
            "description": "`policy` (default): the cancellation policy decides the refund (see "
            "/cancellation-quote/). `full_refund`, admins only: everything paid is refunded.",
            "example": "policy",
        },
    )


class EmergencySchema(Schema):
    is_emergency = Boolean(required=True, metadata={"example": True})
