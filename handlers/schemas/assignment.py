"""Assignment schemas: the admins' queue, assigning and reassigning servicemen, a serviceman declining."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..inputs import MultiLineText
from .common import Boolean, Id, Money
from .service_requests import ServiceRequestSchema

OUTSIDE_CATEGORY = (
    "Assign a serviceman who does not offer the request's category; without it such a serviceman is refused with 422."
)


class AssignSchema(Schema):
    primary_serviceman_id = Id(required=True, metadata={"example": 3})
    backup_serviceman_id = Id(required=True, metadata={"example": 4})
    is_emergency = Boolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Set or clear the emergency flag while assigning; the booking fee, already paid, stays.",
            "example": False,
        },
    )
    confirm_outside_category = Boolean(load_default=False, metadata={"description": OUTSIDE_CATEGORY, "example": False})


class ReassignSchema(Schema):
    primary_serviceman_id = Id(metadata={"example": 4})
    backup_serviceman_id = Id(metadata={"example": 3})
    confirm_outside_category = Boolean(load_default=False, metadata={"description": OUTSIDE_CATEGORY, "example": False})

    @validates_schema
    def someone_named(self, data, **kwargs):
        if data.get("primary_serviceman_id") is None and data.get("backup_serviceman_id") is None:
            raise ValidationError("Name a new primary serviceman, a new backup, or both.", "primary_serviceman_id")


class DeclineSchema(Schema):
    reason = MultiLineText(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "I am on a borehole job in Ikorodu that day and cannot reach Lekki in time."},
    )


class ClientContactSchema(Schema):
    id = fields.Integer(metadata={"example": 2})
    name = fields.String(attribute="full_name", metadata={"example": "Ada Obi"})
    phone = fields.String(metadata={"example": "+234 800 000 0001"})
    email = fields.String(metadata={"example": "client@demo.serviceman.ng"})


class ServicemanLoadSchema(Schema):
    id = fields.Integer(metadata={"example": 3})
    name = fields.String(metadata={"example": "Emeka Okafor"})
    is_available = fields.Boolean(metadata={"example": True})
    active_jobs = fields.Integer(
        metadata={"description": "Requests they are primary or backup on, still open.", "example": 2}
    )


class CategoryNameSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "Plumbing"})


class UnassignedRequestSchema(ServiceRequestSchema):
    # The same fields as a request; redeclared only for examples that fit a request still waiting.
    status = fields.String(metadata={"example": "PENDING_ADMIN_ASSIGNMENT"})
    primary_serviceman_id = fields.Integer(allow_none=True, metadata={"example": None})
    backup_serviceman_id = fields.Integer(allow_none=True, metadata={"example": None})
    estimate_amount = Money(allow_none=True, metadata={"example": None})
    markup_percentage = Money(allow_none=True, metadata={"example": None})
    final_cost = Money(allow_none=True, metadata={"example": None})
    estimate_notes = fields.String(metadata={"example": ""})
    client = fields.Nested(ClientContactSchema)
    preferred_serviceman = fields.Nested(ServicemanLoadSchema, allow_none=True, attribute="preferred_serviceman_load")
    category = fields.Nested(CategoryNameSchema)
    waiting_since = fields.DateTime(
        metadata={
            "description": "When the booking fee was paid (when the request was created if no payment is recorded)."
        }
    )
    waiting_seconds = fields.Integer(metadata={"description": "Seconds since `waiting_since`.", "example": 2700})
