"""Assignment: the admins' queue of paid bookings, choosing a primary and a backup serviceman, and what
happens when one drops out (a serviceman declines, an admin promotes the backup or reassigns).

Every decision is made on the request row locked inside the transaction, so two admins, or an admin
and a declining serviceman, acting at once never both win. The status moves only through
`transition()` (PENDING_ADMIN_ASSIGNMENT -> ASSIGNED); changes of team that keep the request ASSIGNED
are recorded with `record_event()`, and each event tells exactly the servicemen it concerns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..catalog import Category
from ..service_requests import Event, RequestStatus, ServiceRequest, require_status
from ..users import ApprovalStatus, Role, ServicemanCategory, ServicemanProfile, User
from ..workflow import record_event, transition, unit_of_work
from .booking import get_request
from .catalog import availability_warnings, serviceman_availability
from .standing import require_approved

PRIMARY, BACKUP = "primary", "backup"
FIELD_OF = {PRIMARY: "primary_serviceman_id", BACKUP: "backup_serviceman_id"}
# {PRIMARY: user id or None, BACKUP: user id or None}
Team = Mapping[str, int | None]


def _require_admin(user: User) -> None:
    if user.role != Role.ADMIN:
        raise PermissionDenied("Only admins assign servicemen.")


# --- the queue ---------------------------------------------------------------------------------------


def unassigned_requests(admin: User) -> peewee.ModelSelect[ServiceRequest]:
    """Paid bookings waiting for servicemen: emergencies first, then the longest waiting. Each row comes
    with its client and category (joined) and the moment it started waiting: when the booking fee was
    paid (its `payment_received` event), or when it was created if it has no such event."""
    _require_admin(admin)
    # Correlated, so the cost follows the queue's length (indexed by request), not the whole event table.
    paid_at = Event.select(peewee.fn.MIN(Event.created_at)).where(
        Event.service_request == ServiceRequest.id, Event.type == "payment_received"
    )
    waiting_since = peewee.fn.COALESCE(paid_at, ServiceRequest.created_at).python_value(
        ServiceRequest.created_at.python_value
    )
    return (
        ServiceRequest.visible()
        .select(
            ServiceRequest,
            User.id,
            User.first_name,
            User.last_name,
            User.phone,
            User.email,
            Category.id,
            Category.name,
            waiting_since.alias("waiting_since"),
        )
        .join(User, on=ServiceRequest.client)
        .switch(ServiceRequest)
        .join(Category)
        .where(ServiceRequest.status == RequestStatus.PENDING_ADMIN_ASSIGNMENT)
        .order_by(ServiceRequest.is_emergency.desc(), waiting_since, ServiceRequest.id)
    )


def queue_details(requests: Sequence[Any]) -> Sequence[Any]:
    """One page of the queue with each preferred serviceman's availability and load (one batch of
    lookups per page, not per row) and how long each request has waited. `requests`: rows of
    unassigned_requests (with `waiting_since`), which get `preferred_serviceman_load` and `waiting_seconds`."""
    load = serviceman_availability(r.preferred_serviceman_id for r in requests)
    now = utcnow()
    for request in requests:
        request.preferred_serviceman_load = load.get(request.preferred_serviceman_id)
        request.waiting_seconds = max(0, int((now - request.waiting_since).total_seconds()))
    return requests


# --- choosing servicemen -----------------------------------------------------------------------------


def _refusal(user_id: int | None, category: Category, confirm_outside_category: bool) -> str | None:
    """Why this user cannot be assigned to a job in `category`, or None if they can."""
    user = User.get_or_none(User.id == user_id)
    if user is None or user.role != Role.SERVICEMAN:
        return "No serviceman has this id."
    if not user.is_active:
        return "This serviceman's account is deactivated."
    profile = ServicemanProfile.get_or_none(ServicemanProfile.user == user_id)
    status = profile.approval_status if profile else ApprovalStatus.PENDING_APPROVAL
    if status != ApprovalStatus.APPROVED:
        return f"This serviceman cannot be assigned: their approval status is {status}."
    assert profile is not None  # without one, the status above is PENDING_APPROVAL
    offers = ServicemanCategory.select().where(
        ServicemanCategory.profile == profile.id, ServicemanCategory.category == category.id
    )
    if not confirm_outside_category and not offers.exists():
        return (
            f"This serviceman does not offer {category.name}. To assign them anyway, confirm with "
            f"confirm_outside_category: true."
        )
    return None


def _check_team(
    request: ServiceRequest, team: Team, named: Mapping[str, int | None], confirm_outside_category: bool
) -> None:
    """Refuse (422, naming each field) a `team` whose primary and backup are the same person, or any
    serviceman `named` by the admin who is not an approved, active serviceman of this category."""
    errors: dict[str, list[str]] = {}
    if team[PRIMARY] is not None and team[PRIMARY] == team[BACKUP]:
        field = FIELD_OF[BACKUP] if BACKUP in named else FIELD_OF[PRIMARY]
        errors[field] = ["The primary and the backup must be different servicemen."]
    for role, user_id in named.items():
        if FIELD_OF[role] not in errors:
            message = _refusal(user_id, request.category, confirm_outside_category)
            if message:
                errors[FIELD_OF[role]] = [message]
    if errors:
        messages = [m for field_messages in errors.values() for m in field_messages]
        raise ValidationFailed(messages[0] if len(messages) == 1 else None, fields=errors)


def _team(request: ServiceRequest) -> Team:
    return {PRIMARY: request.primary_serviceman_id, BACKUP: request.backup_serviceman_id}


def _names(user_ids: Iterable[int | None]) -> dict[int | None, str]:
    return {u.id: u.full_name for u in User.select().where(User.id.in_([i for i in user_ids if i is not None]))}


def _team_payload(team: Team, placed: Sequence[int | None]) -> dict[str, Any]:
    """What the `serviceman_assigned` event says: who was placed (its recipients) and the whole team."""
    names = _names(team.values())
    return {
        "serviceman_ids": placed,
        "primary_serviceman_id": team[PRIMARY],
        "backup_serviceman_id": team[BACKUP],
        "primary_name": names.get(team[PRIMARY], "nobody yet"),
        "backup_name": names.get(team[BACKUP], "nobody yet"),
    }


def _warnings_for(team: Team, before: Team) -> list[str]:
    """Warnings about servicemen new to the job, measured before they join it (so it is not counted)."""
    return availability_warnings(
        {role: user_id for role, user_id in team.items() if user_id is not None and user_id not in before.values()}
    )


def assign_servicemen(
    admin: User,
    request_id: int,
    *,
    primary_serviceman_id: int,
    backup_serviceman_id: int,
    is_emergency: bool | None = None,
    confirm_outside_category: bool = False,
) -> ServiceRequest:
    """PENDING_ADMIN_ASSIGNMENT -> ASSIGNED with a primary and a backup; both are told. The admin may set or
    clear the emergency flag here (the fee, already paid, stays)."""
    _require_admin(admin)
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, RequestStatus.PENDING_ADMIN_ASSIGNMENT, "Assigning servicemen")
        team = {PRIMARY: primary_serviceman_id, BACKUP: backup_serviceman_id}
        _check_team(request, team, team, confirm_outside_category)
        warnings = _warnings_for(team, _team(request))
        previous = request.is_emergency
        changes = {"primary_serviceman": team[PRIMARY], "backup_serviceman": team[BACKUP]}
        if is_emergency is not None and is_emergency != previous:
            changes["is_emergency"] = is_emergency
        request, _ = transition(
            request,
            RequestStatus.ASSIGNED,
            admin,
            "serviceman_assigned",
            payload=_team_payload(team, [team[PRIMARY], team[BACKUP]]),
            **changes,
        )
        if request.is_emergency != previous:
            record_event(request, "emergency_changed", admin, payload={"previous": previous})
    request.warnings = warnings
    return request


def _change_team(request: ServiceRequest, admin: User, team: Team) -> ServiceRequest:
    """Give a locked ASSIGNED request a new team: whoever is removed is told (`assignment_removed`),
    whoever is new to the job or to their role is told (`serviceman_assigned`)."""
    before = _team(request)
    if team == before:
        return request
    ServiceRequest.update(primary_serviceman=team[PRIMARY], backup_serviceman=team[BACKUP], updated_at=utcnow()).where(
        ServiceRequest.id == request.id
    ).execute()
    request = ServiceRequest.get_by_id(request.id)
    for role, user_id in before.items():
        if user_id is not None and user_id not in team.values():
            record_event(request, "assignment_removed", admin, payload={"serviceman_id": user_id, "role": role})
    placed = [user_id for role, user_id in team.items() if user_id is not None and before[role] != user_id]
    if placed:
        record_event(request, "serviceman_assigned", admin, payload=_team_payload(team, placed))
    return request


def promote_backup(admin: User, request_id: int) -> ServiceRequest:
    """The backup becomes the primary; the old primary is removed; the job is left without a backup."""
    _require_admin(admin)
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, RequestStatus.ASSIGNED, "Promoting the backup")
        if request.backup_serviceman_id is None:
            raise Conflict("This request has no backup serviceman to promote; reassign it instead.")
        reason = _refusal(request.backup_serviceman_id, request.category, confirm_outside_category=True)
        if reason:
            raise Conflict(f"The backup serviceman cannot be promoted. {reason} Reassign the request instead.")
        return _change_team(request, admin, {PRIMARY: request.backup_serviceman_id, BACKUP: None})


def reassign(
    admin: User,
    request_id: int,
    *,
    primary_serviceman_id: int | None = None,
    backup_serviceman_id: int | None = None,
    confirm_outside_category: bool = False,
) -> ServiceRequest:
    """Replace the primary, the backup or both of an ASSIGNED request (the same checks as assigning)."""
    _require_admin(admin)
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, RequestStatus.ASSIGNED, "Reassigning servicemen")
        named = {
            role: user_id
            for role, user_id in ((PRIMARY, primary_serviceman_id), (BACKUP, backup_serviceman_id))
            if user_id is not None
        }
        before = _team(request)
        team = {**before, **named}
        if team[PRIMARY] is None:
            raise ValidationFailed.on(FIELD_OF[PRIMARY], "This request has no primary serviceman now; name one.")
        _check_team(request, team, named, confirm_outside_category)
        warnings = _warnings_for(named, before)
        request = _change_team(request, admin, team)
    request.warnings = warnings
    return request


# --- a serviceman drops out --------------------------------------------------------------------------


def _decline_outcome(declined_as: str, team_after: Team, names: Mapping[int | None, str]) -> str:
    if declined_as == BACKUP:
        return "The job has no backup now; an admin needs to name a new backup."
    if team_after[PRIMARY] is None:
        return "Nobody is assigned now; an admin needs to name a new primary and backup."
    return (
        f"{names[team_after[PRIMARY]]}, the backup, is now the primary serviceman; an admin needs to name a new backup."
    )


def decline_assignment(serviceman: User, request_id: int, reason: str) -> ServiceRequest:
    """An assigned serviceman gives up the job before inspecting it. A declining primary is replaced at
    once by the backup; either way the job is left without a backup, and the admins are asked for one."""
    if serviceman.role != Role.SERVICEMAN:
        raise PermissionDenied("Only an assigned serviceman declines a job.")
    request = get_request(serviceman, request_id)
    with unit_of_work():
        require_approved(serviceman, "decline jobs")
        request = ServiceRequest.locked(request.id)
        before = _team(request)
        declined_as = next((role for role, user_id in before.items() if user_id == serviceman.id), None)
        if declined_as is None:  # removed while this call waited for the lock
            raise NotFound("No such service request.")
        require_status(request, RequestStatus.ASSIGNED, "Declining a job (before the inspection)")
        team = {PRIMARY: before[BACKUP], BACKUP: None} if declined_as == PRIMARY else {**before, BACKUP: None}
        ServiceRequest.update(
            primary_serviceman=team[PRIMARY], backup_serviceman=team[BACKUP], updated_at=utcnow()
        ).where(ServiceRequest.id == request.id).execute()
        request = ServiceRequest.get_by_id(request.id)
        names = _names([serviceman.id, before[BACKUP]])
        promoted = team[PRIMARY] if declined_as == PRIMARY else None
        record_event(
            request,
            "assignment_declined",
            serviceman,
            payload={
                "serviceman_id": serviceman.id,
                "serviceman_name": names[serviceman.id],
                "declined_as": declined_as,
                "reason": reason,
                "promoted_serviceman_id": promoted,
                "outcome": _decline_outcome(declined_as, team, names),
            },
        )
    return request
