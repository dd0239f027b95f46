"""Admin analytics schemas: query parameters and the reports."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models.actions.analytics import TOP_SERVICEMEN_ORDERINGS
from models.service_requests import RequestStatus

from .common import Integer, Money

MAX_TOP = 100


def TopLimit():
    return Integer(
        load_default=10,
        validate=validate.Range(min=1, max=MAX_TOP),
        metadata={"description": f"How many to list, 1 to {MAX_TOP}."},
    )


# "from" is a Python keyword, hence from_dict; the loaded values are named date_from and date_to.
_RevenueRange = Schema.from_dict(
    {
        "from": fields.Date(
            attribute="date_from",
            load_default=None,
            metadata={"description": "First day counted (UTC date of paid_at), inclusive.", "example": "2026-01-01"},
        ),
        "to": fields.Date(
            attribute="date_to",
            load_default=None,
            metadata={"description": "Last day counted (UTC date of paid_at), inclusive.", "example": "2026-11-30"},
        ),
    },
    name="RevenueRange",
)


class RevenueQuerySchema(_RevenueRange):
    @validates_schema
    def ordered_range(self, data, **kwargs):
        start, end = data.get("date_from"), data.get("date_to")
        if start is not None and end is not None and start > end:
            raise ValidationError("The start of the range is after its end.", "from")


class RevenueSplitSchema(Schema):
    """gross - refunds = serviceman_shares + held + paystack_fees + platform_net, to the kobo."""

    booking_fees = Money(required=True, metadata={"example": "184000.00"})
    final_payments = Money(required=True, metadata={"example": "2475000.00"})
    gross = Money(
        required=True,
        metadata={"description": "Verified payments: booking fees plus final payments.", "example": "2659000.00"},
    )
    total = Money(
        required=True, metadata={"description": "The same as gross (kept for older clients).", "example": "2659000.00"}
    )
    refunds = Money(
        required=True,
        metadata={
            "description": "Refunded of those payments (refunds not FAILED, by the UTC date they were opened); the "
            "platform bears them.",
            "example": "36000.00",
        },
    )
    net = Money(required=True, metadata={"description": "gross less refunds.", "example": "2623000.00"})
    paystack_fees = Money(
        required=True,
        metadata={
            "description": "What Paystack kept of the successful payments (its `fees`), also of a payment refunded in "
            "full; payments recorded before fees were stored count 0.",
            "example": "39885.00",
        },
    )
    serviceman_shares = Money(
        required=True,
        metadata={
            "description": "What the final payments of confirmed jobs owe their servicemen: the payout ledger, "
            "whatever its payouts' status.",
            "example": "2200000.00",
        },
    )
    markup = Money(
        required=True,
        metadata={
            "description": "The platform's share of those final payments (the payout ledger's platform_share).",
            "example": "220000.00",
        },
    )
    held = Money(
        required=True,
        metadata={
            "description": "Final payments of jobs not confirmed yet: not split between serviceman and platform until "
            "the job is confirmed.",
            "example": "55000.00",
        },
    )
    platform_net = Money(
        required=True,
        metadata={
            "description": "What the platform keeps: gross - refunds - paystack_fees - serviceman_shares - held.",
            "example": "328115.00",
        },
    )


class MonthRevenueSchema(RevenueSplitSchema):
    month = fields.String(required=True, metadata={"example": "2026-11", "description": "UTC month of paid_at."})


class RevenueSchema(RevenueSplitSchema):
    date_from = fields.Date(data_key="from", allow_none=True, metadata={"example": "2026-01-01"})
    date_to = fields.Date(data_key="to", allow_none=True, metadata={"example": "2026-11-30"})
    currency = fields.String(required=True, metadata={"example": "NGN"})
    by_month = fields.List(
        fields.Nested(MonthRevenueSchema),
        required=True,
        metadata={"description": "Months with verified payments or refunds, oldest first."},
    )


class TopServicemenQuerySchema(Schema):
    by = fields.String(load_default="rating", validate=validate.OneOf(TOP_SERVICEMEN_ORDERINGS))
    limit = TopLimit()
    min_ratings = Integer(
        load_default=3,
        validate=validate.Range(min=0),
        metadata={"description": "by=rating only: servicemen with fewer ratings are left out."},
    )


class TopServicemanSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "The serviceman's user id.", "example": 3})
    full_name = fields.String(required=True, metadata={"example": "Emeka Okafor"})
    rating = Money(required=True, metadata={"example": "4.60"})
    rating_count = fields.Integer(required=True, metadata={"example": 15})
    jobs_completed = fields.Integer(required=True, metadata={"example": 23})


class TopServicemenSchema(Schema):
    by = fields.String(required=True, metadata={"example": "rating"})
    min_ratings = fields.Integer(
        allow_none=True, metadata={"description": "Applied for by=rating; null otherwise.", "example": 3}
    )
    results = fields.List(fields.Nested(TopServicemanSchema), required=True)


class TopCategoriesQuerySchema(Schema):
    limit = TopLimit()


class TopCategorySchema(Schema):
    id = fields.Integer(required=True, metadata={"example": 1})
    name = fields.String(required=True, metadata={"example": "Plumbing"})
    is_active = fields.Boolean(required=True, metadata={"example": True})
    request_count = fields.Integer(required=True, metadata={"example": 142})


class TopCategoriesSchema(Schema):
    results = fields.List(fields.Nested(TopCategorySchema), required=True)


# A month of a busy platform, in RequestStatus.ALL's order (318 in all).
_EXAMPLE_BY_STATUS = dict(zip(RequestStatus.ALL, (12, 9, 14, 6, 8, 3, 5, 4, 11, 7, 216, 23), strict=True))


class RequestStatsSchema(Schema):
    total = fields.Integer(
        required=True, metadata={"description": "Requests not deleted.", "example": sum(_EXAMPLE_BY_STATUS.values())}
    )
    by_status = fields.Dict(
        keys=fields.String(validate=validate.OneOf(RequestStatus.ALL)),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Every status, zeros included.", "example": _EXAMPLE_BY_STATUS},
    )
    assigned_after_payment = fields.Integer(
        required=True,
        metadata={
            "description": "Requests with both a payment_received and a serviceman_assigned event.",
            "example": 281,
        },
    )
    average_seconds_to_assignment = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "Mean seconds from payment_received to the first serviceman_assigned; "
            "null until a request is assigned.",
            "example": 5400.0,
        },
    )
