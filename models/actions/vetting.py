"""Serviceman vetting events: the application, each admin decision, and the open jobs a suspension
leaves without a trusted serviceman. Recorded in the caller's unit of work (the outbox)."""

from typing import Any

from ..catalog import Category
from ..service_requests import Event, RequestStatus, ServiceRequest
from ..users import ServicemanCategory, ServicemanProfile, User
from ..workflow import record_account_event, record_event

DECISION_EVENTS = {
    "approve": "serviceman_approved",
    "reject": "serviceman_rejected",
    "suspend": "serviceman_suspended",
    "reinstate": "serviceman_reinstated",
}


def _about(user: User, profile: ServicemanProfile) -> dict[str, Any]:
    names = [
        c.name
        for c in Category.select(Category.name)
        .join(ServicemanCategory)
        .where(ServicemanCategory.profile == profile.id)
        .order_by(Category.name)
    ]
    return {"serviceman_id": user.id, "serviceman_name": user.full_name, "categories": ", ".join(names)}


def record_application(user: User, profile: ServicemanProfile) -> Event:
    """Tell the admins a serviceman registered and waits for their review."""
    return record_account_event(
        "serviceman_applied",
        user.id,
        {
            **_about(user, profile),
            "email": user.email,
            "phone": user.phone,
            "years_of_experience": profile.years_of_experience,
        },
    )


def record_decision(actor: User | None, profile: ServicemanProfile, action: str, reason: str = "") -> Event:
    """Tell the serviceman what was decided (and why); a suspension also flags their open jobs."""
    user = User.get_by_id(profile.user_id)
    event = record_account_event(DECISION_EVENTS[action], actor, {**_about(user, profile), "reason": reason})
    if action == "suspend":
        flag_open_assignments(actor, user, reason)
    return event


def flag_open_assignments(actor: User | None, user: User, reason: str) -> list[int]:
    """One event per job the suspended serviceman is primary or backup on and not yet done: on the job's
    timeline and to the admins, so each job gets someone else. Returns the request ids flagged."""
    jobs = (
        ServiceRequest.visible()
        .where(
            ServiceRequest.status.in_(RequestStatus.ACTIVE_FOR_SERVICEMAN),
            (ServiceRequest.primary_serviceman == user.id) | (ServiceRequest.backup_serviceman == user.id),
        )
        .order_by(ServiceRequest.id)
    )
    flagged = []
    for request in jobs:
        assigned_as = "primary" if request.primary_serviceman_id == user.id else "backup"
        record_event(
            request,
            "assigned_serviceman_suspended",
            actor,
            {"serviceman_id": user.id, "serviceman_name": user.full_name, "assigned_as": assigned_as, "reason": reason},
        )
        flagged.append(request.id)
    return flagged
