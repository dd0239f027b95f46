"""Each party sees what it needs of a booking's timeline: every event (no gaps in the story), but a
serviceman never the client's payment (Paystack references, amounts paid), the platform's markup
and fee, or the final cost built on them; a client never a third party's vetting reason."""

import json
from decimal import Decimal

import pytest

from models import Payment, RequestStatus
from models.actions import payments, pricing, vetting
from models.foundation.paystack import PaystackClient
from models.money import PaymentType
from models.workflow import unit_of_work

from .conftest import paystack_standin_server
from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus


def paid_final_cost(settings, admin, client, request):
    """Markup 20% on a 12,500.00 estimate (final cost 15,000.00), approved and paid at the stand-in."""
    pricing.set_markup(admin, request.id, Decimal("20"))
    pricing.approve_cost(client, request.id)
    payment = payments.initialize_payment(
        settings, PaystackClient(settings), client, request.id, PaymentType.FINAL_PAYMENT
    )
    payments.process_charge(dict(paystack_standin_server().ledger.charge(payment.paystack_reference)), "webhook")
    return Payment.get_by_id(payment.id)


async def timeline(api, request, user):
    response = await api.get(f"/api/requests/{request.id}/events/?page_size=100", user=user)
    assert response.status == 200, response
    return response.data["results"]


@pytest.mark.gen_test
async def test_a_serviceman_sees_every_event_but_not_the_clients_money_or_the_markup(api, settings, paystack):
    admin, client, primary = AdminFactory(), ClientFactory(), ServicemanFactory()
    request = ServiceRequestFactory(
        status=S.SERVICEMAN_INSPECTED,
        client=client,
        primary_serviceman=primary,
        backup_serviceman=ServicemanFactory(),
        estimate_amount=Decimal("12500.00"),
    )
    payment = paid_final_cost(settings, admin, client, request)

    seen = {user.role: await timeline(api, request, user) for user in (admin, client, primary)}

    everything = json.dumps(seen["admin"])
    assert payment.paystack_reference in everything and '"platform_fee": "2500.00"' in everything
    assert (
        [e["type"] for e in seen["serviceman"]]
        == [e["type"] for e in seen["admin"]]
        == ["final_cost_set", "cost_approved", "payment_confirmed", "payment_receipt"]
    )
    serviceman_view = json.dumps(seen["serviceman"])
    for secret in (
        payment.paystack_reference,
        f'"payment_id": {payment.id}',
        "15000.00",
        "2500.00",
        "20.00",
        '"markup_percentage"',
        '"platform_fee"',
        '"final_cost"',
        '"paid_at"',
        '"reference"',
    ):
        assert secret not in serviceman_view, secret
    confirmed = next(e for e in seen["serviceman"] if e["type"] == "payment_confirmed")
    assert confirmed["to_status"] == S.PAYMENT_CONFIRMED
    assert confirmed["payload"] == {
        "payment_type": "FINAL_PAYMENT",
        "purpose": "final payment",
        "service_request_id": request.id,
        "is_emergency": False,
    }
    # The client keeps its receipts and the price breakdown it agreed to.
    assert payment.paystack_reference in json.dumps(seen["client"]) and "2500.00" in json.dumps(seen["client"])


@pytest.mark.gen_test
async def test_a_serviceman_still_sees_its_estimate_and_its_consultation(api, settings):
    admin, client, primary = AdminFactory(), ClientFactory(), ServicemanFactory()
    request = ServiceRequestFactory(
        status=S.ASSIGNED, client=client, primary_serviceman=primary, backup_serviceman=ServicemanFactory()
    )
    pricing.submit_estimate(primary, request.id, Decimal("12500.00"), "New trap")
    pricing.set_markup(admin, request.id, Decimal("20"))
    pricing.propose_price(client, request.id, Decimal("14000.00"), "Can you do 14k?")
    pricing.consult_serviceman(admin, request.id, "Is 14,000 acceptable?")

    events = {e["type"]: e["payload"] for e in await timeline(api, request, primary)}

    assert events["estimate_submitted"]["amount"] == "12500.00" and events["estimate_submitted"]["notes"] == "New trap"
    assert events["serviceman_consulted"]["offer_amount"] == "14000.00"
    assert events["serviceman_consulted"]["message"] == "Is 14,000 acceptable?"
    # The client's haggling with the platform is not the serviceman's: the event shows, its terms do not.
    assert set(events["negotiation_message"]) == {"service_request_id", "is_emergency"}


@pytest.mark.gen_test
async def test_a_client_is_not_told_why_a_serviceman_was_suspended(api, settings):
    admin, client, primary = AdminFactory(), ClientFactory(), ServicemanFactory()
    request = ServiceRequestFactory(
        status=S.ASSIGNED, client=client, primary_serviceman=primary, backup_serviceman=ServicemanFactory()
    )
    with unit_of_work():
        vetting.flag_open_assignments(admin, primary, "Two complaints of overcharging under review")

    [client_view] = [e for e in await timeline(api, request, client) if e["type"] == "assigned_serviceman_suspended"]
    [admin_view] = [e for e in await timeline(api, request, admin) if e["type"] == "assigned_serviceman_suspended"]
    assert admin_view["payload"]["reason"] == "Two complaints of overcharging under review"
    assert "reason" not in client_view["payload"] and client_view["payload"]["assigned_as"] == "primary"
