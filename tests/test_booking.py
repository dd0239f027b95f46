"""Booking over HTTP: create, list and detail scoping, edit, soft delete, cancel, the timeline."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from models import ApprovalStatus, Event, RequestStatus, ServiceRequest
from models.foundation.clock import platform_today

from .booking_support import events_of
from .factories import CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
REQUEST_FIELDS = {
    "id",
    "status",
    "client_id",
    "category_id",
    "preferred_serviceman_id",
    "primary_serviceman_id",
    "backup_serviceman_id",
    "booking_date",
    "address",
    "description",
    "is_emergency",
    "auto_flagged_emergency",
    "booking_fee",
    "estimate_amount",
    "estimate_notes",
    "markup_percentage",
    "final_cost",
    "created_at",
    "updated_at",
}
EVENT_FIELDS = {"id", "type", "actor_id", "from_status", "to_status", "payload", "created_at"}
NOT_PENDING_PAYMENT = [s for s in S.ALL if s != S.PENDING_PAYMENT]
BEFORE_PAYMENT_CONFIRMED = [
    S.PENDING_PAYMENT,
    S.PENDING_ADMIN_ASSIGNMENT,
    S.ASSIGNED,
    S.SERVICEMAN_INSPECTED,
    S.AWAITING_CLIENT_APPROVAL,
    S.NEGOTIATING,
    S.AWAITING_PAYMENT,
]
FROM_PAYMENT_CONFIRMED = [S.PAYMENT_CONFIRMED, S.IN_PROGRESS, S.COMPLETED_BY_SERVICEMAN, S.COMPLETED]


@pytest.fixture(autouse=True)
def _not_at_midnight(settings):
    """Dates below are relative to the platform's today; keep it from turning over mid-test."""
    with time_machine.travel(datetime(2026, 7, 1, 11, 0, tzinfo=UTC), tick=False):
        yield


def day(settings, offset):
    return platform_today(settings.zone) + timedelta(days=offset)


def body(category, booking_date, **extra):
    return {
        "category_id": category.id,
        "booking_date": str(booking_date),
        "address": "7 Bode Thomas, Surulere",
        "description": "Ceiling fan makes a grinding noise.",
        **extra,
    }


def snapshot(request_id):
    """Every column of the stored row, to prove that a refused action changed nothing."""
    return ServiceRequest.select().where(ServiceRequest.id == request_id).dicts().get()


def ids(response):
    return sorted(item["id"] for item in response.data["results"])


# --- create ---------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_create_answers_a_pending_payment_request_with_the_contract_fields(api, settings, client_user, category):
    response = await api.post("/api/requests/", body(category, day(settings, 5)), user=client_user)

    assert response.status == 201, response
    data = response.data
    assert REQUEST_FIELDS <= set(data)
    assert data["status"] == S.PENDING_PAYMENT
    assert data["client_id"] == client_user.id
    assert data["category_id"] == category.id
    assert data["preferred_serviceman_id"] is None
    assert data["primary_serviceman_id"] is None and data["backup_serviceman_id"] is None
    assert data["booking_date"] == str(day(settings, 5))
    assert data["address"] == "7 Bode Thomas, Surulere"
    assert data["description"] == "Ceiling fan makes a grinding noise."
    assert data["booking_fee"] == "2000.00"
    assert data["estimate_amount"] is None and data["final_cost"] is None and data["markup_percentage"] is None
    assert data["created_at"].endswith("+00:00")
    stored = ServiceRequest.get_by_id(data["id"])
    assert (stored.client_id, stored.status, stored.is_deleted) == (client_user.id, S.PENDING_PAYMENT, False)


@pytest.mark.gen_test
async def test_create_records_a_request_created_event(api, settings, client_user, category):
    response = await api.post("/api/requests/", body(category, day(settings, 1)), user=client_user)

    request = ServiceRequest.get_by_id(response.data["id"])
    [event] = events_of(request)
    assert event.type == "request_created"
    assert event.actor_id == client_user.id
    assert (event.from_status, event.to_status) == (None, S.PENDING_PAYMENT)
    assert event.payload == {"service_request_id": request.id, "is_emergency": True, "booking_fee": "5000.00"}


