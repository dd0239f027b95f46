"""Doing the job: the admin starts work, the primary serviceman marks it done, the admin confirms it;
the client rates it once; the serviceman's job list and stats.

Each step is one transaction on the locked request row, so a retried or raced step either happens
once or is a 409. Counters on the serviceman's profile are changed by the database itself
(`jobs_completed + 1`, the rating recomputed from the Rating table), never read, changed and written
back by Python, so concurrent steps cannot lose an update.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import peewee
from peewee import Case, fn

from models.foundation.clock import platform_today
from models.foundation.errors import Conflict, NotFound, PermissionDenied

from ..base import CENTS
from ..db import database, for_update
from ..money import Rating
from ..payouts import Payout, PayoutStatus
from ..service_requests import RequestStatus, ServiceRequest, require_status
from ..users import ServicemanProfile, User
from ..workflow import record_event, transition, unit_of_work
from .booking import _owned_request, get_request, visible_requests
from .listing import refresh_listing
from .payouts import record_payout
from .standing import require_approved

S = RequestStatus
# Jobs the serviceman still has to finish (or the admin to confirm).
UNFINISHED = (*S.ACTIVE_FOR_SERVICEMAN, S.COMPLETED_BY_SERVICEMAN)


# --- work and completion ---------------------------------------------------------------------------


def start_work(admin: User, request_id: int) -> ServiceRequest:
    """PAYMENT_CONFIRMED -> IN_PROGRESS: the admin tells the primary serviceman to proceed."""
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, S.PAYMENT_CONFIRMED, "Starting work")
        request, _ = transition(
            request, S.IN_PROGRESS, admin, "work_started", payload={"serviceman_id": request.primary_serviceman_id}
        )
    return request


def mark_completed(serviceman: User, request_id: int) -> ServiceRequest:
    """IN_PROGRESS -> COMPLETED_BY_SERVICEMAN, by the primary serviceman only. A serviceman who is
    not on the job gets 404; the backup, who can see the request, gets 403."""
    request = get_request(serviceman, request_id)
    with unit_of_work():
        require_approved(serviceman, "mark jobs done")
        request = ServiceRequest.locked(request.id)  # the primary may have been replaced since it was read
        if request.primary_serviceman_id != serviceman.id:
            if request.backup_serviceman_id == serviceman.id:
                raise PermissionDenied("Only the primary serviceman marks the job done.")
            raise NotFound("No such service request.")
        require_status(request, S.IN_PROGRESS, "Marking a job done")
        request, _ = transition(
            request,
            S.COMPLETED_BY_SERVICEMAN,
            serviceman,
            "job_completed",
            payload={"serviceman_id": serviceman.id, "serviceman_name": serviceman.full_name},
        )
    return request


def confirm_completion(admin: User, request_id: int) -> ServiceRequest:
    """COMPLETED_BY_SERVICEMAN -> COMPLETED, and in the same transaction the primary's
    jobs_completed + 1 and the payout they are owed: only the one confirm that wins the transition
    counts the job and owes the money."""
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, S.COMPLETED_BY_SERVICEMAN, "Confirming completion")
        request, _ = transition(
            request, S.COMPLETED, admin, "job_confirmed", payload={"serviceman_id": request.primary_serviceman_id}
        )
        (
            ServicemanProfile.update(jobs_completed=ServicemanProfile.jobs_completed + 1)
            .where(ServicemanProfile.user == request.primary_serviceman_id)
            .execute()
        )
        refresh_listing(request.primary_serviceman_id)
        record_payout(request)
    return request


# --- rating ----------------------------------------------------------------------------------------


def rate_job(client: User, request_id: int, rating: int, review: str = "") -> Rating:
    """The owning client rates the primary serviceman of a COMPLETED request, once."""
    request = _owned_request(client, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        require_status(request, S.COMPLETED, "Rating a job")
        if Rating.select().where(Rating.service_request == request.id).exists():
            raise _already_rated()
        serviceman_id = request.primary_serviceman_id
        _lock_profile(serviceman_id)
        try:
            with database.atomic():  # a savepoint: the unique index may still refuse a racing twin
                row = Rating.create(
                    service_request=request.id, serviceman=serviceman_id, client=client.id, rating=rating, review=review
                )
        except peewee.IntegrityError as exc:
            raise _already_rated() from exc
        _recompute_rating(serviceman_id)
        record_event(
            request,
            "rating_received",
            client,
            payload={"serviceman_id": serviceman_id, "rating": rating, "review": review},
        )
    return row


def _already_rated() -> Conflict:
    return Conflict("This job has already been rated.", code="already_rated")


def _lock_profile(serviceman_id: int | None) -> None:
    """Ratings of one serviceman queue here, so each recount below sees every committed rating
    (a statement that only waited for a row lock would still count from its older snapshot)."""
    for_update(ServicemanProfile.select(ServicemanProfile.id).where(ServicemanProfile.user == serviceman_id)).first()


def _recompute_rating(serviceman_id: int | None) -> None:
    """Average and count straight from the Rating table, in one UPDATE: exact at any count, where a
    running average of two-place values would drift (and stop moving once a job is worth < 0.005)."""
    mine = Rating.serviceman == serviceman_id
    average = Rating.select(fn.ROUND(fn.AVG(Rating.rating), 2)).where(mine)
    count = Rating.select(fn.COUNT(Rating.id)).where(mine)
    (
        ServicemanProfile.update(rating=average, rating_count=count)
        .where(ServicemanProfile.user == serviceman_id)
        .execute()
    )
    refresh_listing(serviceman_id)


# --- the serviceman's side ---------------------------------------------------------------------------


def serviceman_jobs(
    serviceman: User, status: str | None = None, is_emergency: bool | None = None
) -> peewee.ModelSelect[ServiceRequest]:
    """Requests where the caller is primary or backup, newest first, each with its `role`."""
    role = Case(None, [(ServiceRequest.primary_serviceman == serviceman.id, "primary")], "backup")
    query = visible_requests(serviceman).select_extend(role.alias("role"))
    if status is not None:
        query = query.where(ServiceRequest.status == status)
    if is_emergency is not None:
        query = query.where(ServiceRequest.is_emergency == is_emergency)
    return query.order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())


def _count_if(condition: peewee.ColumnBase) -> peewee.ColumnBase:
    return fn.COALESCE(fn.SUM(Case(None, [(condition, 1)], 0)), 0)


def _sum_if(condition: peewee.ColumnBase, value: peewee.ColumnBase) -> peewee.ColumnBase:
    return fn.COALESCE(fn.SUM(Case(None, [(condition, value)], 0)), 0)


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENTS, rounding=ROUND_HALF_UP)


def _average(value: object) -> Decimal | None:
    return None if value is None else _money(value)


def month_start(zone: tzinfo) -> tuple[datetime, date]:
    """The first instant of the current month on the platform's calendar, in UTC."""
    today = platform_today(zone)
    return datetime(today.year, today.month, 1, tzinfo=zone).astimezone(UTC), today


