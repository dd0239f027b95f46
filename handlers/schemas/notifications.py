"""Notification schemas (REST list and websocket pushes share NotificationSchema)."""
from marshmallow import Schema, fields

from .common import PageQuerySchema

# What serviceman #12 is told when request #128 is assigned to him (workers/notification_types.py).
EXAMPLE_ASSIGNED = {
    "serviceman_ids": [12, 14], "primary_serviceman_id": 12, "backup_serviceman_id": 14,
    "primary_name": "Emeka Okonkwo", "backup_name": "Tunde Bakare", "service_request_id": 128, "is_emergency": False}


class NotificationSchema(Schema):
    id = fields.Integer(metadata={"example": 305})
    notification_type = fields.String(metadata={"example": "serviceman_assigned"})
    title = fields.String(metadata={"example": "Booking #128: you are assigned to a Plumbing job on 2026-12-10"})
    message = fields.String(metadata={"example": (
        "Client: Chiamaka Obi, +234 803 555 0142. Address: 14 Admiralty Way, Lekki Phase 1, Lagos. Booking date: "
        "2026-12-10. The job: Kitchen sink pipe leaking under the cabinet. Primary: Emeka Okonkwo; backup: "
        "Tunde Bakare.")})
    service_request_id = fields.Integer(allow_none=True, metadata={"example": 128})
    payload = fields.Dict(metadata={"example": EXAMPLE_ASSIGNED})
    is_read = fields.Boolean(metadata={"example": False})
    sent_to_email = fields.Boolean(metadata={"example": True})
    email_sent_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class NotificationListQuerySchema(PageQuerySchema):
    is_read = fields.Boolean()


class UnreadCountSchema(Schema):
    count = fields.Integer(required=True, metadata={"example": 3})


class MarkedSchema(Schema):
    updated = fields.Integer(required=True, metadata={"example": 3})
    count = fields.Integer(required=True, metadata={"description": "unread count after the change", "example": 0})