@pytest.mark.gen_test
async def test_create_with_a_preferred_serviceman(api, settings, client_user, category, serviceman):
    response = await api.post(
        "/api/requests/", body(category, day(settings, 5), serviceman_id=serviceman.id), user=client_user
    )

    assert response.status == 201, response
    assert response.data["preferred_serviceman_id"] == serviceman.id
    assert response.data["primary_serviceman_id"] is None  # a preference, not an assignment
    assert ServiceRequest.get_by_id(response.data["id"]).preferred_serviceman_id == serviceman.id


@pytest.mark.gen_test
async def test_create_refuses_an_inactive_or_unknown_category(api, settings, client_user):
    inactive = CategoryFactory(is_active=False)

    for category_id in (inactive.id, 999999):
        response = await api.post(
            "/api/requests/", {**body(inactive, day(settings, 5)), "category_id": category_id}, user=client_user
        )
        assert response.status == 422, response
        assert list(response.data["error"]["fields"]) == ["category_id"]
    assert ServiceRequest.select().count() == 0 and Event.select().count() == 0


def _not_bookable(category):
    """Users who are not an approved, active serviceman offering `category`, by reason."""
    return {
        "pending": ServicemanFactory(
            profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
        ),
        "rejected": ServicemanFactory(profile__categories=[category], profile__approval_status=ApprovalStatus.REJECTED),
        "suspended": ServicemanFactory(
            profile__categories=[category], profile__approval_status=ApprovalStatus.SUSPENDED
        ),
        "deactivated": ServicemanFactory(profile__categories=[category], is_active=False),
        "other category": ServicemanFactory(profile__categories=[CategoryFactory()]),
        "a client": ClientFactory(),
    }


@pytest.mark.gen_test
async def test_create_refuses_a_serviceman_who_cannot_take_the_booking(api, settings, client_user, category):
    for reason, user in [*_not_bookable(category).items(), ("unknown", None)]:
        serviceman_id = user.id if user else 999999
        response = await api.post(
            "/api/requests/", body(category, day(settings, 5), serviceman_id=serviceman_id), user=client_user
        )
        assert response.status == 422, (reason, response)
        assert list(response.data["error"]["fields"]) == ["serviceman_id"], reason
    assert ServiceRequest.select().count() == 0 and Event.select().count() == 0


@pytest.mark.gen_test
async def test_create_is_for_clients_only(api, settings, serviceman, admin_user, category):
    payload = body(category, day(settings, 5))

    assert (await api.post("/api/requests/", payload)).status == 401
    for user in (serviceman, admin_user):
        response = await api.post("/api/requests/", payload, user=user)
        assert response.status == 403, response
        assert response.error_code == "permission_denied"
    assert ServiceRequest.select().count() == 0


@pytest.mark.gen_test
async def test_create_validates_the_body(api, settings, client_user, category):
    missing = await api.post("/api/requests/", {"category_id": category.id}, user=client_user)
    blank = await api.post("/api/requests/", body(category, day(settings, 5), address=""), user=client_user)
    not_an_int = await api.post(
        "/api/requests/", {**body(category, day(settings, 5)), "category_id": "1"}, user=client_user
    )

    assert missing.status == 422
    assert {"booking_date", "address", "description"} <= set(missing.data["error"]["fields"])
    assert blank.status == 422 and "address" in blank.data["error"]["fields"]
    assert not_an_int.status == 422 and "category_id" in not_an_int.data["error"]["fields"]
    assert ServiceRequest.select().count() == 0


# --- list and detail scoping ----------------------------------------------------------------------------


@pytest.fixture
def world(client_user, other_client, serviceman):
    """Requests of two clients; `serviceman` is primary on one, backup on another, on none of the rest."""
    other_serviceman = ServicemanFactory()
    return {
        "mine": ServiceRequestFactory(client=client_user),
        "mine_primary": ServiceRequestFactory(
            client=client_user, status=S.ASSIGNED, primary_serviceman=serviceman, backup_serviceman=other_serviceman
        ),
        "theirs_backup": ServiceRequestFactory(
            client=other_client, status=S.ASSIGNED, primary_serviceman=other_serviceman, backup_serviceman=serviceman
        ),
        "theirs": ServiceRequestFactory(client=other_client),
        "preferred_only": ServiceRequestFactory(client=other_client, preferred_serviceman=serviceman),
        "mine_deleted": ServiceRequestFactory(client=client_user, status=S.CANCELLED, is_deleted=True),
    }


