"""`make run` without Paystack keys: a cancelled booking's refund lands by itself through the local
checkout, which answers the Refund API and sends a signed refund.processed webhook a moment later."""

import asyncio

import pytest
import tornado.httpclient

import server.app
from models import Refund, RefundStatus, RequestStatus, ServiceRequest

from .conftest import make_settings, serve_app
from .factories import ServiceRequestFactory
from .settings_support import NO_KEYS


@pytest.fixture
def app(database, http_port, monkeypatch):
    monkeypatch.setattr(server.app, "LOCAL_REFUND_DELAY", 0.05)
    yield from serve_app(make_settings(**NO_KEYS, PORT=str(http_port)))


def local_ledger(application):
    return next(
        rule.target_kwargs["ledger"]
        for rule in application.wildcard_router.rules
        if "ledger" in (rule.target_kwargs or {})
    )


@pytest.mark.gen_test(timeout=30)
async def test_a_cancelled_booking_is_refunded_by_the_local_checkout(api, app, client_user):
    ledger = local_ledger(app)
    request = ServiceRequestFactory(client=client_user)
    checkout = (
        await api.post(
            "/api/payments/initialize/",
            {"service_request_id": request.id, "payment_type": "BOOKING_FEE"},
            user=client_user,
        )
    ).data
    paid = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{checkout['authorization_url']}/pay", method="POST", body="", follow_redirects=False, raise_error=False
    )
    assert paid.code == 302
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT

    cancelled = await api.post(f"/api/requests/{request.id}/cancel/", {"reason": "No longer needed"}, user=client_user)
    assert cancelled.status == 200, cancelled
    landed = await asyncio.get_running_loop().run_in_executor(
        None, ledger.wait_until, lambda: ledger.webhooks_sent >= 2
    )

    assert landed
    [refund] = Refund.select()
    assert (refund.status, refund.amount) == (RefundStatus.PROCESSED, 2000)
    [at_paystack] = ledger.refunds.values()
    assert at_paystack["status"] == "processed" and refund.reference in at_paystack["merchant_note"]
