"""ServiceRequest, its statuses, and the one table of allowed transitions.

Only `transition()` (models/workflow.py) changes a request's status; it checks this table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Self

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import InvalidTransition

from .base import JSONField, MoneyField, TimestampedModel, UTCDateTimeField
from .catalog import Category
from .db import for_update
from .users import User


class RequestStatus:
    PENDING_PAYMENT = "PENDING_PAYMENT"  # created, booking fee not yet paid
    PENDING_ADMIN_ASSIGNMENT = "PENDING_ADMIN_ASSIGNMENT"  # fee paid, waiting for an admin
    ASSIGNED = "ASSIGNED"  # primary + backup chosen
    SERVICEMAN_INSPECTED = "SERVICEMAN_INSPECTED"  # estimate submitted
    AWAITING_CLIENT_APPROVAL = "AWAITING_CLIENT_APPROVAL"  # admin set markup, final cost known
    NEGOTIATING = "NEGOTIATING"  # counter-offers going back and forth
    AWAITING_PAYMENT = "AWAITING_PAYMENT"  # price agreed, final payment due
    PAYMENT_CONFIRMED = "PAYMENT_CONFIRMED"  # final payment verified
    IN_PROGRESS = "IN_PROGRESS"  # admin told the serviceman to proceed
    COMPLETED_BY_SERVICEMAN = "COMPLETED_BY_SERVICEMAN"  # serviceman marked the job done
    COMPLETED = "COMPLETED"  # admin confirmed with the client
    CANCELLED = "CANCELLED"

    ALL = (
        PENDING_PAYMENT,
        PENDING_ADMIN_ASSIGNMENT,
        ASSIGNED,
        SERVICEMAN_INSPECTED,
        AWAITING_CLIENT_APPROVAL,
        NEGOTIATING,
        AWAITING_PAYMENT,
        PAYMENT_CONFIRMED,
        IN_PROGRESS,
        COMPLETED_BY_SERVICEMAN,
        COMPLETED,
        CANCELLED,
    )
    # Servicemen are busy with a request in these statuses.
    ACTIVE_FOR_SERVICEMAN = (
        ASSIGNED,
        SERVICEMAN_INSPECTED,
        AWAITING_CLIENT_APPROVAL,
        NEGOTIATING,
        AWAITING_PAYMENT,
        PAYMENT_CONFIRMED,
        IN_PROGRESS,
    )
    FINISHED = (COMPLETED, CANCELLED)


S = RequestStatus
_BEFORE_PAYMENT_CONFIRMED = S.ALL[: S.ALL.index(S.PAYMENT_CONFIRMED)]

# from-status -> the statuses it may move to. The whole workflow, in one place.
TRANSITIONS = {
    S.PENDING_PAYMENT: {S.PENDING_ADMIN_ASSIGNMENT},
    S.PENDING_ADMIN_ASSIGNMENT: {S.ASSIGNED},
    S.ASSIGNED: {S.SERVICEMAN_INSPECTED},
    S.SERVICEMAN_INSPECTED: {S.AWAITING_CLIENT_APPROVAL},
    S.AWAITING_CLIENT_APPROVAL: {S.NEGOTIATING, S.AWAITING_PAYMENT},
    S.NEGOTIATING: {S.NEGOTIATING, S.AWAITING_PAYMENT},
    S.AWAITING_PAYMENT: {S.PAYMENT_CONFIRMED},
    S.PAYMENT_CONFIRMED: {S.IN_PROGRESS},
    S.IN_PROGRESS: {S.COMPLETED_BY_SERVICEMAN},
    S.COMPLETED_BY_SERVICEMAN: {S.COMPLETED},
    S.COMPLETED: set(),
    S.CANCELLED: set(),
}
for _status in _BEFORE_PAYMENT_CONFIRMED:
    TRANSITIONS[_status].add(S.CANCELLED)


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, ())


def require_status(request: ServiceRequest, allowed: str | Iterable[str], action: str) -> None:
    """The one status guard of the actions: refuse `action` ("Starting work") with 409
    `invalid_transition` unless the request is in `allowed` (a status, or a tuple of them)."""
    allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
    if request.status not in allowed:
        raise InvalidTransition(
            f"{action} is possible only while the request is {' or '.join(allowed)}; it is {request.status}."
        )


class ServiceRequest(TimestampedModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key, and booking's warnings (not a column)
        warnings: list[str]
        client_id: int
        category_id: int
        preferred_serviceman_id: int | None
        primary_serviceman_id: int | None
        backup_serviceman_id: int | None

    client = peewee.ForeignKeyField(User, backref="service_requests", index=True)
    category = peewee.ForeignKeyField(Category, backref="service_requests", index=True)
    preferred_serviceman = peewee.ForeignKeyField(User, null=True, backref="+")
    primary_serviceman = peewee.ForeignKeyField(User, null=True, backref="+", index=True)
    backup_serviceman = peewee.ForeignKeyField(User, null=True, backref="+", index=True)
    booking_date = peewee.DateField()
    address = peewee.TextField()
    description = peewee.TextField()
    is_emergency = peewee.BooleanField(default=False, index=True)
    auto_flagged_emergency = peewee.BooleanField(default=False)
    booking_fee = MoneyField()
    estimate_amount = MoneyField(null=True)
    estimate_notes = peewee.TextField(default="")
    markup_percentage = MoneyField(max_digits=6, null=True)
    final_cost = MoneyField(null=True)
    status = peewee.CharField(max_length=32, default=RequestStatus.PENDING_PAYMENT, index=True)
    is_deleted = peewee.BooleanField(default=False, index=True)
    deleted_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=utcnow, index=True)  # an admin's sync (migration 016)
    # Set by the one conditional UPDATE that claims the day-before reminder (exactly once).
    reminder_sent_at = UTCDateTimeField(null=True)

    class Meta:
        # A client's bookings, newest first; is_deleted in the key makes their COUNT index-only (migration 013).
        indexes = ((("client", "is_deleted", "created_at", "id"), False),)

    @classmethod
    def locked(cls, request_id: int) -> Self:
        """Re-read a request inside the caller's transaction, locked until it ends. Decisions that
        depend on the current values, such as "did the emergency flag change?", are made on this copy."""
        return for_update(cls.select().where(cls.id == request_id)).get()

    @classmethod
    def visible(cls) -> peewee.ModelSelect[Self]:
        return cls.select().where(cls.is_deleted == False)


class Event(TimestampedModel):
    """The outbox and the timeline: one row per workflow change, written in its transaction.

    `published_at`: handed to the transport. `delivered_at`: its notification rows exist (set in the
    transaction that inserted them, also when it has no recipients). The sweep re-delivers an event
    published but never delivered, claiming it (`redrive_claimed_until`) so sweepers never overlap,
    and gives up after a few attempts (`redrive_attempts`): an event that cannot be rendered is a bug.
    """

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        service_request_id: int | None
        actor_id: int | None

    type = peewee.CharField(max_length=40, index=True)
    service_request = peewee.ForeignKeyField(ServiceRequest, null=True, backref="events", index=True)
    actor = peewee.ForeignKeyField(User, null=True, backref="+")
    from_status = peewee.CharField(max_length=32, null=True)
    to_status = peewee.CharField(max_length=32, null=True)
    payload = JSONField(default=dict)
    published_at = UTCDateTimeField(null=True, index=True)
    delivered_at = UTCDateTimeField(null=True)
    redrive_claimed_until = UTCDateTimeField(null=True)
    redrive_attempts = peewee.IntegerField(default=0)


# The sweep's index (migration 014): only events not delivered yet are in it.
Event.add_index(Event.index(Event.created_at, name="event_undelivered").where(Event.delivered_at.is_null()))