@pytest.mark.gen_test
async def test_client_lists_only_own_requests(api, client_user, other_client, world):
    mine = await api.get("/api/requests/", user=client_user)
    theirs = await api.get("/api/requests/", user=other_client)

    assert mine.status == 200, mine
    assert ids(mine) == sorted([world["mine"].id, world["mine_primary"].id])
    assert mine.data["count"] == 2
    assert ids(theirs) == sorted([world["theirs_backup"].id, world["theirs"].id, world["preferred_only"].id])


@pytest.mark.gen_test
async def test_serviceman_lists_requests_where_primary_or_backup(api, serviceman, world):
    response = await api.get("/api/requests/", user=serviceman)

    assert response.status == 200, response
    assert ids(response) == sorted([world["mine_primary"].id, world["theirs_backup"].id])


@pytest.mark.gen_test
async def test_admin_lists_every_request_except_deleted(api, admin_user, world):
    response = await api.get("/api/requests/", user=admin_user)

    assert ids(response) == sorted(r.id for name, r in world.items() if name != "mine_deleted")


@pytest.mark.gen_test
async def test_list_is_newest_first_and_paginated(api, client_user):
    requests = [ServiceRequestFactory(client=client_user) for _ in range(3)]

    first = await api.get("/api/requests/?page_size=2", user=client_user)
    second = await api.get("/api/requests/?page_size=2&page=2", user=client_user)

    assert first.data["count"] == 3
    assert [r["id"] for r in first.data["results"] + second.data["results"]] == [r.id for r in reversed(requests)]
    assert first.data["next"] and first.data["previous"] is None
    assert second.data["next"] is None and second.data["previous"]


@pytest.mark.gen_test
async def test_list_filters_by_status_and_emergency(api, admin_user):
    paid = ServiceRequestFactory(status=S.PENDING_ADMIN_ASSIGNMENT)
    paid_emergency = ServiceRequestFactory(status=S.PENDING_ADMIN_ASSIGNMENT, is_emergency=True)
    unpaid_emergency = ServiceRequestFactory(is_emergency=True)
    ServiceRequestFactory()

    by_status = await api.get(f"/api/requests/?status={S.PENDING_ADMIN_ASSIGNMENT}", user=admin_user)
    emergencies = await api.get("/api/requests/?is_emergency=true", user=admin_user)
    both = await api.get(f"/api/requests/?status={S.PENDING_ADMIN_ASSIGNMENT}&is_emergency=false", user=admin_user)
    none = await api.get(f"/api/requests/?status={S.COMPLETED}", user=admin_user)

    assert ids(by_status) == sorted([paid.id, paid_emergency.id])
    assert ids(emergencies) == sorted([paid_emergency.id, unpaid_emergency.id])
    assert ids(both) == [paid.id]
    assert none.data == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.gen_test
async def test_filters_stay_within_the_callers_scope(api, client_user, other_client):
    mine = ServiceRequestFactory(client=client_user, is_emergency=True)
    ServiceRequestFactory(client=other_client, is_emergency=True)

    response = await api.get("/api/requests/?is_emergency=true", user=client_user)

    assert ids(response) == [mine.id]


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["status=DONE", "status=pending_payment", "status=", "is_emergency=perhaps"])
async def test_invalid_list_filters_are_422(api, client_user, query):
    response = await api.get(f"/api/requests/?{query}", user=client_user)

    assert response.status == 422, response
    assert query.split("=")[0] in response.data["error"]["fields"]


@pytest.mark.gen_test
async def test_detail_for_owner_assigned_servicemen_and_admin(api, client_user, serviceman, admin_user, world):
    request = world["mine_primary"]
    backup = world["theirs_backup"]

    for user, request_id in (
        (client_user, request.id),
        (serviceman, request.id),
        (admin_user, request.id),
        (serviceman, backup.id),
    ):
        response = await api.get(f"/api/requests/{request_id}/", user=user)
        assert response.status == 200, (user.role, response)
        assert response.data["id"] == request_id
        assert REQUEST_FIELDS <= set(response.data)
    assert response.data["backup_serviceman_id"] == serviceman.id