def _earnings(serviceman: User, since: datetime) -> dict[str, Any]:
    """The serviceman's earnings as the payout ledger records them (the money rule wrote each row
    when its job was confirmed): all time, since `since`, and by where the money is. OWED and
    APPROVED are both still at the platform."""
    earned_month = Payout.created_at >= since
    return cast(
        dict[str, Any],
        Payout.select(
            fn.COALESCE(fn.SUM(Payout.amount), 0).alias("all_time"),
            _sum_if(earned_month, Payout.amount).alias("this_month"),
            _sum_if(Payout.status.in_((PayoutStatus.OWED, PayoutStatus.APPROVED)), Payout.amount).alias("owed"),
            _sum_if(Payout.status == PayoutStatus.IN_TRANSIT, Payout.amount).alias("in_transit"),
            _sum_if(Payout.status == PayoutStatus.PAID, Payout.amount).alias("paid"),
        )
        .where(Payout.serviceman == serviceman.id)
        .dicts()
        .get(),
    )


def serviceman_stats(serviceman: User, zone: tzinfo) -> dict[str, Any]:
    """Totals for the jobs the caller was PRIMARY on (a backup did not do the work), all time and in
    the current platform month. A COMPLETED request's updated_at is when the admin confirmed it
    (nothing changes a finished request afterwards), so that is the job's completion time.
    Soft-deleted bookings still count: the job was done and paid."""
    since, today = month_start(zone)
    R = ServiceRequest
    completed = R.status == S.COMPLETED
    completed_this_month = completed & (R.updated_at >= since)
    jobs = cast(
        dict[str, Any],
        R.select(
            _count_if(completed).alias("completed"),
            _count_if(R.status == S.CANCELLED).alias("cancelled"),
            _count_if(R.status.in_(UNFINISHED)).alias("active"),
            _count_if(completed_this_month).alias("completed_month"),
        )
        .where(R.primary_serviceman == serviceman.id)
        .dicts()
        .get(),
    )
    earned = _earnings(serviceman, since)
    this_month = Rating.created_at >= since
    ratings = cast(
        dict[str, Any],
        Rating.select(
            fn.AVG(Rating.rating).alias("average"),
            fn.COUNT(Rating.id).alias("count"),
            fn.AVG(Case(None, [(this_month, Rating.rating)], None)).alias("average_month"),
            _count_if(this_month).alias("count_month"),
        )
        .where(Rating.serviceman == serviceman.id)
        .dicts()
        .get(),
    )
    completed_jobs, cancelled_jobs = int(jobs["completed"]), int(jobs["cancelled"])
    ended = completed_jobs + cancelled_jobs
    return {
        "currency": "NGN",
        "completion_rate": _money(Decimal(100) * completed_jobs / ended) if ended else None,
        "cancelled_jobs": cancelled_jobs,
        "active_jobs": int(jobs["active"]),
        **{f"earnings_{state}": _money(earned[state]) for state in ("owed", "in_transit", "paid")},
        "all_time": {
            "jobs_completed": completed_jobs,
            "earnings": _money(earned["all_time"]),
            "average_rating": _average(ratings["average"]),
            "rating_count": int(ratings["count"]),
        },
        "this_month": {
            "month": today.strftime("%Y-%m"),
            "jobs_completed": int(jobs["completed_month"]),
            "earnings": _money(earned["this_month"]),
            "average_rating": _average(ratings["average_month"]),
            "rating_count": int(ratings["count_month"]),
        },
    }
