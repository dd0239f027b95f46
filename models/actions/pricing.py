"""Pricing: the serviceman's estimate, the admin's markup, the client's approval, and negotiation.

The price moves through three hands. The primary serviceman inspects and estimates; an admin adds
the platform's markup, which makes the final cost the client sees; the client approves it or
negotiates. Negotiation is a chain of PriceNegotiation rows between two parties, the client and the
admins (any admin speaks for the platform): at most one proposal is PENDING at a time, and only the
other party may accept, reject or counter it. An admin may consult the primary serviceman before
answering; consultations and replies are events on the request's timeline.

Every decision is made on the request row locked for the transaction (and, under it, the proposal),
so two admins answering one proposal at once end in one answer and one 409.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import InvalidTransition, NotFound, PermissionDenied
from models.foundation.naira import format_naira

from ..base import CENTS
from ..db import for_update
from ..money import NegotiationStatus, PriceNegotiation
from ..service_requests import Event, RequestStatus, ServiceRequest, require_status
from ..users import Role, User
from ..workflow import record_event, transition, unit_of_work
from .booking import _owned_request, get_request
from .standing import require_approved

S = RequestStatus
MARKUP_SETTABLE = (S.SERVICEMAN_INSPECTED, S.AWAITING_CLIENT_APPROVAL)
NEGOTIABLE = (S.AWAITING_CLIENT_APPROVAL, S.NEGOTIATING)
CLIENT, ADMINS = "client", "admin"


def final_cost_for(estimate: Decimal, markup_percentage: Decimal) -> Decimal:
    """estimate × (1 + markup/100), in Decimal, rounded to the kobo (half up)."""
    return (estimate * (1 + markup_percentage / Decimal(100))).quantize(CENTS, rounding=ROUND_HALF_UP)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _cost_breakdown(
    estimate: Decimal | None, markup_percentage: Decimal | None, final_cost: Decimal | None
) -> dict[str, str | None]:
    """What the client pays for: the serviceman's estimate, the platform's fee, the total."""
    fee = final_cost - estimate if final_cost is not None and estimate is not None else None
    return {
        "service_cost": _money(estimate),
        "platform_fee": _money(fee),
        "final_cost": _money(final_cost),
        "markup_percentage": _money(markup_percentage),
    }


def _request_breakdown(request: ServiceRequest) -> dict[str, str | None]:
    return _cost_breakdown(request.estimate_amount, request.markup_percentage, request.final_cost)


# --- the serviceman's estimate ------------------------------------------------------------------


def _locked_as_primary(serviceman: User, request_id: int, action: str) -> ServiceRequest:
    """The request, locked, if `serviceman` is its primary (checked on the locked row, so a
    concurrent reassignment cannot slip between check and change). A backup sees the request,
    so it is told why it may not act (403); anyone else may not learn that it exists (404)."""
    request = ServiceRequest.locked(get_request(serviceman, request_id).id)
    if request.primary_serviceman_id != serviceman.id:
        raise PermissionDenied(f"Only the primary serviceman {action}.")
    return request


def submit_estimate(serviceman: User, request_id: int, amount: Decimal, notes: str = "") -> ServiceRequest:
    with unit_of_work():
        require_approved(serviceman, "submit estimates")
        request = _locked_as_primary(serviceman, request_id, "submits the estimate")
        require_status(request, (S.ASSIGNED,), "Submitting an estimate")
        transition(
            request,
            S.SERVICEMAN_INSPECTED,
            serviceman,
            "estimate_submitted",
            payload={
                "amount": _money(amount),
                "notes": notes,
                "serviceman_id": serviceman.id,
                "serviceman_name": serviceman.full_name,
            },
            estimate_amount=amount,
            estimate_notes=notes,
        )
    return request


# --- the admin's markup and the client's approval -----------------------------------------------


def set_markup(admin: User, request_id: int, markup_percentage: Decimal) -> ServiceRequest:
    """Set the final cost from the estimate (→ AWAITING_CLIENT_APPROVAL), or set it again while the
    client has not answered."""
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, MARKUP_SETTABLE, "Setting the markup")
        if request.estimate_amount is None:
            raise InvalidTransition("This request has no estimate to mark up.")
        final_cost = final_cost_for(request.estimate_amount, markup_percentage)
        if request.status == S.SERVICEMAN_INSPECTED:
            transition(
                request,
                S.AWAITING_CLIENT_APPROVAL,
                admin,
                "final_cost_set",
                payload=_cost_breakdown(request.estimate_amount, markup_percentage, final_cost),
                markup_percentage=markup_percentage,
                final_cost=final_cost,
            )
        else:
            request = _reprice(admin, request, markup_percentage, final_cost)
    return request


def _reprice(
    admin: User, request: ServiceRequest, markup_percentage: Decimal | None, final_cost: Decimal
) -> ServiceRequest:
    """A new price while the client considers the last one. The request stays AWAITING_CLIENT_APPROVAL:
    an update and an event, not a transition (the contract has no such move)."""
    if (request.markup_percentage, request.final_cost) == (markup_percentage, final_cost):
        return request  # nothing changed: the client is not told twice
    previous = _money(request.final_cost)
    ServiceRequest.update(markup_percentage=markup_percentage, final_cost=final_cost, updated_at=utcnow()).where(
        ServiceRequest.id == request.id
    ).execute()
    request = ServiceRequest.get_by_id(request.id)
    record_event(
        request, "final_cost_set", admin, payload={**_request_breakdown(request), "previous_final_cost": previous}
    )
    return request


def approve_cost(client: User, request_id: int, final_cost: Decimal | None = None) -> ServiceRequest:
    """The client agrees to the final cost: while it awaits their approval, or during a negotiation
    in which nothing is pending (after a rejection). `final_cost`, when sent, is the price the client
    saw: if an admin changed it meanwhile, nothing is approved (409)."""
    if client.role != Role.CLIENT:
        raise PermissionDenied("Only the client approves the cost.")
    request = _owned_request(client, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, NEGOTIABLE, "Approving the cost")
        if _pending_proposal(request) is not None:
            raise InvalidTransition("A price proposal is pending: accept, reject or counter it instead.")
        if final_cost is not None and final_cost != request.final_cost:
            raise InvalidTransition(
                f"The final cost is now {format_naira(request.final_cost)}, "
                f"not {format_naira(final_cost)}; review it before approving."
            )
        transition(request, S.AWAITING_PAYMENT, client, "cost_approved", payload=_request_breakdown(request))
    return request


# --- negotiation ------------------------------------------------------------------------------


def _party(user: User, request: ServiceRequest) -> str:
    return CLIENT if user.id == request.client_id else ADMINS


def _proposal_party(proposal: PriceNegotiation, request: ServiceRequest) -> str:
    return CLIENT if proposal.proposed_by_id == request.client_id else ADMINS


def _pending_proposal(request: ServiceRequest) -> PriceNegotiation | None:
    """Read under the caller's lock on the request, which every proposal and answer takes first."""
    return (
        PriceNegotiation.select()
        .where(PriceNegotiation.service_request == request.id, PriceNegotiation.status == NegotiationStatus.PENDING)
        .first()
    )


