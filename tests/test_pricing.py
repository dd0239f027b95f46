"""Pricing: the primary serviceman's estimate, the admin's markup, the client's approval, and the
negotiation between the client and the admins (with the serviceman consulted on the side).

Given a request in the state a step needs, when the right party acts, then the price and status
move once and the other party is told; when anyone else acts, or in the wrong state, or with a bad
amount, then nothing changes.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from models import NegotiationStatus, Notification, PriceNegotiation, RequestStatus
from models.actions import pricing
from models.db import database
from models.foundation.errors import InvalidTransition

from .booking_support import events_of, stored
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory
from .pipeline_support import mail_text

S = RequestStatus
ESTIMATE = "/api/serviceman/submit-estimate/"


def markup_path(request):
    return f"/api/admin/requests/{request.id}/markup/"


def approve_path(request):
    return f"/api/requests/{request.id}/approve-cost/"


def negotiations_path(request):
    return f"/api/requests/{request.id}/negotiations/"


def answer_path(negotiation_id, action):
    return f"/api/negotiations/{negotiation_id}/{action}/"


def priced_request(status, client=None, estimate="12500.00", markup="20.00", final_cost="15000.00"):
    """A request with its primary and backup servicemen, in `status`, with the prices that status implies."""
    prices = {}
    if status not in (S.PENDING_PAYMENT, S.PENDING_ADMIN_ASSIGNMENT, S.ASSIGNED):
        prices["estimate_amount"] = Decimal(estimate)
    if prices and status != S.SERVICEMAN_INSPECTED:
        prices.update(markup_percentage=Decimal(markup), final_cost=Decimal(final_cost))
    return ServiceRequestFactory(
        status=status,
        client=client or ClientFactory(),
        primary_serviceman=ServicemanFactory(),
        backup_serviceman=ServicemanFactory(),
        **prices,
    )


def notified(user):
    """The notification types a user has received (the embedded pipeline delivers on commit)."""
    return [
        n.notification_type for n in Notification.select().where(Notification.user == user.id).order_by(Notification.id)
    ]


async def propose(api, request, amount, user=None, message=""):
    response = await api.post(
        negotiations_path(request), {"proposed_amount": amount, "message": message}, user=user or request.client
    )
    assert response.status == 201, response
    return response.data


# --- the estimate ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_primary_serviceman_submits_the_estimate_and_admins_are_told(api, admin_user):
    request = priced_request(S.ASSIGNED)
    primary = request.primary_serviceman

    response = await api.post(
        ESTIMATE,
        {"service_request_id": request.id, "amount": "12500.50", "notes": "Replace the trap and two joints."},
        user=primary,
    )

    assert response.status == 200, response
    assert response.data["status"] == S.SERVICEMAN_INSPECTED
    assert response.data["estimate_amount"] == "12500.50"
    assert response.data["estimate_notes"] == "Replace the trap and two joints."
    assert stored(request).estimate_amount == Decimal("12500.50")
    [event] = events_of(request, "estimate_submitted")
    assert (event.actor_id, event.from_status, event.to_status) == (primary.id, S.ASSIGNED, S.SERVICEMAN_INSPECTED)
    assert event.payload["amount"] == "12500.50"
    assert notified(admin_user) == ["estimate_submitted"]
    assert notified(request.client) == [] and notified(primary) == []


@pytest.mark.gen_test
async def test_only_the_primary_serviceman_may_submit_the_estimate(api, admin_user):
    """The backup sees the request, so it is told it may not (403); a stranger may not learn it exists (404)."""
    request = priced_request(S.ASSIGNED)
    body = {"service_request_id": request.id, "amount": "100.00", "notes": ""}
    stranger = ServicemanFactory()
    before = snapshot()

    assert_error(await api.post(ESTIMATE, body, user=request.backup_serviceman), 403, "permission_denied")
    assert_error(await api.post(ESTIMATE, body, user=stranger), 404, "not_found")
    assert_error(await api.post(ESTIMATE, body, user=request.client), 403, "permission_denied")
    assert_error(await api.post(ESTIMATE, body, user=admin_user), 403, "permission_denied")
    assert_error(await api.post(ESTIMATE, {**body, "service_request_id": 999999}, user=request.primary_serviceman), 404)

    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "amount",
    [
        0,
        "0.00",
        "0.004",
        -5,
        "-0.01",
        "1000000000.01",
        10**30,
        "1e400",
        "abc",
        "",
        "NaN",
        "Infinity",
        True,
        None,
        [1],
        {"amount": 1},
    ],
)
async def test_an_estimate_that_is_not_a_positive_bounded_amount_is_422(api, amount):
    request = priced_request(S.ASSIGNED)
    before = snapshot()

    response = await api.post(
        ESTIMATE, {"service_request_id": request.id, "amount": amount}, user=request.primary_serviceman
    )

    assert list(assert_error(response, 422, "validation_error")["fields"]) == ["amount"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_estimate_notes_are_bounded_and_amounts_have_the_documented_two_places(api):
    request = priced_request(S.ASSIGNED)
    body = {"service_request_id": request.id, "amount": "100.01"}

    response = await api.post(ESTIMATE, {**body, "notes": "x" * 2001}, user=request.primary_serviceman)
    assert list(assert_error(response, 422)["fields"]) == ["notes"]
    response = await api.post(ESTIMATE, {**body, "amount": "100.005"}, user=request.primary_serviceman)
    assert list(assert_error(response, 422)["fields"]) == ["amount"]

    response = await api.post(ESTIMATE, {**body, "notes": "x" * 2000}, user=request.primary_serviceman)
    assert response.status == 200 and response.data["estimate_amount"] == "100.01", response


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "status", [S.PENDING_ADMIN_ASSIGNMENT, S.SERVICEMAN_INSPECTED, S.AWAITING_CLIENT_APPROVAL, S.CANCELLED]
)
async def test_an_estimate_in_the_wrong_state_is_409(api, status):
    request = priced_request(status)
    before = snapshot()

    response = await api.post(
        ESTIMATE, {"service_request_id": request.id, "amount": "900.00"}, user=request.primary_serviceman
    )

    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


# --- the markup --------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "estimate,markup,final_cost,fee",
    [
        ("12345.67", "17.5", "14506.16", "2160.49"),  # 14506.16225
        ("100.10", "5", "105.11", "5.01"),  # 105.105: half up, not to even
        ("0.01", "50", "0.02", "0.01"),  # 0.015 (floats round this to 0.01)
        ("10000.00", "0", "10000.00", "0.00"),
        ("10000.00", "100", "20000.00", "10000.00"),
        ("999999999.99", "100.00", "1999999999.98", "999999999.99"),
        ("3333.33", "33.33", "4444.33", "1111.00"),  # 4444.328889
    ],
)
async def test_the_markup_sets_the_final_cost_in_decimal_to_the_kobo(
    api, admin_user, estimate, markup, final_cost, fee
):
    request = priced_request(S.SERVICEMAN_INSPECTED, estimate=estimate)

    response = await api.post(markup_path(request), {"markup_percentage": markup}, user=admin_user)

    assert response.status == 200, response
    assert response.data["status"] == S.AWAITING_CLIENT_APPROVAL
    assert response.data["final_cost"] == final_cost
    assert response.data["markup_percentage"] == f"{Decimal(markup):.2f}"
    assert stored(request).final_cost == Decimal(final_cost)
    [event] = events_of(request, "final_cost_set")
    assert (event.from_status, event.to_status) == (S.SERVICEMAN_INSPECTED, S.AWAITING_CLIENT_APPROVAL)
    assert {k: event.payload[k] for k in ("service_cost", "platform_fee", "final_cost")} == {
        "service_cost": f"{Decimal(estimate):.2f}",
        "platform_fee": fee,
        "final_cost": final_cost,
    }


def test_the_markup_arithmetic_never_touches_floats():
    assert pricing.final_cost_for(Decimal("0.01"), Decimal("50")) == Decimal("0.02")
    assert round(0.01 * 1.5, 2) == 0.01  # what a float computation would have charged


@pytest.mark.gen_test
async def test_the_client_is_told_the_final_cost_with_its_breakdown(api, admin_user):
    request = priced_request(S.SERVICEMAN_INSPECTED, estimate="12500.00")

    await api.post(markup_path(request), {"markup_percentage": "20"}, user=admin_user)

    [note] = Notification.select().where(Notification.user == request.client_id)
    assert note.notification_type == "final_cost_set"
    assert "₦15,000.00" in note.title
    assert "service ₦12,500.00 plus platform fee ₦2,500.00" in note.message
    assert notified(admin_user) == [] and notified(request.primary_serviceman) == []


@pytest.mark.gen_test
async def test_the_markup_may_be_set_again_until_the_client_answers(api, admin_user):
    request = priced_request(S.SERVICEMAN_INSPECTED, estimate="10000.00")
    await api.post(markup_path(request), {"markup_percentage": "20"}, user=admin_user)

    response = await api.post(markup_path(request), {"markup_percentage": "12.5"}, user=admin_user)

    assert response.status == 200, response
    assert (response.data["status"], response.data["final_cost"]) == (S.AWAITING_CLIENT_APPROVAL, "11250.00")
    first, second = events_of(request, "final_cost_set")
    assert (second.from_status, second.to_status) == (None, None)  # an update, not a transition
    assert (second.payload["final_cost"], second.payload["previous_final_cost"]) == ("11250.00", "12000.00")
    assert second.payload["platform_fee"] == "1250.00"
    assert notified(request.client) == ["final_cost_set", "final_cost_set"]
    # The same markup again changes nothing and tells nobody.
    before = snapshot()
    assert (await api.post(markup_path(request), {"markup_percentage": "12.50"}, user=admin_user)).status == 200
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("markup", ["-0.01", -1, "100.01", 101, "abc", None, "NaN", "1e400", ""])
async def test_a_markup_outside_0_to_100_is_422(api, admin_user, markup):
    request = priced_request(S.SERVICEMAN_INSPECTED)
    before = snapshot()
    response = await api.post(markup_path(request), {"markup_percentage": markup}, user=admin_user)
    assert list(assert_error(response, 422)["fields"]) == ["markup_percentage"]
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.ASSIGNED, S.NEGOTIATING, S.AWAITING_PAYMENT, S.CANCELLED])
async def test_the_markup_in_the_wrong_state_is_409(api, admin_user, status):
    request = priced_request(status)
    before = snapshot()
    response = await api.post(markup_path(request), {"markup_percentage": "10"}, user=admin_user)
    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_admins_set_the_markup(api, admin_user):
    request = priced_request(S.SERVICEMAN_INSPECTED)
    before = snapshot()
    for user in (request.client, request.primary_serviceman):
        assert_error(await api.post(markup_path(request), {"markup_percentage": "10"}, user=user), 403)
    assert_error(
        await api.post("/api/admin/requests/999999/markup/", {"markup_percentage": "10"}, user=admin_user), 404
    )
    assert snapshot() == before


# --- approving the cost ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_client_approves_the_final_cost_and_admins_are_told(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)

    response = await api.post(approve_path(request), user=request.client)

    assert response.status == 200, response
    assert (response.data["status"], response.data["final_cost"]) == (S.AWAITING_PAYMENT, "15000.00")
    [event] = events_of(request, "cost_approved")
    assert (event.actor_id, event.from_status, event.to_status) == (
        request.client_id,
        S.AWAITING_CLIENT_APPROVAL,
        S.AWAITING_PAYMENT,
    )
    assert notified(admin_user) == ["cost_approved"]


@pytest.mark.gen_test
async def test_the_client_may_name_the_cost_they_saw_and_a_changed_one_is_not_approved(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    await api.post(markup_path(request), {"markup_percentage": "40"}, user=admin_user)  # now 17500.00
    before = snapshot()

    response = await api.post(approve_path(request), {"final_cost": "15000.00"}, user=request.client)

    assert "₦17,500.00" in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before
    response = await api.post(approve_path(request), {"final_cost": "17500.00"}, user=request.client)
    assert response.status == 200 and response.data["status"] == S.AWAITING_PAYMENT, response


@pytest.mark.gen_test
async def test_only_the_owning_client_approves_in_the_right_state(api, admin_user, other_client):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    before = snapshot()
    assert_error(await api.post(approve_path(request), user=other_client), 404)
    assert_error(await api.post(approve_path(request), user=admin_user), 403)
    assert_error(await api.post(approve_path(request), user=request.primary_serviceman), 403)
    assert snapshot() == before
    for status in (S.SERVICEMAN_INSPECTED, S.AWAITING_PAYMENT, S.CANCELLED):
        early_or_late = priced_request(status)
        response = await api.post(approve_path(early_or_late), user=early_or_late.client)
        assert status in assert_error(response, 409, "invalid_transition")["message"]
        assert stored(early_or_late).status == status


# --- negotiation -----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_negotiation_ping_pong_ends_at_the_last_amount(api, admin_user, paystack):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    client = request.client

    # The client counter-offers the admin's 15000.00.
    proposal = await propose(api, request, "13000.00", message="My budget is tight.")
    assert (proposal["status"], proposal["proposed_by_id"]) == (NegotiationStatus.PENDING, client.id)
    assert stored(request).status == S.NEGOTIATING
    # An admin counters, the client counters back, the admin accepts.
    response = await api.post(
        answer_path(proposal["id"], "counter"),
        {"proposed_amount": "14500.00", "message": "Parts are costly."},
        user=admin_user,
    )
    assert response.status == 201 and response.data["proposed_by_id"] == admin_user.id, response
    admin_counter = response.data
    response = await api.post(answer_path(admin_counter["id"], "counter"), {"proposed_amount": "14000.00"}, user=client)
    assert response.status == 201, response
    client_counter = response.data
    response = await api.post(answer_path(client_counter["id"], "accept"), user=admin_user)

    assert response.status == 200 and response.data["status"] == NegotiationStatus.ACCEPTED, response
    request = stored(request)
    assert (request.status, request.final_cost) == (S.AWAITING_PAYMENT, Decimal("14000.00"))
    history = (await api.get(negotiations_path(request), user=client)).data["results"]
    assert [(h["proposed_amount"], h["status"]) for h in history] == [
        ("13000.00", "COUNTERED"),
        ("14500.00", "COUNTERED"),
        ("14000.00", "ACCEPTED"),
    ]
    moves = events_of(request, "negotiation_message")
    assert [(e.payload["action"], e.actor_id, e.from_status, e.to_status) for e in moves] == [
        ("proposed", client.id, S.AWAITING_CLIENT_APPROVAL, S.NEGOTIATING),
        ("countered", admin_user.id, S.NEGOTIATING, S.NEGOTIATING),
        ("countered", client.id, S.NEGOTIATING, S.NEGOTIATING),
        ("accepted", admin_user.id, S.NEGOTIATING, S.AWAITING_PAYMENT),
    ]
    # Each move told the other party only.
    assert notified(admin_user) == ["negotiation_message", "negotiation_message"]
    assert notified(client) == ["negotiation_message", "negotiation_message"]
    # The final payment is the agreed amount.
    checkout = await api.post(
        "/api/payments/initialize/", {"service_request_id": request.id, "payment_type": "FINAL_PAYMENT"}, user=client
    )
    assert checkout.status == 200 and checkout.data["amount"] == "14000.00", checkout


@pytest.mark.gen_test
async def test_the_client_accepts_an_admin_counter(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "13000.00")
    counter = (
        await api.post(answer_path(proposal["id"], "counter"), {"proposed_amount": "14200.00"}, user=admin_user)
    ).data

    response = await api.post(answer_path(counter["id"], "accept"), user=request.client)

    assert response.status == 200, response
    assert (stored(request).status, stored(request).final_cost) == (S.AWAITING_PAYMENT, Decimal("14200.00"))
    assert notified(admin_user) == ["negotiation_message", "negotiation_message"]  # the proposal and the accept


@pytest.mark.gen_test
async def test_a_rejected_proposal_keeps_the_negotiation_open(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "9000.00")

    response = await api.post(answer_path(proposal["id"], "reject"), user=admin_user)

    assert response.status == 200 and response.data["status"] == NegotiationStatus.REJECTED, response
    assert (stored(request).status, stored(request).final_cost) == (S.NEGOTIATING, Decimal("15000.00"))
    [_, rejected] = events_of(request, "negotiation_message")
    assert (rejected.payload["action"], rejected.from_status, rejected.to_status) == (
        "rejected",
        S.NEGOTIATING,
        S.NEGOTIATING,
    )
    assert notified(request.client) == ["negotiation_message"]
    # Nothing is pending now: either side may propose again, and the client may take the standing price.
    again = await propose(api, request, "12000.00")
    assert (await api.post(answer_path(again["id"], "reject"), user=admin_user)).status == 200
    await propose(api, request, "14000.00", user=admin_user)
    response = await api.post(approve_path(request), user=request.client)
    assert_error(response, 409, "invalid_transition")  # the admin's proposal is pending: answer it first
    PriceNegotiation.update(status=NegotiationStatus.REJECTED).execute()
    response = await api.post(approve_path(request), user=request.client)
    assert response.status == 200 and response.data["final_cost"] == "15000.00", response


@pytest.mark.gen_test
async def test_one_proposal_may_be_pending_at_a_time(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    await propose(api, request, "13000.00")
    before = snapshot()

    for user in (request.client, admin_user):
        response = await api.post(negotiations_path(request), {"proposed_amount": "13500.00"}, user=user)
        assert "pending" in assert_error(response, 409, "invalid_transition")["message"]

    assert snapshot() == before


@pytest.mark.gen_test
async def test_the_admins_first_word_is_the_markup_not_a_proposal(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    response = await api.post(negotiations_path(request), {"proposed_amount": "15500.00"}, user=admin_user)
    assert S.AWAITING_CLIENT_APPROVAL in assert_error(response, 409, "invalid_transition")["message"]
    assert not PriceNegotiation.select().exists()


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.SERVICEMAN_INSPECTED, S.AWAITING_PAYMENT, S.CANCELLED])
async def test_proposing_in_the_wrong_state_is_409(api, status):
    request = priced_request(status)
    response = await api.post(negotiations_path(request), {"proposed_amount": "100.00"}, user=request.client)
    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert not PriceNegotiation.select().exists()


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "body,field",
    [
        ({"proposed_amount": "0"}, "proposed_amount"),
        ({"proposed_amount": "-100"}, "proposed_amount"),
        ({"proposed_amount": "1000000000.01"}, "proposed_amount"),
        ({"proposed_amount": "lots"}, "proposed_amount"),
        ({}, "proposed_amount"),
        ({"proposed_amount": "100.00", "message": "x" * 2001}, "message"),
    ],
)
async def test_proposals_need_a_positive_bounded_amount_and_a_bounded_message(api, admin_user, body, field):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "13000.00")
    before = snapshot()

    for path, user in (
        (negotiations_path(request), request.client),
        (answer_path(proposal["id"], "counter"), admin_user),
    ):
        response = await api.post(path, body, user=user)
        assert list(assert_error(response, 422)["fields"]) == [field]

    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_the_other_party_answers_a_proposal(api, admin_user, other_client):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "13000.00")
    before = snapshot()

    for action, body in (("accept", None), ("reject", None), ("counter", {"proposed_amount": "12000.00"})):
        path = answer_path(proposal["id"], action)
        assert_error(await api.post(path, body, user=request.client), 403, "permission_denied")  # their own
        assert_error(await api.post(path, body, user=other_client), 404, "not_found")
        assert_error(await api.post(path, body, user=request.primary_serviceman), 403)
        assert_error(await api.post(answer_path(999999, action), body, user=admin_user), 404)
    assert snapshot() == before

    # An admin's counter is the platform's word: another admin does not answer it, the client does.
    counter = (
        await api.post(answer_path(proposal["id"], "counter"), {"proposed_amount": "14000.00"}, user=admin_user)
    ).data
    assert_error(await api.post(answer_path(counter["id"], "accept"), user=AdminFactory()), 403, "permission_denied")
    assert (await api.post(answer_path(counter["id"], "accept"), user=request.client)).status == 200


@pytest.mark.gen_test
async def test_a_proposal_already_answered_cannot_be_answered_again(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "13000.00")
    assert (
        await api.post(answer_path(proposal["id"], "counter"), {"proposed_amount": "14000.00"}, user=admin_user)
    ).status == 201
    another_admin = AdminFactory()
    before = snapshot()

    for action, body in (("accept", None), ("reject", None), ("counter", {"proposed_amount": "1.00"})):
        response = await api.post(answer_path(proposal["id"], action), body, user=another_admin)
        assert "COUNTERED" in assert_error(response, 409, "invalid_transition")["message"]

    assert snapshot() == before


@pytest.mark.gen_test
async def test_a_pending_proposal_on_a_cancelled_request_cannot_be_accepted(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = await propose(api, request, "13000.00")
    assert (await api.post(f"/api/requests/{request.id}/cancel/", {"reason": "no"}, user=admin_user)).status == 200

    response = await api.post(answer_path(proposal["id"], "accept"), user=admin_user)

    assert S.CANCELLED in assert_error(response, 409, "invalid_transition")["message"]
    assert PriceNegotiation.get_by_id(proposal["id"]).status == NegotiationStatus.PENDING
    assert stored(request).status == S.CANCELLED


@pytest.mark.gen_test
async def test_the_history_is_for_the_owning_client_and_admins_oldest_first(api, admin_user, other_client):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    first = await propose(api, request, "13000.00", message="first")
    await api.post(
        answer_path(first["id"], "counter"), {"proposed_amount": "14000.00", "message": "second"}, user=admin_user
    )
    priced_request(S.AWAITING_CLIENT_APPROVAL, client=other_client)  # someone else's, not listed

    for user in (request.client, admin_user):
        response = await api.get(negotiations_path(request), user=user)
        assert response.status == 200 and response.data["count"] == 2, response
        assert [(n["message"], n["service_request_id"]) for n in response.data["results"]] == [
            ("first", request.id),
            ("second", request.id),
        ]
        assert set(response.data["results"][0]) == {
            "id",
            "service_request_id",
            "proposed_by_id",
            "proposed_amount",
            "message",
            "status",
            "created_at",
        }
    assert_error(await api.get(negotiations_path(request), user=other_client), 404)
    assert_error(await api.get(negotiations_path(request), user=request.primary_serviceman), 403)
    assert_error(await api.post(negotiations_path(request), {"proposed_amount": "1.00"}, user=other_client), 404)


# --- consulting the serviceman -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_admin_consults_the_primary_serviceman_who_replies(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    primary = request.primary_serviceman
    await propose(api, request, "13000.00")

    response = await api.post(
        f"/api/admin/requests/{request.id}/consult-serviceman/",
        {"message": "Could you do it for less?"},
        user=admin_user,
    )

    assert response.status == 201 and response.data["type"] == "serviceman_consulted", response
    asked = response.data
    assert (asked["from_status"], asked["to_status"]) == (S.NEGOTIATING, S.NEGOTIATING)
    assert (asked["payload"]["offer_amount"], asked["payload"]["estimate_amount"]) == ("13000.00", "12500.00")
    [note] = Notification.select().where(Notification.user == primary.id)
    assert note.notification_type == "serviceman_consulted" and "₦13,000.00" in note.title
    assert "Could you do it for less?" in note.message
    assert notified(request.backup_serviceman) == []

    response = await api.post(
        f"/api/serviceman/requests/{request.id}/consultation-reply/",
        {"acceptable": False, "message": "Not below 12500."},
        user=primary,
    )

    assert response.status == 201 and response.data["type"] == "consultation_replied", response
    assert response.data["payload"]["consultation_event_id"] == asked["id"]
    assert response.data["payload"]["acceptable"] is False
    assert notified(admin_user) == ["negotiation_message", "consultation_replied"]
    [reply] = Notification.select().where(
        Notification.user == admin_user.id, Notification.notification_type == "consultation_replied"
    )
    assert "not acceptable" in reply.title and "Not below 12500." in reply.message
    assert stored(request).status == S.NEGOTIATING


@pytest.mark.gen_test
async def test_consultations_need_the_right_state_people_and_words(api, admin_user):
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    consult = f"/api/admin/requests/{request.id}/consult-serviceman/"
    reply = f"/api/serviceman/requests/{request.id}/consultation-reply/"
    before = snapshot()

    assert_error(await api.post(consult, {"message": "ok?"}, user=admin_user), 409, "invalid_transition")
    assert snapshot() == before
    await propose(api, request, "13000.00")
    before = snapshot()
    assert_error(await api.post(reply, {"acceptable": True}, user=request.primary_serviceman), 409)  # not asked
    assert list(assert_error(await api.post(consult, {"message": ""}, user=admin_user), 422)["fields"]) == ["message"]
    assert_error(await api.post(consult, {"message": "ok?"}, user=request.client), 403)
    assert_error(
        await api.post("/api/admin/requests/999999/consult-serviceman/", {"message": "ok?"}, user=admin_user), 404
    )
    assert snapshot() == before

    assert (await api.post(consult, {"message": "ok?"}, user=admin_user)).status == 201
    stranger = ServicemanFactory()
    before = snapshot()
    assert_error(await api.post(reply, {"acceptable": True}, user=request.backup_serviceman), 403)
    assert_error(await api.post(reply, {"acceptable": True}, user=stranger), 404)
    assert_error(await api.post(reply, {"acceptable": True}, user=admin_user), 403)
    assert list(
        assert_error(await api.post(reply, {"message": "yes"}, user=request.primary_serviceman), 422)["fields"]
    ) == ["acceptable"]
    assert snapshot() == before
    assert (await api.post(reply, {"acceptable": True}, user=request.primary_serviceman)).status == 201


# --- concurrency -------------------------------------------------------------------------------------


def _all_at_once(calls):
    """Run the calls in threads released together by a barrier, each with its own connection; returns
    each call's result or the InvalidTransition it raised."""
    start = threading.Barrier(len(calls), timeout=20)

    def one(call):
        with database.connection_context():
            start.wait()
            try:
                return call()
            except InvalidTransition as refused:
                return refused

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


