"""Admin analytics: revenue, top servicemen, top categories, requests by status.

Given rows written straight through the models (payments in every status, requests in several
statuses, profiles with known ratings, events at known times), when an admin asks for a report,
then every figure equals the one worked out by hand here; on an empty database every report is
zeros and empty lists, never a null amount; and no other role sees any of it.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from models import ApprovalStatus, Event, Payment, PaymentStatus, PaymentType, Payout, RequestStatus, User
from models.actions import analytics

from .contract_support import assert_error
from .factories import CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
REVENUE = "/api/admin/analytics/revenue/"
TOP_SERVICEMEN = "/api/admin/analytics/top-servicemen/"
TOP_CATEGORIES = "/api/admin/analytics/top-categories/"
REQUESTS = "/api/admin/analytics/requests/"
ALL_REPORTS = (REVENUE, TOP_SERVICEMEN, TOP_CATEGORIES, REQUESTS)
_references = itertools.count(1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def pay(request, payment_type, amount, paid_at, status=PaymentStatus.SUCCESS, needs_refund=False, fees=None):
    return Payment.create(
        service_request=request,
        payer=request.client,
        payment_type=payment_type,
        amount=Decimal(amount),
        status=status,
        paid_at=paid_at,
        needs_refund=needs_refund,
        paystack_reference=f"analytics-{next(_references)}",
        paystack_fees=None if fees is None else Decimal(fees),
    )


def payout(request, amount, platform_share):
    """The payout the money rule recorded when the job was confirmed."""
    return Payout.create(
        serviceman=request.primary_serviceman,
        service_request=request,
        amount=Decimal(amount),
        platform_share=Decimal(platform_share),
        transfer_reference=f"smpo-{request.id}-test",
    )


def month(
    name,
    booking_fees="0.00",
    final_payments="0.00",
    markup="0.00",
    total="0.00",
    paystack_fees="0.00",
    serviceman_shares="0.00",
    held="0.00",
):
    net = Decimal(total) - Decimal(paystack_fees) - Decimal(serviceman_shares) - Decimal(held)
    return {
        "month": name,
        "booking_fees": booking_fees,
        "final_payments": final_payments,
        "markup": markup,
        "total": total,
        "gross": total,
        "refunds": "0.00",
        "net": total,  # refunds: tests/test_refunds.py
        "paystack_fees": paystack_fees,
        "serviceman_shares": serviceman_shares,
        "held": held,
        "platform_net": f"{net:.2f}",
    }


def split(report):
    return {key: report[key] for key in ("booking_fees", "final_payments", "markup", "total")}


# --- an empty database ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_report_on_an_empty_database_is_zeros_and_empty_lists(api, admin_user):
    revenue = await api.get(REVENUE, user=admin_user)
    servicemen = await api.get(TOP_SERVICEMEN, user=admin_user)
    categories = await api.get(TOP_CATEGORIES, user=admin_user)
    requests = await api.get(REQUESTS, user=admin_user)

    assert revenue.status == 200, revenue
    assert revenue.data == {
        "from": None,
        "to": None,
        "currency": "NGN",
        "booking_fees": "0.00",
        "final_payments": "0.00",
        "markup": "0.00",
        "total": "0.00",
        "gross": "0.00",
        "refunds": "0.00",
        "net": "0.00",
        "paystack_fees": "0.00",
        "serviceman_shares": "0.00",
        "held": "0.00",
        "platform_net": "0.00",
        "by_month": [],
    }
    assert servicemen.status == 200 and servicemen.data == {"by": "rating", "min_ratings": 3, "results": []}
    assert categories.status == 200 and categories.data == {"results": []}
    assert requests.status == 200, requests
    assert requests.data == {
        "total": 0,
        "by_status": {status: 0 for status in S.ALL},
        "assigned_after_payment": 0,
        "average_seconds_to_assignment": None,
    }


# --- revenue -------------------------------------------------------------------------------------


@pytest.fixture
def ledger():
    """Verified payments in October, November and December 2026, and payments that must not count.

    By hand: October 2000.00 in booking fees (Paystack kept 30.00); November 5000.00 in booking fees,
    12000.00 + 9000.60 = 21000.60 in final payments: the confirmed job's payout split 12000.00 into
    10000.00 for the serviceman and 2000.00 of markup, the unconfirmed job's 9000.60 is held; Paystack
    kept 175.00 + 280.00 of counted payments and 30.00 of a payment to refund (485.00); December
    2000.00 in booking fees."""
    standard = ServiceRequestFactory(
        status=S.COMPLETED,
        estimate_amount=Decimal("10000.00"),
        primary_serviceman=ServicemanFactory(),
        markup_percentage=Decimal("20.00"),
        final_cost=Decimal("12000.00"),
    )
    emergency = ServiceRequestFactory(
        status=S.PAYMENT_CONFIRMED,
        is_emergency=True,
        booking_fee=Decimal("5000.00"),
        estimate_amount=Decimal("7500.50"),
        markup_percentage=Decimal("20.00"),
        final_cost=Decimal("9000.60"),
    )
    late = ServiceRequestFactory(status=S.PENDING_ADMIN_ASSIGNMENT)
    cancelled = ServiceRequestFactory(status=S.CANCELLED)

    pay(standard, PaymentType.BOOKING_FEE, "2000.00", utc(2026, 10, 15, 10, 0), fees="30.00")
    pay(standard, PaymentType.FINAL_PAYMENT, "12000.00", utc(2026, 11, 3, 9, 0), fees="280.00")
    payout(standard, "10000.00", "2000.00")
    pay(emergency, PaymentType.BOOKING_FEE, "5000.00", utc(2026, 11, 1, 0, 0), fees="175.00")
    pay(emergency, PaymentType.FINAL_PAYMENT, "9000.60", utc(2026, 11, 30, 23, 59, 59))
    pay(late, PaymentType.BOOKING_FEE, "2000.00", utc(2026, 12, 1, 0, 0))

    # Not revenue: held for review, never paid, failed, and money paid for a cancelled booking (to refund).
    pay(late, PaymentType.FINAL_PAYMENT, "700.00", utc(2026, 11, 5, 12, 0), status=PaymentStatus.REVIEW, fees="10.50")
    pay(late, PaymentType.FINAL_PAYMENT, "800.00", None, status=PaymentStatus.PENDING)
    pay(late, PaymentType.BOOKING_FEE, "900.00", None, status=PaymentStatus.FAILED)
    pay(cancelled, PaymentType.BOOKING_FEE, "2000.00", utc(2026, 11, 6, 8, 0), needs_refund=True, fees="30.00")
    pay(standard, PaymentType.FINAL_PAYMENT, "12000.00", utc(2026, 11, 4, 9, 0), needs_refund=True)


OCTOBER = month("2026-10", booking_fees="2000.00", total="2000.00", paystack_fees="30.00")
NOVEMBER = month(
    "2026-11",
    booking_fees="5000.00",
    final_payments="21000.60",
    markup="2000.00",
    total="26000.60",
    paystack_fees="485.00",
    serviceman_shares="10000.00",
    held="9000.60",
)
DECEMBER = month("2026-12", booking_fees="2000.00", total="2000.00")


@pytest.mark.gen_test
async def test_revenue_sums_verified_payments_by_kind_and_month(api, admin_user, ledger):
    response = await api.get(REVENUE, user=admin_user)

    assert response.status == 200, response
    assert response.data["currency"] == "NGN"
    assert split(response.data) == {
        "booking_fees": "9000.00",
        "final_payments": "21000.60",
        "markup": "2000.00",
        "total": "30000.60",
    }
    assert response.data["by_month"] == [OCTOBER, NOVEMBER, DECEMBER]
    # 30000.60 taken = 10000.00 for the serviceman + 9000.60 held + 515.00 to Paystack + 10485.00 kept
    assert {k: response.data[k] for k in ("gross", "serviceman_shares", "held", "paystack_fees", "platform_net")} == {
        "gross": "30000.60",
        "serviceman_shares": "10000.00",
        "held": "9000.60",
        "paystack_fees": "515.00",
        "platform_net": "10485.00",
    }


@pytest.mark.gen_test
async def test_a_range_counts_whole_utc_days_at_both_ends(api, admin_user, ledger):
    # November 1 00:00:00 and November 30 23:59:59 are in; October and December 1 00:00:00 are out.
    response = await api.get(f"{REVENUE}?from=2026-11-01&to=2026-11-30", user=admin_user)

    assert response.status == 200, response
    assert (response.data["from"], response.data["to"]) == ("2026-11-01", "2026-11-30")
    assert response.data["by_month"] == [NOVEMBER]
    assert split(response.data) == {key: NOVEMBER[key] for key in split(response.data)}


@pytest.mark.gen_test
async def test_open_ended_ranges_cut_one_side_only(api, admin_user, ledger):
    until_november = await api.get(f"{REVENUE}?to=2026-11-30", user=admin_user)
    from_november = await api.get(f"{REVENUE}?from=2026-11-01", user=admin_user)
    one_day = await api.get(f"{REVENUE}?from=2026-11-30&to=2026-11-30", user=admin_user)
    everything = await api.get(f"{REVENUE}?from=0001-01-01&to=9999-12-31", user=admin_user)

    assert until_november.data["by_month"] == [OCTOBER, NOVEMBER]
    assert until_november.data["total"] == "28000.60"
    assert from_november.data["by_month"] == [NOVEMBER, DECEMBER]
    assert from_november.data["total"] == "28000.60"
    assert one_day.data["by_month"] == [month("2026-11", final_payments="9000.60", held="9000.60", total="9000.60")]
    assert everything.data["by_month"] == [OCTOBER, NOVEMBER, DECEMBER]


@pytest.mark.gen_test
async def test_a_range_without_payments_is_zero(api, admin_user, ledger):
    response = await api.get(f"{REVENUE}?from=2027-01-01&to=2027-12-31", user=admin_user)

    assert response.status == 200, response
    assert split(response.data) == {"booking_fees": "0.00", "final_payments": "0.00", "markup": "0.00", "total": "0.00"}
    assert response.data["by_month"] == []


def test_markup_and_serviceman_shares_are_the_payout_ledgers_once_the_job_is_confirmed():
    request = ServiceRequestFactory(
        status=S.PAYMENT_CONFIRMED,
        estimate_amount=Decimal("33333.33"),
        markup_percentage=Decimal("15.00"),
        final_cost=Decimal("38333.33"),
        primary_serviceman=ServicemanFactory(),
    )
    pay(request, PaymentType.FINAL_PAYMENT, "38333.33", utc(2026, 11, 10, 14, 0))
    day = (date(2026, 11, 10), date(2026, 11, 10))

    before = analytics.revenue(*day)
    payout(request, "33333.33", "5000.00")
    after = analytics.revenue(*day)

    assert (before["held"], before["serviceman_shares"], before["markup"]) == (Decimal("38333.33"), 0, 0)
    assert (after["held"], after["serviceman_shares"], after["markup"]) == (0, Decimal("33333.33"), Decimal("5000.00"))
    assert after["platform_net"] == Decimal("5000.00")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "query,field",
    [
        ("from=2026-12-01&to=2026-11-30", "from"),
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
    ],
)
async def test_a_bad_revenue_range_is_422(api, admin_user, query, field):
    response = await api.get(f"{REVENUE}?{query}", user=admin_user)

    error = assert_error(response, 422, "validation_error")
    assert field in error["fields"], response


# --- top servicemen ------------------------------------------------------------------------------


def serviceman(rating, rating_count, jobs_completed, approval_status=ApprovalStatus.APPROVED):
    return ServicemanFactory(
        profile__rating=Decimal(rating),
        profile__rating_count=rating_count,
        profile__jobs_completed=jobs_completed,
        profile__approval_status=approval_status,
    )


@pytest.fixture
def ranked():
    """Approved servicemen with known figures (created in this order, so ids ascend), and some
    who are never listed."""
    steady = serviceman("4.80", 10, 3)
    busy = serviceman("4.80", 5, 12)
    new = serviceman("5.00", 2, 1)
    solid = serviceman("4.50", 4, 12)
    twin = serviceman("4.80", 10, 0)  # the same rating and count as `steady`: the id decides
    serviceman("5.00", 50, 100, approval_status=ApprovalStatus.PENDING_APPROVAL)
    serviceman("5.00", 50, 100, approval_status=ApprovalStatus.SUSPENDED)
    gone = serviceman("5.00", 50, 100)
    User.update(is_active=False).where(User.id == gone.id).execute()
    return {"steady": steady, "busy": busy, "new": new, "solid": solid, "twin": twin}


def ids(response):
    return [item["id"] for item in response.data["results"]]


@pytest.mark.gen_test
async def test_top_servicemen_by_rating_need_enough_ratings(api, admin_user, ranked):
    response = await api.get(TOP_SERVICEMEN, user=admin_user)
    with_two = await api.get(f"{TOP_SERVICEMEN}?by=rating&min_ratings=2", user=admin_user)

    assert response.status == 200, response
    assert (response.data["by"], response.data["min_ratings"]) == ("rating", 3)
    assert ids(response) == [ranked[name].id for name in ("steady", "twin", "busy", "solid")]
    first = response.data["results"][0]
    assert first == {
        "id": ranked["steady"].id,
        "full_name": ranked["steady"].full_name,
        "rating": "4.80",
        "rating_count": 10,
        "jobs_completed": 3,
    }
    assert ids(with_two) == [ranked[name].id for name in ("new", "steady", "twin", "busy", "solid")]


@pytest.mark.gen_test
async def test_top_servicemen_by_jobs_ignore_the_rating_threshold(api, admin_user, ranked):
    response = await api.get(f"{TOP_SERVICEMEN}?by=jobs", user=admin_user)
    top_two = await api.get(f"{TOP_SERVICEMEN}?by=jobs&limit=2", user=admin_user)

    assert response.status == 200, response
    assert (response.data["by"], response.data["min_ratings"]) == ("jobs", None)
    assert ids(response) == [ranked[name].id for name in ("busy", "solid", "steady", "new", "twin")]
    assert [item["jobs_completed"] for item in response.data["results"]] == [12, 12, 3, 1, 0]
    assert ids(top_two) == [ranked["busy"].id, ranked["solid"].id]


@pytest.mark.gen_test
async def test_the_limit_bounds_the_list(api, admin_user, ranked):
    one = await api.get(f"{TOP_SERVICEMEN}?limit=1", user=admin_user)
    hundred = await api.get(f"{TOP_SERVICEMEN}?limit=100&min_ratings=0", user=admin_user)

    assert ids(one) == [ranked["steady"].id]
    assert len(hundred.data["results"]) == 5


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path,query,field",
    [
        (TOP_SERVICEMEN, "limit=0", "limit"),
        (TOP_SERVICEMEN, "limit=101", "limit"),
        (TOP_SERVICEMEN, "limit=ten", "limit"),
        (TOP_SERVICEMEN, "by=name", "by"),
        (TOP_SERVICEMEN, "min_ratings=-1", "min_ratings"),
        (TOP_CATEGORIES, "limit=0", "limit"),
        (TOP_CATEGORIES, "limit=101", "limit"),
    ],
)
async def test_out_of_bounds_parameters_are_422(api, admin_user, path, query, field):
    response = await api.get(f"{path}?{query}", user=admin_user)

    error = assert_error(response, 422, "validation_error")
    assert field in error["fields"], response


# --- top categories ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_top_categories_count_requests_cancelled_included_deleted_not(api, admin_user):
    plumbing, wiring = CategoryFactory(name="Plumbing"), CategoryFactory(name="Wiring")
    tiling, painting = CategoryFactory(name="Tiling", is_active=False), CategoryFactory(name="Painting")
    for status in (S.PENDING_PAYMENT, S.COMPLETED, S.CANCELLED):
        ServiceRequestFactory(category=plumbing, status=status)
    for status in (S.PENDING_PAYMENT, S.ASSIGNED, S.IN_PROGRESS):
        ServiceRequestFactory(category=wiring, status=status)
    ServiceRequestFactory(category=tiling, status=S.COMPLETED)
    ServiceRequestFactory(category=plumbing, is_deleted=True)
    ServiceRequestFactory(category=painting, is_deleted=True)

    response = await api.get(TOP_CATEGORIES, user=admin_user)
    top_one = await api.get(f"{TOP_CATEGORIES}?limit=1", user=admin_user)

    assert response.status == 200, response
    # Plumbing and Wiring tie at 3 (Plumbing's counts its cancelled request): the older id first.
    assert response.data["results"] == [
        {"id": plumbing.id, "name": "Plumbing", "is_active": True, "request_count": 3},
        {"id": wiring.id, "name": "Wiring", "is_active": True, "request_count": 3},
        {"id": tiling.id, "name": "Tiling", "is_active": False, "request_count": 1},
    ]
    assert [item["id"] for item in top_one.data["results"]] == [plumbing.id]


# --- requests by status and time to assignment ---------------------------------------------------


def event(request, event_type, at):
    return Event.create(
        type=event_type, service_request=request, created_at=at, payload={"service_request_id": request.id}
    )


@pytest.mark.gen_test
async def test_requests_by_status_and_average_time_from_payment_to_assignment(api, admin_user):
    paid_at = utc(2026, 11, 2, 9, 0)
    assigned = ServiceRequestFactory(status=S.ASSIGNED)
    event(assigned, "payment_received", paid_at)
    event(assigned, "serviceman_assigned", paid_at + timedelta(hours=1))
    reassigned = ServiceRequestFactory(status=S.COMPLETED)
    event(reassigned, "payment_received", paid_at)
    event(reassigned, "emergency_changed", paid_at + timedelta(minutes=5))
    event(reassigned, "serviceman_assigned", paid_at + timedelta(seconds=5400.5))
    event(reassigned, "serviceman_assigned", paid_at + timedelta(hours=10))  # later reassignment: not counted
    waiting = ServiceRequestFactory(status=S.PENDING_ADMIN_ASSIGNMENT)
    event(waiting, "payment_received", paid_at)
    for status in (S.PENDING_PAYMENT, S.PENDING_PAYMENT, S.CANCELLED):
        ServiceRequestFactory(status=status)
    deleted = ServiceRequestFactory(status=S.ASSIGNED, is_deleted=True)
    event(deleted, "payment_received", paid_at)
    event(deleted, "serviceman_assigned", paid_at + timedelta(days=3))

    response = await api.get(REQUESTS, user=admin_user)

    assert response.status == 200, response
    assert response.data["by_status"] == {
        **{status: 0 for status in S.ALL},
        S.PENDING_PAYMENT: 2,
        S.PENDING_ADMIN_ASSIGNMENT: 1,
        S.ASSIGNED: 1,
        S.COMPLETED: 1,
        S.CANCELLED: 1,
    }
    assert response.data["total"] == 6
    assert response.data["assigned_after_payment"] == 2
    assert response.data["average_seconds_to_assignment"] == pytest.approx((3600 + 5400.5) / 2, abs=0.001)


def test_no_average_until_a_paid_request_is_assigned():
    waiting = ServiceRequestFactory(status=S.PENDING_ADMIN_ASSIGNMENT)
    event(waiting, "payment_received", utc(2026, 11, 2, 9, 0))

    stats = analytics.request_stats()

    assert (stats["assigned_after_payment"], stats["average_seconds_to_assignment"]) == (0, None)
    assert stats["by_status"][S.PENDING_ADMIN_ASSIGNMENT] == 1


# --- who may ask ---------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ALL_REPORTS)
async def test_only_admins_see_analytics(api, path, ledger):
    for user in (ClientFactory(), ServicemanFactory()):
        assert_error(await api.get(path, user=user), 403, "permission_denied")
    assert_error(await api.get(path), 401, "not_authenticated")