@pytest.mark.gen_test
async def test_serviceman_cannot_see_requests_not_assigned_to_them(api, serviceman, world):
    for name in ("mine", "theirs", "preferred_only"):
        response = await api.get(f"/api/requests/{world[name].id}/", user=serviceman)
        assert response.status == 404, (name, response)
        assert (await api.get(f"/api/requests/{world[name].id}/events/", user=serviceman)).status == 404


@pytest.mark.gen_test
async def test_another_clients_request_is_404_everywhere_and_unchanged(api, settings, client_user, other_client):
    request = ServiceRequestFactory(client=other_client)
    before = snapshot(request.id)
    path = f"/api/requests/{request.id}/"

    responses = {
        "get": await api.get(path, user=client_user),
        "patch": await api.patch(path, {"address": "Hijacked"}, user=client_user),
        "delete": await api.delete(path, user=client_user),
        "events": await api.get(path + "events/", user=client_user),
        "cancel": await api.post(path + "cancel/", {"reason": "not mine"}, user=client_user),
    }

    for name, response in responses.items():
        assert response.status == 404, (name, response)
        assert response.error_code == "not_found", name
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_unknown_request_is_404(api, client_user, admin_user):
    for user in (client_user, admin_user):
        assert (await api.get("/api/requests/999999/", user=user)).status == 404
        assert (await api.get("/api/requests/999999/events/", user=user)).status == 404


# --- edit (PATCH) ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_patch_to_a_near_date_makes_it_an_automatic_emergency(api, settings, client_user):
    request = ServiceRequestFactory(client=client_user, booking_date=day(settings, 5))

    response = await api.patch(
        f"/api/requests/{request.id}/", {"booking_date": str(day(settings, 1))}, user=client_user
    )

    assert response.status == 200, response
    assert response.data["booking_date"] == str(day(settings, 1))
    assert (response.data["is_emergency"], response.data["auto_flagged_emergency"], response.data["booking_fee"]) == (
        True,
        True,
        "5000.00",
    )
    stored = ServiceRequest.get_by_id(request.id)
    assert (stored.is_emergency, stored.auto_flagged_emergency, stored.booking_fee) == (True, True, Decimal("5000"))


@pytest.mark.gen_test
async def test_patch_to_a_later_date_drops_an_automatic_emergency(api, settings, client_user):
    request = ServiceRequestFactory(
        client=client_user,
        booking_date=day(settings, 1),
        is_emergency=True,
        auto_flagged_emergency=True,
        booking_fee="5000.00",
    )

    response = await api.patch(
        f"/api/requests/{request.id}/", {"booking_date": str(day(settings, 6))}, user=client_user
    )

    assert response.status == 200, response
    assert (response.data["is_emergency"], response.data["auto_flagged_emergency"], response.data["booking_fee"]) == (
        False,
        False,
        "2000.00",
    )


@pytest.mark.gen_test
async def test_patch_keeps_an_emergency_the_client_chose(api, settings, client_user):
    request = ServiceRequestFactory(
        client=client_user, booking_date=day(settings, 5), is_emergency=True, booking_fee="5000.00"
    )

    moved = await api.patch(f"/api/requests/{request.id}/", {"booking_date": str(day(settings, 8))}, user=client_user)
    text_only = await api.patch(f"/api/requests/{request.id}/", {"description": "Now two fans."}, user=client_user)

    for response in (moved, text_only):
        assert response.status == 200, response
        assert (
            response.data["is_emergency"],
            response.data["auto_flagged_emergency"],
            response.data["booking_fee"],
        ) == (True, False, "5000.00")
    assert text_only.data["description"] == "Now two fans."
    assert not [e for e in events_of(request) if e.type == "emergency_changed"]