def negotiation_history(user: User, request_id: int) -> peewee.ModelSelect[PriceNegotiation]:
    """Every proposal on the request, oldest first (the owning client and admins)."""
    request = _owned_request(user, request_id)
    return (
        PriceNegotiation.select()
        .where(PriceNegotiation.service_request == request.id)
        .order_by(PriceNegotiation.created_at, PriceNegotiation.id)
    )


def _negotiation_payload(
    action: str, proposal: PriceNegotiation, actor: User, request: ServiceRequest
) -> dict[str, Any]:
    return {
        "action": action,
        "negotiation_id": proposal.id,
        "amount": _money(proposal.proposed_amount),
        "message": proposal.message,
        "by_role": _party(actor, request),
        "final_cost": _money(request.final_cost),
    }


def propose_price(user: User, request_id: int, proposed_amount: Decimal, message: str = "") -> PriceNegotiation:
    """A new proposal, when none is pending. The client may propose while the cost awaits their
    approval (a counter-offer to the admin's price) or during the negotiation; an admin only during
    the negotiation (their first word is the markup)."""
    request = _owned_request(user, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        allowed = NEGOTIABLE if user.role == Role.CLIENT else (S.NEGOTIATING,)
        require_status(request, allowed, "Proposing a price")
        if _pending_proposal(request) is not None:
            raise InvalidTransition("A price proposal is already pending: answer it (or wait for the answer) first.")
        proposal = PriceNegotiation.create(
            service_request=request.id, proposed_by=user.id, proposed_amount=proposed_amount, message=message
        )
        transition(
            request,
            S.NEGOTIATING,
            user,
            "negotiation_message",
            payload=_negotiation_payload("proposed", proposal, user, request),
        )
    return proposal


def _answerable(user: User, negotiation_id: int) -> tuple[ServiceRequest, PriceNegotiation]:
    """(request, proposal), both locked, if `user` is the other party of this pending proposal."""
    proposal = PriceNegotiation.get_or_none(PriceNegotiation.id == negotiation_id)
    if proposal is None:
        raise NotFound("No such price proposal.")
    request = _owned_request(user, proposal.service_request_id)  # a stranger learns nothing: 404
    request = ServiceRequest.locked(request.id)  # always the request first, then the proposal: one lock order
    proposal = for_update(PriceNegotiation.select().where(PriceNegotiation.id == proposal.id)).get()
    if proposal.status != NegotiationStatus.PENDING:
        raise InvalidTransition(f"This proposal is already {proposal.status}.")
    if _proposal_party(proposal, request) == _party(user, request):
        raise PermissionDenied("Only the other party answers a price proposal.")
    require_status(request, (S.NEGOTIATING,), "Answering a price proposal")
    return request, proposal


def _close(proposal: PriceNegotiation, status: str) -> None:
    PriceNegotiation.update(status=status).where(PriceNegotiation.id == proposal.id).execute()
    proposal.status = status


def accept_proposal(user: User, negotiation_id: int) -> PriceNegotiation:
    """The agreed amount becomes the final cost, and the final payment is due."""
    with unit_of_work():
        request, proposal = _answerable(user, negotiation_id)
        _close(proposal, NegotiationStatus.ACCEPTED)
        transition(
            request,
            S.AWAITING_PAYMENT,
            user,
            "negotiation_message",
            payload={
                **_negotiation_payload("accepted", proposal, user, request),
                "final_cost": _money(proposal.proposed_amount),
                "previous_final_cost": _money(request.final_cost),
            },
            final_cost=proposal.proposed_amount,
        )
    return proposal


def reject_proposal(user: User, negotiation_id: int) -> PriceNegotiation:
    """The proposal is refused; the negotiation goes on (either side may propose again, or the
    client may approve the standing final cost)."""
    with unit_of_work():
        request, proposal = _answerable(user, negotiation_id)
        _close(proposal, NegotiationStatus.REJECTED)
        transition(
            request,
            S.NEGOTIATING,
            user,
            "negotiation_message",
            payload=_negotiation_payload("rejected", proposal, user, request),
        )
    return proposal


def counter_proposal(user: User, negotiation_id: int, proposed_amount: Decimal, message: str = "") -> PriceNegotiation:
    """The pending proposal is COUNTERED by a new PENDING one from the other party."""
    with unit_of_work():
        request, proposal = _answerable(user, negotiation_id)
        _close(proposal, NegotiationStatus.COUNTERED)
        counter = PriceNegotiation.create(
            service_request=request.id, proposed_by=user.id, proposed_amount=proposed_amount, message=message
        )
        transition(
            request,
            S.NEGOTIATING,
            user,
            "negotiation_message",
            payload={
                **_negotiation_payload("countered", counter, user, request),
                "countered_negotiation_id": proposal.id,
            },
        )
    return counter


# --- consulting the serviceman ------------------------------------------------------------------


def _latest_proposal(request: ServiceRequest) -> PriceNegotiation | None:
    return (
        PriceNegotiation.select()
        .where(PriceNegotiation.service_request == request.id)
        .order_by(PriceNegotiation.id.desc())
        .first()
    )


def consult_serviceman(admin: User, request_id: int, message: str) -> Event:
    """Ask the primary serviceman whether the amount on the table is acceptable to them."""
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, (S.NEGOTIATING,), "Consulting the serviceman")
        if request.primary_serviceman_id is None:
            raise InvalidTransition("This request has no primary serviceman to consult.")
        offer = _latest_proposal(request)
        _, event = transition(
            request,
            S.NEGOTIATING,
            admin,
            "serviceman_consulted",
            payload={
                "message": message,
                "estimate_amount": _money(request.estimate_amount),
                "offer_amount": _money(offer.proposed_amount) if offer else _money(request.final_cost),
                "negotiation_id": offer.id if offer else None,
                "serviceman_id": request.primary_serviceman_id,
            },
        )
    return event


def reply_to_consultation(serviceman: User, request_id: int, acceptable: bool, message: str = "") -> Event:
    with unit_of_work():
        require_approved(serviceman, "answer consultations")
        request = _locked_as_primary(serviceman, request_id, "answers a consultation")
        require_status(request, (S.NEGOTIATING,), "Answering a consultation")
        asked = (
            Event.select()
            .where(Event.service_request == request.id, Event.type == "serviceman_consulted")
            .order_by(Event.id.desc())
            .first()
        )
        if asked is None:
            raise InvalidTransition("No admin has consulted you on this request.")
        _, event = transition(
            request,
            S.NEGOTIATING,
            serviceman,
            "consultation_replied",
            payload={
                "acceptable": acceptable,
                "verdict": "acceptable" if acceptable else "not acceptable",
                "message": message,
                "consultation_event_id": asked.id,
                "offer_amount": asked.payload.get("offer_amount"),
                "serviceman_id": serviceman.id,
                "serviceman_name": serviceman.full_name,
            },
        )
    return event
