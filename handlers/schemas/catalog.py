"""Category, public serviceman and rating schemas."""

from marshmallow import Schema, fields, validate

from ..inputs import MultiLineText
from .accounts import ServicemanProfileSchema
from .common import Boolean, Integer, PageQuerySchema

EXAMPLE_DESCRIPTION = "Leaking pipes, blocked drains, pumping machines, water heaters and bathroom fittings."


class CategorySchema(Schema):
    id = fields.Integer(dump_only=True, metadata={"example": 1})
    name = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={"example": "Plumbing"})
    description = MultiLineText(
        load_default="", validate=validate.Length(max=2000), metadata={"example": EXAMPLE_DESCRIPTION}
    )
    is_active = fields.Boolean(dump_only=True, metadata={"example": True})


class CategoryUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100), metadata={"example": "Plumbing & Water Heaters"})
    description = MultiLineText(validate=validate.Length(max=2000), metadata={"example": EXAMPLE_DESCRIPTION})
    is_active = Boolean(metadata={"example": True})


ServicemanSchema = ServicemanProfileSchema


class ServicemanOrderingQuerySchema(PageQuerySchema):
    ordering = fields.String(load_default="-rating", validate=validate.OneOf(["-rating", "-jobs_completed"]))


EXAMPLE_REVIEW = "Came on time, found the leak under the sink in minutes and left the kitchen clean."


class RatingSchema(Schema):
    id = fields.Integer(dump_only=True, metadata={"example": 41})
    service_request_id = fields.Integer(dump_only=True, metadata={"example": 1})
    serviceman_id = fields.Integer(dump_only=True, metadata={"example": 3})
    rating = Integer(required=True, validate=validate.Range(min=1, max=5), metadata={"example": 5})
    review = fields.String(load_default="", validate=validate.Length(max=2000), metadata={"example": EXAMPLE_REVIEW})
    created_at = fields.DateTime(dump_only=True)