ANSWERS = {
    "accept": lambda admin, proposal_id: pricing.accept_proposal(admin, proposal_id),
    "reject": lambda admin, proposal_id: pricing.reject_proposal(admin, proposal_id),
    "counter": lambda admin, proposal_id: pricing.counter_proposal(admin, proposal_id, Decimal("14000.00")),
}


@pytest.mark.parametrize("actions", [("accept",) * 3, ("counter", "counter", "reject")], ids="-".join)
def test_concurrent_answers_to_one_proposal_end_in_one_answer(settings, actions):
    """Admins answer the same proposal at once (the pool has room for three more connections). Counters
    and rejections keep the request NEGOTIATING, so only the locks stop two of them from both winning."""
    assert len(actions) == settings.db_pool_size - 1
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)
    proposal = pricing.propose_price(request.client, request.id, Decimal("13000.00"))
    admins = [AdminFactory() for _ in actions]

    outcomes = _all_at_once(
        [
            lambda admin=admin, action=action: ANSWERS[action](admin, proposal.id)
            for admin, action in zip(admins, actions, strict=True)
        ]
    )

    winners = [o for o in outcomes if isinstance(o, PriceNegotiation)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, InvalidTransition) for o in outcomes if o not in winners), outcomes
    assert len(events_of(request, "negotiation_message")) == 2  # the proposal and the one answer
    assert PriceNegotiation.select().where(PriceNegotiation.status == NegotiationStatus.PENDING).count() == (
        1 if winners[0].status == NegotiationStatus.PENDING else 0
    )
    if actions[0] == "accept":
        assert (stored(request).status, stored(request).final_cost) == (S.AWAITING_PAYMENT, Decimal("13000.00"))