@pytest.mark.gen_test
async def test_patch_client_may_drop_an_emergency_they_chose(api, settings, client_user):
    request = ServiceRequestFactory(
        client=client_user, booking_date=day(settings, 5), is_emergency=True, booking_fee="5000.00"
    )

    response = await api.patch(f"/api/requests/{request.id}/", {"is_emergency": False}, user=client_user)

    assert response.status == 200, response
    assert (response.data["is_emergency"], response.data["booking_fee"]) == (False, "2000.00")


@pytest.mark.gen_test
async def test_patch_client_may_ask_for_an_emergency(api, settings, client_user):
    request = ServiceRequestFactory(client=client_user, booking_date=day(settings, 5))

    response = await api.patch(f"/api/requests/{request.id}/", {"is_emergency": True}, user=client_user)

    assert (response.data["is_emergency"], response.data["auto_flagged_emergency"], response.data["booking_fee"]) == (
        True,
        False,
        "5000.00",
    )


@pytest.mark.gen_test
async def test_patch_emergency_change_records_events(api, settings, client_user):
    request = ServiceRequestFactory(client=client_user, booking_date=day(settings, 5))

    await api.patch(f"/api/requests/{request.id}/", {"booking_date": str(day(settings, 0))}, user=client_user)

    events = events_of(request)
    assert [e.type for e in events] == ["request_updated", "emergency_changed"]
    changed = events[1]
    assert changed.actor_id == client_user.id
    assert changed.payload["is_emergency"] is True and changed.payload["previous"] is False
    assert changed.payload["service_request_id"] == request.id
    assert "booking_date" in events[0].payload["fields"]


@pytest.mark.gen_test
async def test_patch_address_alone_records_no_emergency_change(api, client_user):
    request = ServiceRequestFactory(client=client_user)

    response = await api.patch(
        f"/api/requests/{request.id}/", {"address": "9 Broad Street, Lagos Island"}, user=client_user
    )

    assert response.status == 200, response
    assert response.data["address"] == "9 Broad Street, Lagos Island"
    assert [e.type for e in events_of(request)] == ["request_updated"]


@pytest.mark.gen_test
async def test_patch_refuses_to_unset_an_automatic_emergency(api, settings, client_user):
    request = ServiceRequestFactory(
        client=client_user,
        booking_date=day(settings, 1),
        is_emergency=True,
        auto_flagged_emergency=True,
        booking_fee="5000.00",
    )
    before = snapshot(request.id)

    response = await api.patch(f"/api/requests/{request.id}/", {"is_emergency": False}, user=client_user)
    near = await api.patch(
        f"/api/requests/{ServiceRequestFactory(client=client_user).id}/",
        {"booking_date": str(day(settings, 1)), "is_emergency": False},
        user=client_user,
    )

    for refused in (response, near):
        assert refused.status == 422, refused
        assert "is_emergency" in refused.data["error"]["fields"]
        assert "cannot be unset" in refused.data["error"]["fields"]["is_emergency"][0]
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_patch_refuses_a_past_date(api, settings, client_user):
    request = ServiceRequestFactory(client=client_user)
    before = snapshot(request.id)

    response = await api.patch(
        f"/api/requests/{request.id}/", {"booking_date": str(day(settings, -1))}, user=client_user
    )

    assert response.status == 422, response
    assert list(response.data["error"]["fields"]) == ["booking_date"]
    assert snapshot(request.id) == before


@pytest.mark.gen_test
@pytest.mark.parametrize("status", NOT_PENDING_PAYMENT)
async def test_patch_outside_pending_payment_is_409_and_changes_nothing(api, settings, client_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)
    before = snapshot(request.id)

    response = await api.patch(
        f"/api/requests/{request.id}/",
        {"booking_date": str(day(settings, 0)), "address": "Elsewhere"},
        user=client_user,
    )

    assert response.status == 409, response
    assert response.error_code == "invalid_transition"
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_patch_is_for_the_owning_client_only(api, client_user, admin_user, serviceman):
    request = ServiceRequestFactory(client=client_user, primary_serviceman=serviceman)
    before = snapshot(request.id)

    for user in (admin_user, serviceman):
        response = await api.patch(f"/api/requests/{request.id}/", {"address": "Elsewhere"}, user=user)
        assert response.status == 403, (user.role, response)
    assert snapshot(request.id) == before


