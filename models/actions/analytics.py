"""Admin analytics: revenue (net of refunds), top servicemen, top categories, requests by status.

Every figure is an aggregate computed by the database (SUM, COUNT, AVG with GROUP BY); Python only
reshapes the grouped rows. Timestamps are stored as naive UTC, so dates and months here are UTC ones:
the same on SQLite and PostgreSQL, and a payment's month never depends on the server's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import peewee
from peewee import JOIN, Case, fn

from ..base import CENTS
from ..catalog import Category
from ..db import is_postgres
from ..money import Payment, PaymentStatus, PaymentType
from ..payouts import Payout
from ..refunds import Refund, RefundStatus
from ..service_requests import Event, RequestStatus, ServiceRequest
from ..users import ApprovalStatus, ServicemanProfile, User

BY_RATING, BY_JOBS = "rating", "jobs"
TOP_SERVICEMEN_ORDERINGS = (BY_RATING, BY_JOBS)
PAID, ASSIGNED = "payment_received", "serviceman_assigned"
ZERO = Decimal("0.00")


def money(value: object) -> Decimal:
    """A database SUM as naira: SQLite hands back floats or ints for decimal columns, and an empty
    SUM is NULL; both become a Decimal with two places."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP)


def month_of(column: peewee.ColumnBase) -> peewee.ColumnBase:
    """`YYYY-MM` of a naive-UTC timestamp column, as text on both backends (same grouping, same order)."""
    if is_postgres():
        return fn.to_char(fn.date_trunc("month", column), "YYYY-MM")
    return fn.strftime("%Y-%m", column)


def seconds_between(earlier: peewee.ColumnBase, later: peewee.ColumnBase) -> peewee.ColumnBase:
    """`later - earlier` in seconds, for two timestamp expressions."""
    if is_postgres():
        return fn.date_part("epoch", later - earlier)
    return (fn.julianday(later) - fn.julianday(earlier)) * 86400


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- revenue ---------------------------------------------------------------------------------------


def successful_payments(date_from: date | None = None, date_to: date | None = None) -> peewee.ModelSelect[Payment]:
    """Payments Paystack took, paid within [date_from, date_to] (inclusive UTC dates of `paid_at`)."""
    query = Payment.select().where(Payment.status == PaymentStatus.SUCCESS, Payment.paid_at.is_null(False))
    if date_from is not None:
        query = query.where(Payment.paid_at >= _utc_midnight(date_from))
    if date_to is not None and date_to < date.max:  # date.max has no next day, and bounds nothing
        query = query.where(Payment.paid_at < _utc_midnight(date_to + timedelta(days=1)))
    return query


# Money we took and keep: not flagged for a refund (paid after a cancellation, or twice).
COUNTED = Payment.needs_refund == False


def _sum_if(condition: peewee.ColumnBase, amount: peewee.ColumnBase | int) -> peewee.ColumnBase:
    return fn.SUM(Case(None, [(condition, amount)], 0))


def _final(condition: peewee.ColumnBase | None = None) -> peewee.ColumnBase:
    final = COUNTED & (Payment.payment_type == PaymentType.FINAL_PAYMENT)
    return final if condition is None else final & condition


REVENUE_PARTS = ("booking_fees", "final_payments", "markup", "refunds", "paystack_fees", "serviceman_shares", "held")


