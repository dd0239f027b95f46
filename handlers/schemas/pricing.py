"""Pricing schemas: the estimate, the markup, approving the cost, negotiation and consultations."""

from decimal import ROUND_HALF_UP, Decimal

from marshmallow import Schema, fields, validate

from models.money import NegotiationStatus

from ..inputs import MultiLineText
from .common import MAX_MONEY, Boolean, Id, Money, Percentage

MESSAGE_MAX = 2000
# Decimal bounds: a float 0.01 is a hair above Decimal("0.01"), which it would then refuse.
MIN_AMOUNT = Decimal("0.01")


def Amount(**kwargs):
    """A positive naira amount a client sends, with two places ("15000.00")."""
    return Money(rounding=ROUND_HALF_UP, validate=validate.Range(min=MIN_AMOUNT, max=MAX_MONEY), **kwargs)


def Message(**kwargs):
    return MultiLineText(validate=validate.Length(max=MESSAGE_MAX), **kwargs)


# Request #1: estimate ₦15,000, 10% markup, final cost ₦16,500; the client offers ₦14,000.
EXAMPLE_NOTES = "Corroded PVC joint under the kitchen sink and a worn tap cartridge; price covers both parts."
EXAMPLE_OFFER = "Can you do it for ₦14,000? I already bought the new tap."


class EstimateSubmitSchema(Schema):
    service_request_id = Id(required=True, metadata={"example": 1})
    amount = Amount(
        required=True, metadata={"description": "The serviceman's price for the job, in naira.", "example": "15000.00"}
    )
    notes = Message(
        load_default="",
        metadata={"description": "What the inspection found; what the price covers.", "example": EXAMPLE_NOTES},
    )


class MarkupSchema(Schema):
    markup_percentage = Percentage(
        required=True,
        rounding=ROUND_HALF_UP,
        validate=validate.Range(min=0, max=100),
        metadata={
            "description": "0 to 100; final_cost = estimate × (1 + pct/100), rounded half up to the kobo.",
            "example": "10.00",
        },
    )


class CostApprovalSchema(Schema):
    final_cost = Amount(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Optional: the final cost the client saw. If an admin changed "
            "it since, nothing is approved (409).",
            "example": "16500.00",
        },
    )


class ProposalSchema(Schema):
    proposed_amount = Amount(required=True, metadata={"example": "14000.00"})
    message = Message(load_default="", metadata={"example": EXAMPLE_OFFER})


class NegotiationSchema(Schema):
    id = fields.Integer(metadata={"example": 9})
    service_request_id = fields.Integer(metadata={"example": 1})
    proposed_by_id = fields.Integer(metadata={"example": 2})
    proposed_amount = Money(metadata={"example": "14000.00"})
    message = fields.String(metadata={"example": EXAMPLE_OFFER})
    status = fields.String(metadata={"enum": list(NegotiationStatus.ALL), "example": NegotiationStatus.PENDING})
    created_at = fields.DateTime()


class ConsultationSchema(Schema):
    message = MultiLineText(
        required=True,
        validate=validate.Length(min=1, max=MESSAGE_MAX),
        metadata={"example": "The client offers ₦14,000 instead of ₦16,500 for booking #1. Is that acceptable to you?"},
    )


class ConsultationReplySchema(Schema):
    acceptable = Boolean(required=True, metadata={"example": False})
    message = Message(load_default="", metadata={"example": "The parts alone cost ₦9,000; I cannot go below ₦15,000."})
