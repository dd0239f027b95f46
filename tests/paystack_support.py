"""Driving the Paystack stand-in (server/paystack_standin.py) in tests: a payment made through the API
as a browser and Paystack make it, a booking fee really paid, a payout owed with an account to pay it
into, webhooks posted as Paystack signs them, and waiting for what the stand-in does on its own thread."""

import asyncio
import time

import pytest

from models import Payment, PaymentStatus, Payout, RequestStatus, ServiceRequest
from models.actions import jobs, payments, payouts
from models.foundation.paystack import PaystackClient
from models.money import PaymentType

from .booking_support import AFTER_ASSIGNMENT, finished_job
from .conftest import paystack_standin_server
from .contract_support import ok
from .factories import ClientFactory, ServicemanFactory, ServiceRequestFactory

WEBHOOK = "/api/payments/webhook/"
ACCOUNT = {"bank_code": "058", "account_number": "0123456789"}  # resolves at the stand-in
BANK_CACHE_TTL = 3600


@pytest.fixture(autouse=True)
def fresh_bank_cache():
    """Paystack's bank list is kept per process: every test of a module that imports this fixture starts
    and ends without it (a module that only imports helpers from here is unaffected)."""
    payouts.clear_bank_cache()
    yield
    payouts.clear_bank_cache()


def stand_in():
    """The stand-in's ledger (the `paystack` fixture empties it for each test)."""
    return paystack_standin_server().ledger


async def post_webhook(api, raw, signature):
    return await api.call(
        "POST", WEBHOOK, raw=raw, headers={"Content-Type": "application/json", "x-paystack-signature": signature}
    )


async def pay(api, paystack, client, request_id, payment_type):
    """Pay through the API: checkout initialized, charged at the stand-in, its signed webhook posted."""
    checkout = await ok(
        await api.post(
            "/api/payments/initialize/", {"service_request_id": request_id, "payment_type": payment_type}, user=client
        )
    )
    paystack.charge(checkout["reference"])
    await ok(await post_webhook(api, *paystack.webhook(checkout["reference"])))
    return checkout


def pay_booking_fee(settings, client, request):
    """The booking fee paid through Paystack (the stand-in) and processed: the request moves on."""
    payment = payments.initialize_payment(
        settings, PaystackClient(settings), client, request.id, PaymentType.BOOKING_FEE
    )
    data = payments.process_charge(dict(stand_in().charge(payment.paystack_reference)), "webhook")
    assert data.status == PaymentStatus.SUCCESS
    return Payment.get_by_id(payment.id)


def paid_request(settings, status=RequestStatus.PENDING_ADMIN_ASSIGNMENT, client=None, **fields):
    """A booking whose fee (NGN 2000.00) was really paid at the stand-in, then moved to `status`."""
    client = client or ClientFactory()
    request = ServiceRequestFactory(client=client, **fields)
    payment = pay_booking_fee(settings, client, request)
    changes = {"status": status}
    if status in AFTER_ASSIGNMENT:
        changes.update(primary_serviceman=ServicemanFactory(), backup_serviceman=ServicemanFactory())
    ServiceRequest.update(**changes).where(ServiceRequest.id == request.id).execute()
    return ServiceRequest.get_by_id(request.id), payment


def post_refund_calls(ledger):
    return [call for call in ledger.calls if call == ("POST", "/refund")]


def owed_payout(admin, settings=None, account=True, **prices):
    """The payout of a job `admin` confirmed; its serviceman has a payout account unless `account` is false."""
    request = finished_job(**prices)
    jobs.confirm_completion(admin, request.id)
    payout = Payout.get(Payout.service_request == request.id)
    if account:
        payouts.set_payout_account(PaystackClient(settings), BANK_CACHE_TTL, request.primary_serviceman, **ACCOUNT)
    return payout


async def eventually(check, timeout=15.0):
    """Await a condition another thread or process makes true (the stand-in settling, its webhook)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)