def revenue(date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
    """Where the clients' money went, in all and per UTC month, to the kobo:

        gross - refunds = serviceman_shares + held + paystack_fees + platform_net

    `gross` (also `total`) is the verified payments: booking fees plus final payments. A final
    payment is split by the payout the money rule recorded when its job was confirmed
    (`serviceman_shares`, and `markup`, the platform's part); until then it is `held`. Booking fees
    are the platform's. `refunds` is what was given back of those payments (refunds not FAILED, in
    the month they were opened) and the platform bears them. `paystack_fees` is what Paystack kept of
    every successful payment, also of one paid by mistake and refunded in full (Paystack keeps its
    fee on a refunded payment); a payment recorded before fees were stored counts 0. Shares, held
    money and fees count in the month of the payment they come from."""
    # Grouped and ordered by the output alias: the expression itself carries bound parameters,
    # which a server-side binding driver would see as a different expression in GROUP BY.
    month = month_of(Payment.paid_at).alias("month")
    rows = (
        successful_payments(date_from, date_to)
        .select(
            month,
            _sum_if(COUNTED & (Payment.payment_type == PaymentType.BOOKING_FEE), Payment.amount).alias("booking_fees"),
            _sum_if(_final(), Payment.amount).alias("final_payments"),
            _sum_if(_final(), fn.COALESCE(Payout.platform_share, 0)).alias("markup"),
            _sum_if(_final(), fn.COALESCE(Payout.amount, 0)).alias("serviceman_shares"),
            _sum_if(_final(Payout.id.is_null()), Payment.amount).alias("held"),
            fn.SUM(fn.COALESCE(Payment.paystack_fees, 0)).alias("paystack_fees"),
        )
        .join(Payout, JOIN.LEFT_OUTER, on=(Payout.service_request == Payment.service_request))
        .group_by(month)
        .order_by(month)
        .dicts()
    )
    months: dict[str, dict[str, Any]] = {row["month"]: row for row in cast(Iterable[dict[str, Any]], rows)}
    for month_name, refunded in _refunds_by_month(date_from, date_to):
        months.setdefault(month_name, {})["refunds"] = refunded
    by_month = [_revenue_split(months[name], month=name) for name in sorted(months)]
    overall = {part: sum((m[part] for m in by_month), ZERO) for part in REVENUE_PARTS}
    return {
        "date_from": date_from,
        "date_to": date_to,
        "currency": "NGN",
        **_revenue_split(overall),
        "by_month": by_month,
    }


def _refunds_by_month(date_from: date | None = None, date_to: date | None = None) -> list[tuple[str, Any]]:
    """(UTC month, sum) of the refunds of counted payments; a FAILED refund returned nothing (yet)."""
    month = month_of(Refund.created_at).alias("month")
    query = (
        Refund.select(month, fn.SUM(Refund.amount).alias("refunds"))
        .join(Payment)
        .where(Refund.status != RefundStatus.FAILED, Payment.status == PaymentStatus.SUCCESS, COUNTED)
    )  # money never counted is not subtracted
    if date_from is not None:
        query = query.where(Refund.created_at >= _utc_midnight(date_from))
    if date_to is not None and date_to < date.max:
        query = query.where(Refund.created_at < _utc_midnight(date_to + timedelta(days=1)))
    return list(cast(Iterable[tuple[str, Any]], query.group_by(month).order_by(month).tuples()))


def _revenue_split(sums: dict[str, Any], **extra: Any) -> dict[str, Any]:
    parts = {part: money(sums.get(part)) for part in REVENUE_PARTS}
    gross = parts["booking_fees"] + parts["final_payments"]
    net = gross - parts["refunds"] - parts["paystack_fees"] - parts["serviceman_shares"] - parts["held"]
    return {**extra, **parts, "total": gross, "gross": gross, "net": gross - parts["refunds"], "platform_net": net}


# --- rankings --------------------------------------------------------------------------------------


def top_servicemen(by: str = BY_RATING, limit: int = 10, min_ratings: int = 3) -> dict[str, Any]:
    """Approved, active servicemen: best rated (among those with at least `min_ratings` ratings,
    more ratings first on a tie) or most jobs completed; remaining ties by id, oldest first."""
    query = (
        ServicemanProfile.select(ServicemanProfile, User)
        .join(User)
        .where(ServicemanProfile.approval_status == ApprovalStatus.APPROVED, User.is_active == True)
    )
    if by == BY_RATING:
        query = query.where(ServicemanProfile.rating_count >= min_ratings).order_by(
            ServicemanProfile.rating.desc(), ServicemanProfile.rating_count.desc(), User.id
        )
    else:
        query = query.order_by(ServicemanProfile.jobs_completed.desc(), User.id)
    results = [
        {
            "id": p.user_id,
            "full_name": p.user.full_name,
            "rating": p.rating,
            "rating_count": p.rating_count,
            "jobs_completed": p.jobs_completed,
        }
        for p in query.limit(limit)
    ]
    return {"by": by, "min_ratings": min_ratings if by == BY_RATING else None, "results": results}


def top_categories(limit: int = 10) -> dict[str, Any]:
    """Categories by how many requests were made in them. Cancelled requests count (they were
    asked for: demand); soft-deleted ones do not. Inactive categories are listed too, flagged."""
    request_count = fn.COUNT(ServiceRequest.id)
    rows = (
        Category.select(Category.id, Category.name, Category.is_active, request_count.alias("request_count"))
        .join(ServiceRequest)
        .where(ServiceRequest.is_deleted == False)
        .group_by(Category.id, Category.name, Category.is_active)
        .order_by(request_count.desc(), Category.id)
        .limit(limit)
        .dicts()
    )
    return {"results": list(rows)}


# --- requests --------------------------------------------------------------------------------------


def request_stats() -> dict[str, Any]:
    """Requests (not soft-deleted) by status, every status listed, and the average time from the
    booking fee's payment to the first assignment over the requests assigned so far."""
    counts: dict[str, int] = dict(
        cast(
            Iterable[tuple[str, int]],
            ServiceRequest.visible()
            .select(ServiceRequest.status, fn.COUNT(ServiceRequest.id))
            .group_by(ServiceRequest.status)
            .tuples(),
        )
    )
    by_status = {status: counts.get(status, 0) for status in RequestStatus.ALL}
    assigned, average = _assignment_delay()
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "assigned_after_payment": assigned,
        "average_seconds_to_assignment": None if average is None else round(float(average), 3),
    }


def _assignment_delay() -> tuple[int, Any]:
    """(requests measured, their average seconds from `payment_received` to `serviceman_assigned`).
    A request reassigned later is measured to its first assignment."""
    paid, assigned = Event.alias("paid"), Event.alias("assigned")
    per_request = (
        paid.select(
            paid.service_request, seconds_between(fn.MIN(paid.created_at), fn.MIN(assigned.created_at)).alias("delay")
        )
        .join(assigned, on=(assigned.service_request == paid.service_request))
        .join(ServiceRequest, on=(ServiceRequest.id == paid.service_request))
        .where(paid.type == PAID, assigned.type == ASSIGNED, ServiceRequest.is_deleted == False)
        .group_by(paid.service_request)
    )
    row = cast(
        tuple[int, Any],
        Event.select(fn.COUNT(per_request.c.service_request_id), fn.AVG(per_request.c.delay))
        .from_(per_request)
        .tuples()
        .get(),
    )
    return row[0], row[1]
