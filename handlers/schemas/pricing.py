"""Pricing schemas: the estimate, the markup, approving the cost, negotiation and consultations."""
from decimal import ROUND_HALF_UP, Decimal

from marshmallow import Schema, fields, validate

from models.money import NegotiationStatus

from .common import MAX_MONEY, Id, Money

MESSAGE_MAX = 2000
# Decimal bounds: a float 0.01 is a hair above Decimal("0.01"), which it would then refuse.
MIN_AMOUNT = Decimal("0.01")


def Amount(**kwargs):
    """A positive naira amount a client sends, rounded half up to the kobo."""
    return Money(rounding=ROUND_HALF_UP, validate=validate.Range(min=MIN_AMOUNT, max=MAX_MONEY), **kwargs)


def Message(**kwargs):
    return fields.String(validate=validate.Length(max=MESSAGE_MAX), **kwargs)


class EstimateSubmitSchema(Schema):
    service_request_id = Id(required=True)
    amount = Amount(required=True, metadata={"description": "The serviceman's price for the job, in naira."})
    notes = Message(load_default="", metadata={"description": "What the inspection found; what the price covers."})


class MarkupSchema(Schema):
    markup_percentage = Money(required=True, rounding=ROUND_HALF_UP, validate=validate.Range(min=0, max=100),
                              metadata={"description": "0 to 100; final_cost = estimate × (1 + pct/100), "
                                                       "rounded half up to the kobo."})


class CostApprovalSchema(Schema):
    final_cost = Amount(load_default=None, allow_none=True,
                        metadata={"description": "Optional: the final cost the client saw. If an admin changed "
                                                 "it since, nothing is approved (409)."})


class ProposalSchema(Schema):
    proposed_amount = Amount(required=True)
    message = Message(load_default="")


class NegotiationSchema(Schema):
    id = fields.Integer()
    service_request_id = fields.Integer()
    proposed_by_id = fields.Integer()
    proposed_amount = Money()
    message = fields.String()
    status = fields.String(metadata={"enum": list(NegotiationStatus.ALL)})
    created_at = fields.DateTime()


class ConsultationSchema(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=MESSAGE_MAX))


class ConsultationReplySchema(Schema):
    acceptable = fields.Boolean(required=True)
    message = Message(load_default="")
