"""Category, public serviceman and rating schemas."""
from marshmallow import Schema, fields, validate

from .accounts import ServicemanProfileSchema
from .common import Integer, PageQuerySchema


class CategorySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    is_active = fields.Boolean(dump_only=True)


class CategoryUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(validate=validate.Length(max=2000))
    is_active = fields.Boolean()


ServicemanSchema = ServicemanProfileSchema


class ServicemanOrderingQuerySchema(PageQuerySchema):
    ordering = fields.String(load_default="-rating", validate=validate.OneOf(["-rating", "-jobs_completed"]))


class RatingSchema(Schema):
    id = fields.Integer(dump_only=True)
    service_request_id = fields.Integer(dump_only=True)
    serviceman_id = fields.Integer(dump_only=True)
    rating = Integer(required=True, validate=validate.Range(min=1, max=5))
    review = fields.String(load_default="", validate=validate.Length(max=2000))
    created_at = fields.DateTime(dump_only=True)