@pytest.mark.parametrize("status", [S.AWAITING_CLIENT_APPROVAL, S.NEGOTIATING])
def test_concurrent_proposals_leave_one_pending(settings, status):
    """While NEGOTIATING (after a rejection) a proposal does not change the status, so only the lock
    keeps a double-clicked proposal from being pending twice."""
    request = priced_request(status)
    amounts = [Decimal(f"1300{i}.00") for i in range(settings.db_pool_size - 1)]

    outcomes = _all_at_once(
        [lambda amount=amount: pricing.propose_price(request.client, request.id, amount) for amount in amounts]
    )

    assert len([o for o in outcomes if isinstance(o, PriceNegotiation)]) == 1, outcomes
    assert PriceNegotiation.select().where(PriceNegotiation.status == NegotiationStatus.PENDING).count() == 1
    assert len(events_of(request, "negotiation_message")) == 1


# --- the pipeline: notifications and emails for real -------------------------------------------------


def _mail_to(mailbox, user):
    return [mail_text(m) for m in mailbox.messages if user.email in m.rcpt_tos]


def test_the_final_cost_reaches_the_client_with_its_breakdown(mail_pipeline, mailbox):
    _, pipeline = mail_pipeline
    admin = AdminFactory()
    request = priced_request(S.SERVICEMAN_INSPECTED, estimate="12345.67")

    pricing.set_markup(admin, request.id, Decimal("17.50"))
    pipeline.run()

    [note] = Notification.select().where(Notification.user == request.client_id)
    assert note.notification_type == "final_cost_set" and note.sent_to_email
    assert note.payload["final_cost"] == "14506.16" and note.payload["platform_fee"] == "2160.49"
    [email] = _mail_to(mailbox, request.client)
    assert "Platform fee:  ₦2,160.49" in email and "Total:         ₦14,506.16" in email
    assert "₦12,345.67" in email
    assert len(mailbox.messages) == 1  # nobody else


def test_negotiation_messages_reach_the_other_party_on_both_channels(mail_pipeline, mailbox):
    _, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    request = priced_request(S.AWAITING_CLIENT_APPROVAL)

    proposal = pricing.propose_price(request.client, request.id, Decimal("13000.00"), "Too dear.")
    pipeline.run()

    for admin in admins:
        [note] = Notification.select().where(Notification.user == admin.id)
        assert note.notification_type == "negotiation_message" and note.sent_to_email
        assert "The client proposed ₦13,000.00" in note.message and "Too dear." in note.message
        assert len(_mail_to(mailbox, admin)) == 1
    assert not Notification.select().where(Notification.user == request.client_id).exists()

    pricing.counter_proposal(admins[0], proposal.id, Decimal("14000.00"), "Meet halfway?")
    pipeline.run()

    [note] = Notification.select().where(Notification.user == request.client_id)
    assert "The admin countered ₦14,000.00" in note.message
    assert len(_mail_to(mailbox, request.client)) == 1
    assert Notification.select().where(Notification.user.in_([a.id for a in admins])).count() == 2
    assert len(mailbox.messages) == 3