# --- soft delete ----------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_delete_unpaid_request_cancels_and_hides_it(api, client_user):
    request = ServiceRequestFactory(client=client_user)

    response = await api.delete(f"/api/requests/{request.id}/", user=client_user)

    assert response.status == 204, response
    stored = ServiceRequest.get_by_id(request.id)  # the row is kept
    assert (stored.status, stored.is_deleted) == (S.CANCELLED, True)
    assert stored.deleted_at is not None
    assert (await api.get("/api/requests/", user=client_user)).data["count"] == 0
    assert (await api.get(f"/api/requests/{request.id}/", user=client_user)).status == 404
    [event] = events_of(request)
    assert (event.type, event.from_status, event.to_status) == ("request_cancelled", S.PENDING_PAYMENT, S.CANCELLED)


@pytest.mark.gen_test
async def test_deleted_request_is_hidden_from_admin_too(api, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user)

    await api.delete(f"/api/requests/{request.id}/", user=client_user)

    assert (await api.get(f"/api/requests/{request.id}/", user=admin_user)).status == 404
    assert (await api.get("/api/requests/", user=admin_user)).data["count"] == 0
    assert (await api.delete(f"/api/requests/{request.id}/", user=client_user)).status == 404


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.ASSIGNED, S.PENDING_ADMIN_ASSIGNMENT, S.IN_PROGRESS])
async def test_delete_active_request_is_409_and_changes_nothing(api, client_user, admin_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)
    before = snapshot(request.id)

    for user in (client_user, admin_user):
        response = await api.delete(f"/api/requests/{request.id}/", user=user)
        assert response.status == 409, response
        assert response.error_code == "invalid_transition"
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.CANCELLED, S.COMPLETED])
async def test_delete_finished_request_only_hides_it(api, client_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)

    response = await api.delete(f"/api/requests/{request.id}/", user=client_user)

    assert response.status == 204, response
    stored = ServiceRequest.get_by_id(request.id)
    assert (stored.status, stored.is_deleted) == (status, True)
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_admin_may_delete_an_unpaid_request(api, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user)

    response = await api.delete(f"/api/requests/{request.id}/", user=admin_user)

    assert response.status == 204, response
    assert ServiceRequest.get_by_id(request.id).is_deleted is True
    assert events_of(request)[0].actor_id == admin_user.id


@pytest.mark.gen_test
async def test_serviceman_cannot_delete(api, serviceman):
    request = ServiceRequestFactory(status=S.CANCELLED, primary_serviceman=serviceman)

    response = await api.delete(f"/api/requests/{request.id}/", user=serviceman)

    assert response.status == 403, response
    assert ServiceRequest.get_by_id(request.id).is_deleted is False


# --- cancel ---------------------------------------------------------------------------------------------


def cancel_path(request):
    return f"/api/requests/{request.id}/cancel/"


@pytest.mark.gen_test
@pytest.mark.parametrize("status", BEFORE_PAYMENT_CONFIRMED)
async def test_client_cancels_until_the_final_payment(api, client_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)

    response = await api.post(cancel_path(request), {"reason": "Fixed it myself"}, user=client_user)

    assert response.status == 200, response
    assert response.data["status"] == S.CANCELLED
    assert ServiceRequest.get_by_id(request.id).status == S.CANCELLED
    [event] = events_of(request)
    assert (event.type, event.actor_id, event.from_status, event.to_status) == (
        "request_cancelled",
        client_user.id,
        status,
        S.CANCELLED,
    )
    assert event.payload["reason"] == "Fixed it myself"
    assert event.payload["by_role"] == "client"


@pytest.mark.gen_test
async def test_cancel_reason_is_optional(api, client_user):
    request = ServiceRequestFactory(client=client_user)

    response = await api.post(cancel_path(request), user=client_user)

    assert response.status == 200, response
    assert events_of(request)[0].payload["reason"] == ""


