"""Notification schemas (REST list and websocket pushes share NotificationSchema)."""
from marshmallow import Schema, fields

from .common import EXAMPLE_BOOKING_DATE, PageQuerySchema

# What serviceman #3 is told when request #1 is assigned to him (workers/notification_types.py).
EXAMPLE_ASSIGNED = {
    "serviceman_ids": [3, 4], "primary_serviceman_id": 3, "backup_serviceman_id": 4,
    "primary_name": "Emeka Okafor", "backup_name": "Tunde Adebayo", "service_request_id": 1, "is_emergency": False}


class NotificationSchema(Schema):
    id = fields.Integer(metadata={"example": 305})
    notification_type = fields.String(metadata={"example": "serviceman_assigned"})
    title = fields.String(metadata={
        "example": f"Booking #1: you are assigned to a Plumbing job on {EXAMPLE_BOOKING_DATE}"})
    message = fields.String(metadata={"example": (
        "Client: Ada Obi, +234 800 000 0001. Address: 14 Admiralty Way, Lekki Phase 1, Lagos. Booking date: "
        f"{EXAMPLE_BOOKING_DATE}. The job: Kitchen sink pipe leaking under the cabinet. "
        "Primary: Emeka Okafor; backup: Tunde Adebayo.")})
    service_request_id = fields.Integer(allow_none=True, metadata={"example": 1})
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
