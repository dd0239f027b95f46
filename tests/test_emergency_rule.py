"""The emergency rule: a booking less than two days ahead, by the platform's date in TIME_ZONE, is an
emergency automatically (and costs the emergency fee); later bookings are emergencies only when the
client asks. Checked through the quote endpoint, booking, and the admin override."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from models import Event, RequestStatus, ServiceRequest
from models.actions.booking import booking_terms
from models.foundation.clock import platform_today
from models.foundation.errors import ValidationFailed
from server.app import make_app
from workers import runtime

from .conftest import make_settings
from .factories import ServiceRequestFactory

# 10:00 in Lagos, far from midnight: "today" cannot change while a test runs.
MIDDAY = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
# 23:30 UTC on 10 March is 00:30 on 11 March in Lagos (UTC+1): the two calendars disagree.
LATE_EVENING_UTC = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)

EMERGENCY_FEE, STANDARD_FEE = "5000.00", "2000.00"
S = RequestStatus


@pytest.fixture
def midday():
    with time_machine.travel(MIDDAY, tick=False):
        yield


def day(offset):
    """The platform date (Lagos) `offset` days from today, as the API spells it."""
    return str(platform_today(make_settings().zone) + timedelta(days=offset))


def booking(category, booking_date, **extra):
    return {
        "category_id": category.id,
        "booking_date": booking_date,
        "address": "4 Awolowo Road, Ikoyi",
        "description": "No power in the kitchen.",
        **extra,
    }


def quote_path(booking_date, is_emergency=None):
    path = f"/api/requests/quote/?booking_date={booking_date}"
    return path if is_emergency is None else f"{path}&is_emergency={str(is_emergency).lower()}"


# --- the quote endpoint ------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [0, 1])
async def test_quote_within_two_days_is_an_automatic_emergency(api, client_user, midday, offset):
    response = await api.get(quote_path(day(offset)), user=client_user)

    assert response.status == 200, response
    assert response.data["booking_date"] == day(offset)
    assert response.data["is_emergency"] is True
    assert response.data["auto_flagged_emergency"] is True
    assert response.data["booking_fee"] == EMERGENCY_FEE


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [2, 3, 30])
async def test_quote_two_or_more_days_ahead_is_standard(api, client_user, midday, offset):
    response = await api.get(quote_path(day(offset)), user=client_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is False
    assert response.data["auto_flagged_emergency"] is False
    assert response.data["booking_fee"] == STANDARD_FEE


@pytest.mark.gen_test
async def test_quote_standard_date_with_explicit_false_is_standard(api, client_user, midday):
    response = await api.get(quote_path(day(2), False), user=client_user)

    assert response.status == 200, response
    assert (response.data["is_emergency"], response.data["booking_fee"]) == (False, STANDARD_FEE)


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [2, 9])
async def test_quote_client_may_ask_for_an_emergency_later_on(api, client_user, midday, offset):
    response = await api.get(quote_path(day(offset), True), user=client_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is True
    assert response.data["auto_flagged_emergency"] is False
    assert response.data["booking_fee"] == EMERGENCY_FEE


@pytest.mark.gen_test
async def test_quote_asking_for_an_automatic_emergency_keeps_it_automatic(api, client_user, midday):
    response = await api.get(quote_path(day(1), True), user=client_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is True
    assert response.data["auto_flagged_emergency"] is True
    assert response.data["booking_fee"] == EMERGENCY_FEE


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [0, 1])
async def test_quote_refuses_to_unset_an_automatic_emergency(api, client_user, midday, offset):
    response = await api.get(quote_path(day(offset), False), user=client_user)

    assert response.status == 422, response
    assert response.error_code == "validation_error"
    reason = response.data["error"]["fields"]["is_emergency"][0]
    assert "2 days" in reason and "cannot be unset" in reason
    assert "booking_date" not in response.data["error"]["fields"]


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [-1, -400])
async def test_quote_refuses_a_past_date(api, client_user, midday, offset):
    response = await api.get(quote_path(day(offset)), user=client_user)

    assert response.status == 422, response
    assert list(response.data["error"]["fields"]) == ["booking_date"]
    assert day(0) in response.data["error"]["fields"]["booking_date"][0]  # says what "today" is


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["", "?booking_date=", "?booking_date=15/06/2026", "?booking_date=2026-02-30"])
async def test_quote_needs_a_valid_date(api, client_user, query):
    response = await api.get(f"/api/requests/quote/{query}", user=client_user)

    assert response.status == 422, response
    assert "booking_date" in response.data["error"]["fields"]


@pytest.mark.gen_test
async def test_quote_is_for_clients_only(api, serviceman, admin_user):
    path = quote_path(day(5))

    assert (await api.get(path)).status == 401
    assert (await api.get(path, user=serviceman)).status == 403
    assert (await api.get(path, user=admin_user)).status == 403


@pytest.mark.gen_test
async def test_quote_books_nothing(api, client_user, midday):
    await api.get(quote_path(day(0)), user=client_user)

    assert ServiceRequest.select().count() == 0
    assert Event.select().count() == 0


# --- booking applies the same rule -------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "offset, requested, emergency, auto, fee",
    [
        (0, None, True, True, EMERGENCY_FEE),
        (1, None, True, True, EMERGENCY_FEE),
        (1, True, True, True, EMERGENCY_FEE),
        (2, None, False, False, STANDARD_FEE),
        (2, False, False, False, STANDARD_FEE),
        (2, True, True, False, EMERGENCY_FEE),
        (14, True, True, False, EMERGENCY_FEE),
    ],
)
async def test_booking_applies_the_emergency_rule(
    api, client_user, category, midday, offset, requested, emergency, auto, fee
):
    extra = {} if requested is None else {"is_emergency": requested}

    response = await api.post("/api/requests/", booking(category, day(offset), **extra), user=client_user)

    assert response.status == 201, response
    assert response.data["booking_date"] == day(offset)
    assert response.data["is_emergency"] is emergency
    assert response.data["auto_flagged_emergency"] is auto
    assert response.data["booking_fee"] == fee
    stored = ServiceRequest.get_by_id(response.data["id"])
    assert (stored.is_emergency, stored.auto_flagged_emergency, stored.booking_fee) == (emergency, auto, Decimal(fee))


@pytest.mark.gen_test
async def test_booking_agrees_with_its_quote(api, client_user, category, midday):
    for offset in (0, 1, 2, 3):
        quote = await api.get(quote_path(day(offset)), user=client_user)
        booked = await api.post("/api/requests/", booking(category, day(offset)), user=client_user)

        assert booked.status == 201, booked
        for key in ("booking_date", "is_emergency", "auto_flagged_emergency", "booking_fee"):
            assert booked.data[key] == quote.data[key], (offset, key)


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [0, 1])
async def test_booking_refuses_to_unset_an_automatic_emergency(api, client_user, category, midday, offset):
    response = await api.post("/api/requests/", booking(category, day(offset), is_emergency=False), user=client_user)

    assert response.status == 422, response
    assert "cannot be unset" in response.data["error"]["fields"]["is_emergency"][0]
    assert ServiceRequest.select().count() == 0
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_booking_refuses_a_past_date(api, client_user, category, midday):
    response = await api.post("/api/requests/", booking(category, day(-1)), user=client_user)

    assert response.status == 422, response
    assert list(response.data["error"]["fields"]) == ["booking_date"]
    assert ServiceRequest.select().count() == 0
    assert Event.select().count() == 0


# --- "today" is the platform's date, not UTC's ---------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "booking_date, emergency, fee",
    [
        ("2026-03-11", True, EMERGENCY_FEE),  # today in Lagos
        ("2026-03-12", True, EMERGENCY_FEE),  # today + 1 in Lagos (today + 2 in UTC)
        ("2026-03-13", False, STANDARD_FEE),  # today + 2 in Lagos
    ],
)
async def test_quote_uses_the_lagos_date_late_in_the_utc_evening(api, client_user, booking_date, emergency, fee):
    with time_machine.travel(LATE_EVENING_UTC, tick=False):
        response = await api.get(quote_path(booking_date), user=client_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is emergency
    assert response.data["auto_flagged_emergency"] is emergency
    assert response.data["booking_fee"] == fee


@pytest.mark.gen_test
async def test_utc_today_is_already_past_in_lagos(api, client_user, category):
    with time_machine.travel(LATE_EVENING_UTC, tick=False):
        quote = await api.get(quote_path("2026-03-10"), user=client_user)
        booked = await api.post("/api/requests/", booking(category, "2026-03-10"), user=client_user)

    for response in (quote, booked):
        assert response.status == 422, response
        assert list(response.data["error"]["fields"]) == ["booking_date"]
        assert "2026-03-11" in response.data["error"]["fields"]["booking_date"][0]
    assert ServiceRequest.select().count() == 0


@pytest.mark.gen_test
async def test_booking_late_in_the_utc_evening_follows_the_lagos_date(api, client_user, category):
    with time_machine.travel(LATE_EVENING_UTC, tick=False):
        emergency = await api.post("/api/requests/", booking(category, "2026-03-12"), user=client_user)
        refused = await api.post(
            "/api/requests/", booking(category, "2026-03-12", is_emergency=False), user=client_user
        )
        standard = await api.post("/api/requests/", booking(category, "2026-03-13"), user=client_user)

    assert emergency.status == 201, emergency
    assert (
        emergency.data["is_emergency"],
        emergency.data["auto_flagged_emergency"],
        emergency.data["booking_fee"],
    ) == (True, True, EMERGENCY_FEE)
    assert refused.status == 422 and "is_emergency" in refused.data["error"]["fields"], refused
    assert standard.status == 201, standard
    assert (standard.data["is_emergency"], standard.data["booking_fee"]) == (False, STANDARD_FEE)


def test_time_zone_setting_decides_what_today_is():
    lagos, utc = make_settings(), make_settings(TIME_ZONE="UTC")

    with time_machine.travel(LATE_EVENING_UTC, tick=False):
        # 12 March: tomorrow in Lagos, the day after tomorrow in UTC.
        assert booking_terms(lagos, date(2026, 3, 12))["is_emergency"] is True
        assert booking_terms(utc, date(2026, 3, 12)) == {
            "booking_date": date(2026, 3, 12),
            "is_emergency": False,
            "auto_flagged_emergency": False,
            "booking_fee": Decimal("2000.00"),
        }
        # 10 March: today in UTC (an emergency), yesterday in Lagos (refused).
        assert booking_terms(utc, date(2026, 3, 10))["auto_flagged_emergency"] is True
        with pytest.raises(ValidationFailed) as refused:
            booking_terms(lagos, date(2026, 3, 10))
        assert refused.value.status == 422 and list(refused.value.fields) == ["booking_date"]
        # UTC may unset 12 March; Lagos may not.
        assert booking_terms(utc, date(2026, 3, 12), False)["is_emergency"] is False
        with pytest.raises(ValidationFailed) as unset:
            booking_terms(lagos, date(2026, 3, 12), False)
        assert list(unset.value.fields) == ["is_emergency"]


def test_time_zone_east_of_lagos_moves_today_earlier():
    tokyo = make_settings(TIME_ZONE="Asia/Tokyo")

    with time_machine.travel(datetime(2026, 3, 10, 16, 0, tzinfo=UTC), tick=False):  # 11 March 01:00 JST
        with pytest.raises(ValidationFailed):
            booking_terms(tokyo, date(2026, 3, 10))
        assert booking_terms(tokyo, date(2026, 3, 12))["is_emergency"] is True
        assert booking_terms(tokyo, date(2026, 3, 13))["is_emergency"] is False
        assert booking_terms(make_settings(), date(2026, 3, 12))["is_emergency"] is False  # Lagos: still 10 March


# --- fees are settings ---------------------------------------------------------------------------------


def test_fees_come_from_settings():
    custom = make_settings(EMERGENCY_BOOKING_FEE="7500.00", STANDARD_BOOKING_FEE="2500.50")

    with time_machine.travel(MIDDAY, tick=False):
        today = platform_today(custom.zone)
        assert booking_terms(custom, today)["booking_fee"] == Decimal("7500.00")
        assert booking_terms(custom, today + timedelta(days=2))["booking_fee"] == Decimal("2500.50")
        assert booking_terms(custom, today + timedelta(days=2), True)["booking_fee"] == Decimal("7500.00")
        assert booking_terms(make_settings(), today)["booking_fee"] == Decimal("5000.00")


class TestCustomFeesOverHttp:
    """The app built with other fee settings quotes and books with them."""

    @pytest.fixture
    def app(self, database):
        application = make_app(
            make_settings(EMERGENCY_BOOKING_FEE="7500.00", STANDARD_BOOKING_FEE="2500.00"), bind_database=False
        )
        yield application
        transport = runtime.transport()
        if hasattr(transport, "shutdown"):
            transport.shutdown()
        runtime.reset()

    @pytest.mark.gen_test
    async def test_quote_and_booking_use_the_configured_fees(self, api, client_user, category, midday):
        quote_emergency = await api.get(quote_path(day(1)), user=client_user)
        quote_standard = await api.get(quote_path(day(5)), user=client_user)
        booked = await api.post("/api/requests/", booking(category, day(5), is_emergency=True), user=client_user)

        assert quote_emergency.data["booking_fee"] == "7500.00", quote_emergency
        assert quote_standard.data["booking_fee"] == "2500.00", quote_standard
        assert booked.status == 201, booked
        assert booked.data["booking_fee"] == "7500.00"
        assert ServiceRequest.get_by_id(booked.data["id"]).booking_fee == Decimal("7500.00")

    @pytest.mark.gen_test
    async def test_admin_override_charges_the_configured_fee(self, api, admin_user, midday):
        request = ServiceRequestFactory()

        response = await api.post(
            f"/api/admin/requests/{request.id}/emergency/", {"is_emergency": True}, user=admin_user
        )

        assert response.status == 200, response
        assert response.data["booking_fee"] == "7500.00"


class TestTimeZoneOverHttp:
    """TIME_ZONE=UTC: late on 10 March UTC, 10 March is today (an emergency), 12 March is standard."""

    @pytest.fixture
    def app(self, database):
        application = make_app(make_settings(TIME_ZONE="UTC"), bind_database=False)
        yield application
        transport = runtime.transport()
        if hasattr(transport, "shutdown"):
            transport.shutdown()
        runtime.reset()

    @pytest.mark.gen_test
    async def test_quote_follows_the_configured_time_zone(self, api, client_user):
        with time_machine.travel(LATE_EVENING_UTC, tick=False):
            today = await api.get(quote_path("2026-03-10"), user=client_user)
            later = await api.get(quote_path("2026-03-12"), user=client_user)

        assert today.status == 200, today
        assert (today.data["is_emergency"], today.data["auto_flagged_emergency"]) == (True, True)
        assert later.status == 200, later
        assert (later.data["is_emergency"], later.data["booking_fee"]) == (False, STANDARD_FEE)


# --- admin override ------------------------------------------------------------------------------------


def override_path(request):
    return f"/api/admin/requests/{request.id}/emergency/"


@pytest.mark.gen_test
async def test_admin_override_sets_flag_and_fee_while_unpaid(api, admin_user):
    request = ServiceRequestFactory()  # standard, 2000.00, PENDING_PAYMENT

    response = await api.post(override_path(request), {"is_emergency": True}, user=admin_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is True
    assert response.data["booking_fee"] == EMERGENCY_FEE
    stored = ServiceRequest.get_by_id(request.id)
    assert (stored.is_emergency, stored.booking_fee, stored.status) == (True, Decimal(EMERGENCY_FEE), S.PENDING_PAYMENT)


@pytest.mark.gen_test
async def test_admin_override_unsets_flag_and_fee_while_unpaid(api, admin_user):
    request = ServiceRequestFactory(is_emergency=True, booking_fee=EMERGENCY_FEE)

    response = await api.post(override_path(request), {"is_emergency": False}, user=admin_user)

    assert response.status == 200, response
    assert (response.data["is_emergency"], response.data["booking_fee"]) == (False, STANDARD_FEE)
    assert ServiceRequest.get_by_id(request.id).booking_fee == Decimal(STANDARD_FEE)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "status", [S.PENDING_ADMIN_ASSIGNMENT, S.ASSIGNED, S.NEGOTIATING, S.IN_PROGRESS, S.COMPLETED_BY_SERVICEMAN]
)
async def test_admin_override_after_payment_keeps_the_paid_fee(api, admin_user, status):
    request = ServiceRequestFactory(status=status)

    response = await api.post(override_path(request), {"is_emergency": True}, user=admin_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is True
    assert response.data["booking_fee"] == STANDARD_FEE
    stored = ServiceRequest.get_by_id(request.id)
    assert (stored.is_emergency, stored.booking_fee, stored.status) == (True, Decimal(STANDARD_FEE), status)


@pytest.mark.gen_test
async def test_admin_override_records_an_emergency_changed_event(api, admin_user):
    request = ServiceRequestFactory(status=S.ASSIGNED)

    await api.post(override_path(request), {"is_emergency": True}, user=admin_user)

    events = list(Event.select().where(Event.service_request == request.id))
    assert [e.type for e in events] == ["emergency_changed"]
    event = events[0]
    assert event.actor_id == admin_user.id
    assert event.payload["is_emergency"] is True
    assert event.payload["service_request_id"] == request.id
    assert event.payload["previous"] is False
    assert (event.from_status, event.to_status) == (None, None)


@pytest.mark.gen_test
async def test_admin_override_to_the_same_value_changes_nothing(api, admin_user):
    request = ServiceRequestFactory(is_emergency=True, booking_fee=EMERGENCY_FEE)

    response = await api.post(override_path(request), {"is_emergency": True}, user=admin_user)

    assert response.status == 200, response
    assert response.data["is_emergency"] is True
    assert Event.select().count() == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED])
async def test_admin_override_refuses_a_finished_request(api, admin_user, status):
    request = ServiceRequestFactory(status=status)

    response = await api.post(override_path(request), {"is_emergency": True}, user=admin_user)

    assert response.status == 409, response
    assert response.error_code == "invalid_transition"
    assert ServiceRequest.get_by_id(request.id).is_emergency is False
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_admin_override_is_for_admins_only(api, client_user, serviceman):
    request = ServiceRequestFactory(client=client_user, primary_serviceman=serviceman, status=S.ASSIGNED)

    for user in (client_user, serviceman):
        response = await api.post(override_path(request), {"is_emergency": True}, user=user)
        assert response.status == 403, response
    assert ServiceRequest.get_by_id(request.id).is_emergency is False


@pytest.mark.gen_test
async def test_admin_override_needs_a_boolean(api, admin_user):
    request = ServiceRequestFactory()

    missing = await api.post(override_path(request), {}, user=admin_user)
    wrong = await api.post(override_path(request), {"is_emergency": "maybe"}, user=admin_user)

    assert missing.status == 422 and "is_emergency" in missing.data["error"]["fields"], missing
    assert wrong.status == 422 and "is_emergency" in wrong.data["error"]["fields"], wrong
    assert ServiceRequest.get_by_id(request.id).is_emergency is False


@pytest.mark.gen_test
async def test_admin_override_of_unknown_or_deleted_request_is_404(api, admin_user):
    deleted = ServiceRequestFactory(status=S.CANCELLED, is_deleted=True)

    assert (
        await api.post("/api/admin/requests/999999/emergency/", {"is_emergency": True}, user=admin_user)
    ).status == 404
    assert (await api.post(override_path(deleted), {"is_emergency": True}, user=admin_user)).status == 404
