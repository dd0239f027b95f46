"""Retention: rows that only grow are deleted once nobody can need them (workers/periodic.py runs it).

    refresh tokens     expired; or revoked in a family with no live token left (signed out, reuse
                       detected). A revoked token of a live family is kept until it expires: presenting
                       it again is how a stolen token is detected (models/actions/accounts.py).
    one-time tokens    used or expired for ONE_TIME_TOKEN_RETENTION_DAYS (so a link opened again within
                       that time still says "used" or "expired" instead of "not valid")
    notifications      older than NOTIFICATION_RETENTION_DAYS (the inbox)
    events             older than EVENT_RETENTION_DAYS (the timelines) and read by no notification kept

Notifications and events of a request are kept while the request is open, and deleted together once
it finished (COMPLETED, CANCELLED or deleted) longer ago than the retention: a timeline is never cut in
half. A retention of 0 days keeps notifications or events for ever.

Deletes go in batches by id, each its own short transaction, so a first run over years of rows never
holds a long lock, and overlapping runs only delete what the other has not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

import peewee

from models.foundation.clock import utcnow
from models.foundation.settings import Settings

from ..base import BaseModel
from ..db import database
from ..notifications import Notification
from ..service_requests import Event, RequestStatus, ServiceRequest
from ..users import OneTimeToken, RefreshToken

log = logging.getLogger("serviceman.retention")
BATCH = 1000


def _delete_in_batches(model: type[BaseModel], condition: peewee.Expression) -> int:
    """Delete every row of `model` matching `condition`, BATCH rows a transaction; the count."""
    deleted = 0
    while True:
        with database.atomic():
            ids = [
                row_id
                for (row_id,) in cast(
                    Iterable[tuple[int]],
                    model.select(model.id).where(condition).order_by(model.id).limit(BATCH).tuples(),
                )
            ]
            if ids:
                deleted += model.delete().where(model.id.in_(ids)).execute()
        if len(ids) < BATCH:
            return deleted


def _closed_before(cutoff: datetime) -> peewee.ModelSelect[ServiceRequest]:
    """Requests that finished (or were deleted) before `cutoff`: their timelines may go."""
    R = ServiceRequest
    finished = R.status.in_(RequestStatus.FINISHED) & (R.updated_at < cutoff)
    deleted = (R.is_deleted == True) & (R.deleted_at < cutoff)
    return R.select(R.id).where(finished | deleted)


def delete_spent_refresh_tokens(now: datetime | None = None) -> int:
    now = now or utcnow()
    live_families = RefreshToken.select(RefreshToken.family).where(
        RefreshToken.revoked_at.is_null(), RefreshToken.expires_at > now
    )
    spent = (RefreshToken.expires_at <= now) | (
        RefreshToken.revoked_at.is_null(False) & RefreshToken.family.not_in(live_families)
    )
    return _delete_in_batches(RefreshToken, spent)


def delete_spent_one_time_tokens(keep_days: int, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    return _delete_in_batches(OneTimeToken, (OneTimeToken.used_at < cutoff) | (OneTimeToken.expires_at < cutoff))


def delete_old_notifications(keep_days: int, now: datetime | None = None) -> int:
    if not keep_days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    N = Notification
    return _delete_in_batches(
        N, (N.created_at < cutoff) & (N.service_request.is_null() | N.service_request.in_(_closed_before(cutoff)))
    )


def delete_old_events(keep_days: int, now: datetime | None = None) -> int:
    if not keep_days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    read_by_a_notification = peewee.fn.EXISTS(
        Notification.select(Notification.id).where(Notification.event == Event.id)
    )
    return _delete_in_batches(
        Event,
        (Event.created_at < cutoff)
        & ~read_by_a_notification
        & (Event.service_request.is_null() | Event.service_request.in_(_closed_before(cutoff))),
    )


def apply_retention(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Every rule once; {table: rows deleted}. Notifications go before the events they point to."""
    now = now or utcnow()
    return {
        "refresh_token": delete_spent_refresh_tokens(now),
        "one_time_token": delete_spent_one_time_tokens(settings.one_time_token_retention_days, now),
        "notification": delete_old_notifications(settings.notification_retention_days, now),
        "event": delete_old_events(settings.event_retention_days, now),
    }