@pytest.mark.gen_test
@pytest.mark.parametrize("status", FROM_PAYMENT_CONFIRMED + [S.CANCELLED])
async def test_client_cannot_cancel_once_the_final_payment_is_made(api, client_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)
    before = snapshot(request.id)

    response = await api.post(cancel_path(request), {"reason": "changed my mind"}, user=client_user)

    assert response.status == 409, response
    assert response.error_code == "invalid_transition"
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("status", BEFORE_PAYMENT_CONFIRMED)
async def test_admin_cancels_any_time_before_payment_confirmed(api, admin_user, status):
    request = ServiceRequestFactory(status=status)

    response = await api.post(cancel_path(request), {"reason": "client called"}, user=admin_user)

    assert response.status == 200, response
    assert ServiceRequest.get_by_id(request.id).status == S.CANCELLED
    [event] = events_of(request)
    assert (event.actor_id, event.from_status, event.payload["by_role"]) == (admin_user.id, status, "admin")


@pytest.mark.gen_test
@pytest.mark.parametrize("status", FROM_PAYMENT_CONFIRMED + [S.CANCELLED])
async def test_admin_cannot_cancel_from_payment_confirmed_on(api, admin_user, status):
    request = ServiceRequestFactory(status=status)
    before = snapshot(request.id)

    response = await api.post(cancel_path(request), {"reason": "too late"}, user=admin_user)

    assert response.status == 409, response
    assert response.error_code == "invalid_transition"
    assert snapshot(request.id) == before
    assert Event.select().count() == 0


@pytest.mark.gen_test
async def test_serviceman_cannot_cancel(api, serviceman):
    request = ServiceRequestFactory(status=S.ASSIGNED, primary_serviceman=serviceman)

    response = await api.post(cancel_path(request), {"reason": "busy"}, user=serviceman)

    assert response.status == 403, response
    assert ServiceRequest.get_by_id(request.id).status == S.ASSIGNED


# --- timeline -------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_timeline_lists_every_change_in_order(api, settings, client_user, admin_user, category):
    created = await api.post("/api/requests/", body(category, day(settings, 6)), user=client_user)
    request_id = created.data["id"]
    await api.patch(f"/api/requests/{request_id}/", {"booking_date": str(day(settings, 1))}, user=client_user)
    await api.post(f"/api/requests/{request_id}/cancel/", {"reason": "duplicate"}, user=admin_user)

    response = await api.get(f"/api/requests/{request_id}/events/", user=client_user)

    assert response.status == 200, response
    events = response.data["results"]
    assert response.data["count"] == 4
    assert [e["type"] for e in events] == [
        "request_created",
        "request_updated",
        "emergency_changed",
        "request_cancelled",
    ]
    assert all(EVENT_FIELDS <= set(e) for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert [e["actor_id"] for e in events] == [client_user.id, client_user.id, client_user.id, admin_user.id]
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, S.PENDING_PAYMENT),
        (None, None),
        (None, None),
        (S.PENDING_PAYMENT, S.CANCELLED),
    ]
    assert [e["payload"]["is_emergency"] for e in events] == [False, True, True, True]
    assert all(e["payload"]["service_request_id"] == request_id for e in events)
    assert events[3]["payload"]["reason"] == "duplicate"
    assert all(e["created_at"].endswith("+00:00") for e in events)


@pytest.mark.gen_test
async def test_timeline_shows_only_this_requests_events(api, settings, client_user, category):
    first = await api.post("/api/requests/", body(category, day(settings, 6)), user=client_user)
    second = await api.post("/api/requests/", body(category, day(settings, 7)), user=client_user)

    response = await api.get(f"/api/requests/{first.data['id']}/events/", user=client_user)

    assert [e["payload"]["service_request_id"] for e in response.data["results"]] == [first.data["id"]]
    assert second.data["id"] != first.data["id"]


@pytest.mark.gen_test
async def test_timeline_visible_to_assigned_serviceman_and_admin(api, admin_user, serviceman, other_client):
    request = ServiceRequestFactory(client=other_client, status=S.ASSIGNED, backup_serviceman=serviceman)
    await api.post(f"/api/admin/requests/{request.id}/emergency/", {"is_emergency": True}, user=admin_user)

    for user in (serviceman, admin_user):
        response = await api.get(f"/api/requests/{request.id}/events/", user=user)
        assert response.status == 200, response
        [event] = response.data["results"]
        assert (event["type"], event["actor_id"]) == ("emergency_changed", admin_user.id)
        assert event["payload"]["is_emergency"] is True
