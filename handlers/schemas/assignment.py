"""Assignment schemas: the admins' queue, assigning and reassigning servicemen, a serviceman declining."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .common import Id
from .service_requests import ServiceRequestSchema

OUTSIDE_CATEGORY = ("Assign a serviceman who does not offer the request's category; without it such a "
                    "serviceman is refused with 422.")


class AssignSchema(Schema):
    primary_serviceman_id = Id(required=True)
    backup_serviceman_id = Id(required=True)
    is_emergency = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Set or clear the emergency flag while assigning; the booking fee, already paid, stays."})
    confirm_outside_category = fields.Boolean(load_default=False, metadata={"description": OUTSIDE_CATEGORY})


class ReassignSchema(Schema):
    primary_serviceman_id = Id()
    backup_serviceman_id = Id()
    confirm_outside_category = fields.Boolean(load_default=False, metadata={"description": OUTSIDE_CATEGORY})

    @validates_schema
    def someone_named(self, data, **kwargs):
        if data.get("primary_serviceman_id") is None and data.get("backup_serviceman_id") is None:
            raise ValidationError("Name a new primary serviceman, a new backup, or both.", "primary_serviceman_id")


class DeclineSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ClientContactSchema(Schema):
    id = fields.Integer()
    name = fields.String(attribute="full_name")
    phone = fields.String()
    email = fields.String()


class ServicemanLoadSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    is_available = fields.Boolean()
    active_jobs = fields.Integer(metadata={"description": "Requests they are primary or backup on, still open."})


class CategoryNameSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class UnassignedRequestSchema(ServiceRequestSchema):
    client = fields.Nested(ClientContactSchema)
    preferred_serviceman = fields.Nested(ServicemanLoadSchema, allow_none=True,
                                         attribute="preferred_serviceman_load")
    category = fields.Nested(CategoryNameSchema)
    waiting_since = fields.DateTime(metadata={
        "description": "When the booking fee was paid (when the request was created if no payment is recorded)."})
    waiting_seconds = fields.Integer(metadata={"description": "Seconds since `waiting_since`."})
