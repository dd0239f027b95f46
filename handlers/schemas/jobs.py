"""Job schemas: rating a job, the serviceman's job list and stats."""

from marshmallow import Schema, fields, validate

from models.service_requests import RequestStatus

from ..inputs import MultiLineText
from .catalog import EXAMPLE_REVIEW
from .common import Integer, Money, PageQuerySchema
from .service_requests import ServiceRequestSchema


class RatingCreateSchema(Schema):
    rating = Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=5),
        metadata={"description": "Whole stars, 1 to 5.", "example": 5},
    )
    review = MultiLineText(load_default="", validate=validate.Length(max=2000), metadata={"example": EXAMPLE_REVIEW})


class JobListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(RequestStatus.ALL))
    is_emergency = fields.Boolean()


class JobSchema(ServiceRequestSchema):
    role = fields.String(
        metadata={"enum": ["primary", "backup"], "description": "The caller's part in this job.", "example": "primary"}
    )


def _rating(**kwargs):
    return Money(
        allow_none=True,
        metadata={"description": "Average stars, two places; null without ratings.", "example": "4.60"},
        **kwargs,
    )


class PeriodStatsSchema(Schema):
    jobs_completed = fields.Integer(
        metadata={"description": "COMPLETED jobs the caller was primary on.", "example": 23}
    )
    earnings = Money(
        metadata={
            "description": "What those jobs earned the caller (naira): the sum of their payouts "
            "in the ledger (GET /api/serviceman/payouts/), split by the money rule.",
            "example": "345000.00",
        }
    )
    average_rating = _rating()
    rating_count = fields.Integer(metadata={"example": 15})


class MonthStatsSchema(PeriodStatsSchema):
    month = fields.String(
        metadata={"description": "The current month on the platform's calendar (TIME_ZONE).", "example": "2026-07"}
    )


class ServicemanStatsSchema(Schema):
    currency = fields.String(metadata={"example": "NGN"})
    completion_rate = Money(
        allow_none=True,
        metadata={
            "description": "Percent of the caller's ended primary jobs that were completed: COMPLETED ÷ (COMPLETED + "
            "CANCELLED after assignment) × 100, two places; null until a job has ended. Jobs still "
            "active are not counted either way.",
            "example": "80.00",
        },
    )
    cancelled_jobs = fields.Integer(
        metadata={"description": "Jobs cancelled after the caller was assigned primary.", "example": 1}
    )
    active_jobs = fields.Integer(
        metadata={"description": "Primary jobs from ASSIGNED to COMPLETED_BY_SERVICEMAN.", "example": 2}
    )
    earnings_owed = Money(
        metadata={"description": "Earned, not sent yet (payouts OWED or APPROVED).", "example": "20000.00"}
    )
    earnings_in_transit = Money(
        metadata={"description": "Sent by transfer, not confirmed by the bank yet.", "example": "0.00"}
    )
    earnings_paid = Money(metadata={"description": "Landed in the caller's bank account.", "example": "325000.00"})
    all_time = fields.Nested(PeriodStatsSchema)
    this_month = fields.Nested(MonthStatsSchema)
