"""GET /api/sync/: the mobile apps' one-request catch-up (models/actions/sync.py)."""

from marshmallow import Schema, fields, validate

from .common import Integer, Money
from .notifications import NotificationSchema

MAX_WAIT = 25  # seconds: under the 30 s request timeout of Heroku-style routers


class SyncQuerySchema(Schema):
    since = fields.String(
        validate=validate.Length(min=1, max=40_000),
        metadata={
            "description": "The `cursor` of the previous answer; leave out for a snapshot (or send the cursor "
            "only as If-None-Match, which stands in for it).",
            "example": "1.lwx0q2bk4g",
        },
    )
    wait = Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_WAIT),
        metadata={"description": "Long-poll: hold the request up to this many seconds until something changes."},
    )


class SyncRequestSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    status = fields.String(metadata={"example": "ASSIGNED"})
    updated_at = fields.DateTime()
    booking_date = fields.Date()
    is_emergency = fields.Boolean(metadata={"example": False})
    booking_fee = Money(metadata={"example": "2000.00"})
    estimate_amount = Money(allow_none=True, metadata={"example": "15000.00"})
    final_cost = Money(allow_none=True, metadata={"example": "16500.00"})
    is_deleted = fields.Boolean(metadata={"example": False})


class SyncSchema(Schema):
    cursor = fields.String(
        required=True,
        metadata={
            "description": "Opaque; send it back on the next call as If-None-Match (or as `since`).",
            "example": "1.lwx0q2bk4g",
        },
    )
    notifications = fields.List(
        fields.Nested(NotificationSchema), required=True, metadata={"description": "New notifications, oldest first."}
    )
    read = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "Ids of notifications that became read (on any device).", "example": [301, 302]},
    )
    unread_count = fields.Integer(required=True, metadata={"example": 3})
    requests = fields.List(
        fields.Nested(SyncRequestSchema),
        required=True,
        metadata={"description": "Bookings whose status, money or dates changed (without `since`: the open ones)."},
    )
    has_more = fields.Boolean(
        required=True,
        metadata={"description": "More changes are waiting: call again at once with the new cursor.", "example": False},
    )
