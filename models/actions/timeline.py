"""What each party sees of a request's timeline (GET /api/requests/{id}/events/).

Every party sees every event of a request it may see (type, actor, statuses, time), so the story has
no gaps; what differs is the payload. Admins see it whole. A client sees it whole but for a third
party's vetting (why an assigned serviceman was suspended). A serviceman sees, per event type, only
the keys listed below: the job's facts, its own estimate, the consultations addressed to it. Never
the client's money (payment ids, Paystack references, amounts paid or refunded), the platform's
markup, fee or the final cost built on it, nor the client's price negotiation. A new event type or a
new payload key is hidden from servicemen until it is listed here.
"""

from collections.abc import Iterable
from typing import Any

from ..payouts import PAYOUT_EVENTS
from ..service_requests import Event
from ..users import Role, User

# Every payload says which request and whether it is an emergency (models/workflow.py).
ALWAYS = frozenset({"service_request_id", "is_emergency"})
_TEAM = {"serviceman_ids", "primary_serviceman_id", "backup_serviceman_id", "primary_name", "backup_name"}
SERVICEMAN_SEES = {
    "request_created": set(),
    "request_updated": {"fields"},
    "emergency_changed": {"previous"},
    "request_cancelled": {"reason", "by_role"},
    "payment_received": {"payment_type", "purpose"},  # the booking fee is in: the job goes to assignment
    "payment_confirmed": {"payment_type", "purpose"},  # the final payment is in: work may start
    "serviceman_assigned": _TEAM,
    "assignment_removed": {"serviceman_id", "role"},
    "assignment_declined": {
        "serviceman_id",
        "serviceman_name",
        "declined_as",
        "reason",
        "promoted_serviceman_id",
        "outcome",
    },
    "assigned_serviceman_suspended": {"serviceman_id", "serviceman_name", "assigned_as"},
    "estimate_submitted": {"amount", "notes", "serviceman_id", "serviceman_name"},
    "serviceman_consulted": {"message", "estimate_amount", "offer_amount", "serviceman_id"},
    "consultation_replied": {
        "acceptable",
        "verdict",
        "message",
        "offer_amount",
        "consultation_event_id",
        "serviceman_id",
        "serviceman_name",
    },
    "work_started": {"serviceman_id"},
    "job_completed": {"serviceman_id", "serviceman_name"},
    "job_confirmed": {"serviceman_id"},
    "rating_received": {"serviceman_id", "rating", "review"},
    "booking_reminder": {"booking_date"},
}
# A third party's vetting is between it and the admins: the client learns only that a serviceman left.
CLIENT_HIDDEN = {"assigned_serviceman_suspended": {"reason"}}


def hidden_event_types(user: User) -> tuple[str, ...]:
    """Event types left out of `user`'s timeline altogether (the payout ledger is the admins')."""
    return () if user.role == Role.ADMIN else PAYOUT_EVENTS


def visible_payload(user: User, event_type: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The part of an event's payload that `user` (already allowed to see the request) may see."""
    payload = payload or {}
    if user.role == Role.ADMIN:
        return payload
    if user.role == Role.CLIENT:
        hidden = CLIENT_HIDDEN.get(event_type, ())
        return {key: value for key, value in payload.items() if key not in hidden}
    allowed = ALWAYS | SERVICEMAN_SEES.get(event_type, set())
    return {key: value for key, value in payload.items() if key in allowed}


def as_seen_by(user: User, events: Iterable[Event]) -> list[Event]:
    """`events` (rows) with each payload cut to what `user` may see; rows are not modified."""
    return [_copy_with_payload(event, visible_payload(user, event.type, event.payload)) for event in events]


def _copy_with_payload(event: Event, payload: dict[str, Any]) -> Event:
    copy = type(event)(**event.__data__)
    copy.payload = payload
    return copy
