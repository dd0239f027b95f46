"""Notification schemas. NotificationSchema is the domain's (models/actions/notifications.py): the REST
list and the websocket pushes, sent by the web process and the pipeline alike, share it."""

from marshmallow import Schema, fields

from models.actions.notifications import EXAMPLE_ASSIGNED, NotificationSchema  # noqa: F401 (re-exported)

from .common import PageQuerySchema


class NotificationListQuerySchema(PageQuerySchema):
    is_read = fields.Boolean()


class UnreadCountSchema(Schema):
    count = fields.Integer(required=True, metadata={"example": 3})


class MarkedSchema(Schema):
    updated = fields.Integer(required=True, metadata={"example": 3})
    count = fields.Integer(required=True, metadata={"description": "unread count after the change", "example": 0})
