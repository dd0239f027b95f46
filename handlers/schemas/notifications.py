"""Notification schemas (REST list and websocket pushes share NotificationSchema)."""
from marshmallow import Schema, fields

from .common import PageQuerySchema


class NotificationSchema(Schema):
    id = fields.Integer()
    notification_type = fields.String()
    title = fields.String()
    message = fields.String()
    service_request_id = fields.Integer(allow_none=True)
    payload = fields.Dict()
    is_read = fields.Boolean()
    sent_to_email = fields.Boolean()
    email_sent_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class NotificationListQuerySchema(PageQuerySchema):
    is_read = fields.Boolean()


class UnreadCountSchema(Schema):
    count = fields.Integer(required=True)


class MarkedSchema(Schema):
    updated = fields.Integer(required=True)
    count = fields.Integer(required=True, metadata={"description": "unread count after the change"})
