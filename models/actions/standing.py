"""What a serviceman's vetting state lets it do: the one check every serviceman action makes first.

Only an APPROVED serviceman acts on jobs and money (estimate, consultation reply, decline, complete,
its bank account and account lookups). Any other serviceman may still sign in and read: its status,
its jobs, stats, payout ledger and notifications (and change its password):

- SUSPENDED: 403 `account_suspended` for every action, profile changes included (what the listing and
  the admins see stays as it was when they suspended it); its open jobs were flagged to the admins.
- PENDING_APPROVAL or REJECTED (never vetted): 403 `account_not_approved` for jobs and money; it may
  still edit its profile, which is its application.

Inside a transaction the check holds a share lock on the serviceman's user row until the commit, and
a vetting decision takes the row's update lock first (`hold_for_vetting`): an action and a suspension
of the same serviceman happen one after the other, never interleaved, so no action commits after the
suspension that the suspension did not see. (SQLite needs no lock: its writers take turns whole.)
"""

from __future__ import annotations

from typing import Any

import peewee

from models.foundation.errors import PermissionDenied

from ..db import database
from ..users import ApprovalStatus, Role, ServicemanProfile, User

SUSPENDED = "account_suspended"
NOT_APPROVED = "account_not_approved"


def _locked(query: peewee.ModelSelect[Any], clause: str) -> peewee.ModelSelect[Any]:
    if not (database.obj.for_update and database.transaction_depth()):
        return query
    return query.for_update(clause)  # type: ignore[arg-type]  # peewee takes a lock clause; its stubs, a bool


def _status(serviceman: User) -> str | None:
    """The serviceman's approval status, its user row share-locked when in a transaction."""
    _locked(User.select(User.id).where(User.id == serviceman.id), "FOR SHARE").first()
    return (
        ServicemanProfile.select(ServicemanProfile.approval_status)
        .where(ServicemanProfile.user == serviceman.id)
        .scalar()
    )


def _suspended(action: str) -> PermissionDenied:
    return PermissionDenied(f"Your account is suspended: you cannot {action}. Ask the admins why.", code=SUSPENDED)


def require_approved(serviceman: User, action: str) -> None:
    """Raise 403 unless `serviceman` (a User) is an APPROVED serviceman; other roles pass. `action`
    ends "you cannot ..." in the message."""
    if serviceman.role != Role.SERVICEMAN:
        return
    status = _status(serviceman)
    if status == ApprovalStatus.SUSPENDED:
        raise _suspended(action)
    if status != ApprovalStatus.APPROVED:
        raise PermissionDenied(
            f"Your account is not approved yet: you cannot {action} until an admin approves your application.",
            code=NOT_APPROVED,
        )


def refuse_if_suspended(serviceman: User, action: str) -> None:
    """Raise 403 `account_suspended` if `serviceman` is a suspended serviceman (anyone else passes)."""
    if serviceman.role == Role.SERVICEMAN and _status(serviceman) == ApprovalStatus.SUSPENDED:
        raise _suspended(action)


def hold_for_vetting(user_id: int) -> None:
    """In a vetting decision's transaction, before the profile changes: wait for the serviceman's
    actions in flight to commit, and hold off new ones until this decision has."""
    _locked(User.select(User.id).where(User.id == user_id), "FOR NO KEY UPDATE").first()
