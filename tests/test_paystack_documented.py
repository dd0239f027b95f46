"""Paystack as Paystack documents it (issue 22, §3 and §4), against the stand-in on loopback.

Given the stand-in answering with Paystack's documented shapes (tests/paystack_schemas.py, from
Paystack's OpenAPI document github.com/PaystackOSS/openapi and its webhook pages), when refunds and
payouts meet each documented outcome (a lost answer among many newer refunds, needs-attention, two
open refunds of one amount, otp/received/abandoned/blocked/rejected/failed/reversed transfers, a
transfer that succeeds at once, fees passed to the customer), then money moves once, each state says
what an admin must do, and the admin's action goes through Paystack's documented route.
"""

import json
import time
from datetime import timedelta

import pytest
import requests

from models import Event, Payout, PayoutStatus, PayoutTransfer, Refund, RefundStatus
from models.actions import payments, payouts, refunds
from models.foundation.clock import utcnow
from models.foundation.paystack import PaystackClient
from models.money import PaymentStatus, PaymentType
from server.paystack_standin_transfers import settle_transfer, transfer_webhook

from . import paystack_schemas as schemas
from .booking_support import cancel_path, events_of
from .conftest import PAYSTACK_TEST_SECRET, paystack_standin_server
from .contract_support import assert_error, snapshot
from .factories import ServiceRequestFactory
from .paystack_support import (
    ACCOUNT,
    fresh_bank_cache,  # noqa: F401 (autouse fixture)
    owed_payout,
    paid_request,
    post_refund_calls,
    post_webhook,
)

P, R = PayoutStatus, RefundStatus


def fits(schema, value):
    problems = schemas.check(schema, value)
    assert not problems, "\n".join(problems)
    return value


def ask(method, path, **kwargs):
    """The stand-in's raw answer (status code, JSON), as Paystack's own client would see it."""
    response = requests.request(
        method,
        paystack_standin_server().url + path,
        timeout=5,
        headers={"Authorization": f"Bearer {PAYSTACK_TEST_SECRET}"},
        **kwargs,
    )
    return response.status_code, response.json()


def webhook_data(raw):
    return json.loads(raw)["data"]


def other_refunds(ledger, count, after):
    """`count` refunds of other merchants' transactions, all made after `after` (newest last)."""
    for n in range(count):
        tx = {
            "id": 900000 + n,
            "reference": f"other-{n}",
            "amount": 10_000,
            "currency": "NGN",
            "channel": "card",
            "customer": {"id": 9, "email": f"other{n}@example.ng", "customer_code": "CUS_other"},
        }
        ledger.refund_clock = lambda n=n: after + timedelta(seconds=n + 1)
        ledger.create_refund(tx, 10_000, "NGN", merchant_note=f"someone else's refund {n}")
    ledger.refund_clock = None


# --- §3: a lost answer is found by paging List Refunds, never asked twice ----------------------------


@pytest.mark.parametrize("per_page", [50, 20])  # 50: Paystack's default perPage
def test_a_lost_refund_answer_among_60_newer_refunds_ends_in_exactly_one_refund(
    settings, paystack, monkeypatch, per_page
):
    """Paystack's List Refunds (openapi paths/refund.yaml) takes perPage, page, from, to: no filter by
    transaction. Our refund, whose answer was lost, is older than 60 others: it is still found."""
    monkeypatch.setattr(refunds, "FIND_PER_PAGE", per_page)
    request, payment = paid_request(settings)
    paystack.fail_next("timeout")  # Paystack makes the refund; its answer comes too late
    # Half of the payment: Paystack would accept a second ask, so only finding the first prevents it.
    refunds.refund_payment(PaystackClient(settings), request.client, payment.id, "goodwill", payment.amount / 2)
    assert paystack.wait_until(lambda: len(paystack.refunds) == 1)
    refund = Refund.get()
    assert refund.submitted_at is None and refund.asked_at is not None
    other_refunds(paystack, 60, after=utcnow())

    counts = refunds.reconcile_refunds(PaystackClient(settings), after=0)

    assert counts["submitted"] == 1
    refund = Refund.get_by_id(refund.id)
    ours = min(paystack.refunds)
    assert refund.paystack_refund_id == str(ours) and refund.submitted_at is not None
    assert len(post_refund_calls(paystack)) == 1 and len(paystack.refunds_of(payment.paystack_reference)) == 1
    listed = [query for method, path, query, _ in paystack.requests if (method, path) == ("GET", "/refund")]
    assert listed and all("transaction" not in query and "from" in query for query in listed)
    assert len(listed) == (1 if per_page >= 61 else 61 // per_page + 1)


def test_a_lost_answer_whose_refund_paystack_never_made_is_asked_once_more(settings, paystack):
    request, payment = paid_request(settings)
    paystack.fail_next("error")  # the ask never reached Paystack's ledger
    refunds.refund_payment(PaystackClient(settings), request.client, payment.id, "goodwill")
    other_refunds(paystack, 60, after=utcnow())

    refunds.reconcile_refunds(PaystackClient(settings), after=0)

    # The first ask was answered 503 before anything was made; the search found nothing; one more ask.
    assert len(paystack.refunds_of(payment.paystack_reference)) == 1 and len(post_refund_calls(paystack)) == 2
    assert Refund.get().submitted_at is not None


# --- §3: refund webhooks in Paystack's shapes --------------------------------------------------------


@pytest.mark.gen_test
async def test_documented_refund_webhooks_without_an_id_and_with_a_string_amount_are_applied(api, settings, paystack):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [at_paystack] = paystack.refunds.values()
    for status in ("processing", "processed"):
        paystack.settle_refund(at_paystack["id"], status)
        raw, signature = paystack.refund_webhook(at_paystack["id"])
        fits(schemas.refund_event(status), json.loads(raw))
        assert "id" not in webhook_data(raw) and isinstance(webhook_data(raw)["amount"], str)
        assert (await post_webhook(api, raw, signature)).status == 200

    assert Refund.get().status == R.PROCESSED and len(events_of(request, "refund_processed")) == 1


@pytest.mark.gen_test
async def test_two_open_refunds_of_one_amount_on_one_transaction_are_not_confused(api, settings, paystack, admin_user):
    """refund.processed names no refund: when two of ours fit, each is read from Paystack instead."""
    request, payment = paid_request(settings)
    client = PaystackClient(settings)
    first = refunds.refund_payment(client, admin_user, payment.id, "first half", amount=payment.amount / 4)
    second = refunds.refund_payment(client, admin_user, payment.id, "second half", amount=payment.amount / 4)
    paystack.settle_refund(int(second.paystack_refund_id), "processed")

    raw, signature = paystack.refund_webhook(int(second.paystack_refund_id))
    assert (await post_webhook(api, raw, signature)).status == 200

    assert Refund.get_by_id(second.id).status == R.PROCESSED
    assert Refund.get_by_id(first.id).status == R.PENDING
    assert ("GET", f"/refund/{second.paystack_refund_id}") in paystack.calls


# --- §3: needs-attention -----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_needs_attention_refund_is_retried_with_the_customers_account_not_asked_again(
    api, settings, paystack, admin_user
):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [at_paystack] = paystack.refunds.values()
    paystack.settle_refund(at_paystack["id"], "needs-attention")
    raw, signature = paystack.refund_webhook(at_paystack["id"])
    fits(schemas.refund_event("needs-attention"), json.loads(raw))

    assert (await post_webhook(api, raw, signature)).status == 200

    refund = Refund.get()
    assert refund.status == R.NEEDS_BANK and "bank account" in refund.failure_reason
    [flag] = events_of(request, "refund_needs_attention")
    assert flag.payload["refund_id"] == refund.id
    listed = await api.get(f"/api/admin/refunds/?status={R.NEEDS_BANK}", user=admin_user)
    assert [r["id"] for r in listed.data["results"]] == [refund.id]
    # A fresh POST /refund would be refused by Paystack (the amount is reserved): the plain retry says so.
    assert_error(
        await api.post(f"/api/admin/refunds/{refund.id}/retry/", user=admin_user), 409, "needs_customer_details"
    )
    path = f"/api/admin/refunds/{refund.id}/customer-details/"
    assert (
        "bank_code"
        in assert_error(
            await api.post(path, {"bank_code": "100039", "account_number": "0123456789"}, user=admin_user), 422
        )["fields"]
    )

    retried = await api.post(path, ACCOUNT, user=admin_user)

    assert retried.status == 200 and retried.data["status"] == R.PROCESSING, retried
    [(_, _, _, body)] = [r for r in paystack.requests if r[1].startswith("/refund/retry_with_customer_details/")]
    assert body == {"refund_account_details": {"currency": "NGN", "account_number": "0123456789", "bank_id": "3"}}
    assert len(post_refund_calls(paystack)) == 1 and len(paystack.refunds) == 1
    assert "0123456789" not in json.dumps(snapshot(), default=str)  # sent to Paystack only
    assert_error(await api.post(path, ACCOUNT, user=admin_user), 409)
    paystack.settle_refund(at_paystack["id"], "processed")
    await post_webhook(api, *paystack.refund_webhook(at_paystack["id"]))
    assert Refund.get().status == R.PROCESSED


@pytest.mark.parametrize(
    "status, expected",
    [("processing", R.PROCESSING), ("failed", R.FAILED), ("needs-attention", R.NEEDS_BANK), ("processed", R.PROCESSED)],
)
def test_every_documented_refund_status_is_read_by_reconciliation(settings, paystack, status, expected):
    request, payment = paid_request(settings)
    refund = refunds.refund_payment(PaystackClient(settings), request.client, payment.id, "goodwill")
    paystack.settle_refund(int(refund.paystack_refund_id), status)

    refunds.reconcile_refunds(PaystackClient(settings), 0, now=utcnow() + timedelta(seconds=1))

    assert Refund.get_by_id(refund.id).status == expected


# --- §3: transfers in every documented status --------------------------------------------------------


@pytest.mark.gen_test
async def test_an_otp_transfer_waits_for_an_admin_who_finalizes_it_with_paystacks_otp(
    api, paystack, settings, admin_user
):
    paystack.transfer_outcome = "otp"
    payout = owed_payout(admin_user, settings)

    approved = await api.post("/api/admin/payouts/approve/", {"payout_ids": [payout.id]}, user=admin_user)

    assert approved.data["results"][0]["status"] == P.AWAITING_OTP, approved
    assert "OTP" in Payout.get_by_id(payout.id).failure_reason
    [flag] = Event.select().where(Event.type == "payout_needs_otp")
    assert flag.payload["payout_id"] == payout.id
    # Reconciliation reads it again and leaves it for the admin: never sent a second time.
    payouts.reconcile_transfers(PaystackClient(settings), 0, now=utcnow() + timedelta(seconds=1))
    assert Payout.get_by_id(payout.id).status == P.AWAITING_OTP and len(paystack.transfers) == 1
    path = f"/api/admin/payouts/{payout.id}/finalize/"
    assert "otp" in assert_error(await api.post(path, {"otp": "000000"}, user=admin_user), 422)["fields"]

    finalized = await api.post(path, {"otp": paystack.transfer_otp}, user=admin_user)

    assert finalized.status == 200 and finalized.data["status"] == P.IN_TRANSIT, finalized
    assert_error(await api.post(path, {"otp": paystack.transfer_otp}, user=admin_user), 409)
    settle_transfer(paystack, payout.transfer_reference, "success")
    await post_webhook(api, *transfer_webhook(paystack, payout.transfer_reference))
    assert Payout.get_by_id(payout.id).status == P.PAID and len(paystack.transfers) == 1


@pytest.mark.parametrize(
    "outcome, expected", [("success_at_once", P.PAID), ("received", P.IN_TRANSIT), ("otp", P.AWAITING_OTP)]
)
def test_the_answer_to_a_transfer_is_applied_whatever_its_documented_status(
    paystack, settings, admin_user, outcome, expected
):
    paystack.transfer_outcome = outcome
    payout = owed_payout(admin_user, settings)

    [result] = payouts.approve_payouts(PaystackClient(settings), admin_user, [payout.id])

    assert result.status == expected and len(paystack.transfers) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("status", ["failed", "abandoned", "blocked", "rejected", "reversed"])
async def test_a_transfer_paystack_gave_up_on_is_owed_again_with_paystacks_cause(
    api, paystack, settings, admin_user, status
):
    payout = owed_payout(admin_user, settings)
    payouts.approve_payouts(PaystackClient(settings), admin_user, [payout.id])
    reference = payout.transfer_reference
    settle_transfer(paystack, reference, status)
    event = "reversed" if status == "reversed" else "failed"  # Paystack sends transfer.failed for the others
    raw, signature = transfer_webhook(paystack, reference, event=f"transfer.{event}")
    fits(schemas.transfer_event(event), json.loads(raw))

    assert (await post_webhook(api, raw, signature)).status == 200

    owed = Payout.get_by_id(payout.id)
    cause = paystack.transfers[reference]["gateway_response"]
    assert owed.status == P.OWED and owed.transfer_reference != reference
    assert cause in owed.failure_reason and "Serviceman payout" not in owed.failure_reason
    attempt = PayoutTransfer.get(PayoutTransfer.reference == reference)
    assert attempt.failure_reason == cause


def test_a_failure_cause_is_read_from_gateway_response_then_failures_never_from_the_narration():
    narration = {"reason": "Serviceman payout 7", "status": "failed"}
    assert payouts.failure_cause({**narration, "gateway_response": "Account dormant"}, P.FAILED) == "Account dormant"
    assert payouts.failure_cause({**narration, "failures": [{"message": "Bank offline"}]}, P.FAILED) == "Bank offline"
    assert "Serviceman payout" not in payouts.failure_cause(narration, P.FAILED)


# --- §3: fees passed to the customer ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fees, paid_less, expected",
    [(0, 0, PaymentStatus.SUCCESS), (3_100, 0, PaymentStatus.SUCCESS), (0, 100, PaymentStatus.REVIEW)],
)
def test_the_price_is_compared_with_requested_amount_when_fees_are_passed_on(
    settings, paystack, client_user, fees, paid_less, expected
):
    request = ServiceRequestFactory(client=client_user)
    payment = payments.initialize_payment(
        settings, PaystackClient(settings), client_user, request.id, PaymentType.BOOKING_FEE
    )
    data = paystack.charge(payment.paystack_reference, customer_fees=fees)
    if paid_less:
        data = {**data, "amount": data["requested_amount"] - paid_less}
    fits(schemas.TRANSACTION, data)

    assert payments.process_charge(data, "webhook").status == expected


# --- §4: the stand-in answers as documented -----------------------------------------------------------


def test_the_stand_ins_answers_fit_paystacks_documented_schemas(settings, paystack, admin_user):
    request, payment = paid_request(settings)
    reference = payment.paystack_reference
    fits(schemas.VERIFY_ANSWER, ask("GET", f"/transaction/verify/{reference}")[1])
    raw, _ = paystack.webhook(reference)
    fits(schemas.CHARGE_SUCCESS_EVENT, json.loads(raw))
    code, created = ask(
        "POST",
        "/refund",
        json={"transaction": reference, "amount": 50_000, "currency": "NGN", "merchant_note": "SM-R-x manual"},
    )
    fits(schemas.REFUND_CREATE_ANSWER, created)
    refund_id = created["data"]["id"]
    fits(schemas.REFUND_FETCH_ANSWER, ask("GET", f"/refund/{refund_id}")[1])
    fits(schemas.REFUND_LIST_ANSWER, ask("GET", "/refund", params={"perPage": 10, "page": 1})[1])
    paystack.settle_refund(refund_id, "needs-attention")
    fits(
        schemas.REFUND_RETRY_ANSWER,
        ask(
            "POST",
            f"/refund/retry_with_customer_details/{refund_id}",
            json={"refund_account_details": {"currency": "NGN", "account_number": "0123456789", "bank_id": "3"}},
        )[1],
    )
    for status in schemas.REFUND_STATUSES:
        paystack.settle_refund(refund_id, status)
        fits(schemas.refund_event(status), json.loads(paystack.refund_webhook(refund_id)[0]))

    banks = ask("GET", "/bank", params={"currency": "NGN", "perPage": 4, "use_cursor": "true"})[1]
    fits(schemas.BANK_LIST_ANSWER, banks)
    fits(schemas.BANK_LIST_ANSWER, ask("GET", "/bank", params={"perPage": 4, "next": banks["meta"]["next"]})[1])
    fits(schemas.RESOLVE_ANSWER, ask("GET", "/bank/resolve", params=ACCOUNT | {"account_number": "0123456789"})[1])
    recipient = fits(
        schemas.RECIPIENT_ANSWER,
        ask(
            "POST",
            "/transferrecipient",
            json={"type": "nuban", "name": "TUNDE ADEBAYO BAKARE", **ACCOUNT, "currency": "NGN"},
        )[1],
    )["data"]
    paystack.transfer_outcome = "otp"
    transfer = fits(
        schemas.TRANSFER_CREATE_ANSWER,
        ask(
            "POST",
            "/transfer",
            json={
                "source": "balance",
                "amount": 100_000,
                "recipient": recipient["recipient_code"],
                "reference": "smpo-1-0123456789abcdef",
                "reason": "Serviceman payout 1",
                "currency": "NGN",
            },
        )[1],
    )["data"]
    fits(
        schemas.FINALIZE_ANSWER,
        ask(
            "POST",
            "/transfer/finalize_transfer",
            json={"transfer_code": transfer["transfer_code"], "otp": paystack.transfer_otp},
        )[1],
    )
    for status in ("success", "failed", "reversed"):
        settle_transfer(paystack, transfer["reference"], status)
        fits(schemas.TRANSFER_VERIFY_ANSWER, ask("GET", f"/transfer/verify/{transfer['reference']}")[1])
        fits(schemas.transfer_event(status), json.loads(transfer_webhook(paystack, transfer["reference"])[0]))
    paystack.requests.clear()  # asked by hand above, not by the client


def test_a_transfer_settling_by_itself_sends_its_signed_webhook_and_wakes_the_waiters(paystack):
    """The stand-in's one poster of signed webhooks carries transfers too, so a test can wait on
    `ledger.changed` for them as for charges and refunds."""
    paystack.webhook_url = paystack_standin_server().url + "/done"  # any answer counts as delivered
    paystack.transfer_outcome = "success"
    sent = paystack.webhooks_sent
    _, recipient = ask(
        "POST",
        "/transferrecipient",
        json={
            "type": "nuban",
            "name": "Tunde Bakare",
            "account_number": "0123456789",
            "bank_code": "058",
            "currency": "NGN",
        },
    )
    status, answer = ask(
        "POST",
        "/transfer",
        json={
            "source": "balance",
            "amount": 2_000_000,
            "recipient": recipient["data"]["recipient_code"],
            "reference": "smpo-1-0123456789abcdef",
            "reason": "Serviceman payout 1",
            "currency": "NGN",
        },
    )

    assert status == 200 and answer["data"]["status"] == "pending"
    started = time.monotonic()
    assert paystack.wait_until(lambda: paystack.webhooks_sent > sent, timeout=10)
    assert time.monotonic() - started < 5  # woken by the delivery, not by the timeout
    assert paystack.transfers["smpo-1-0123456789abcdef"]["status"] == "success"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/transaction/initialize", {"email": "a@example.ng", "amount": 100, "reference": "has space"}),
        ("POST", "/transaction/initialize", {"email": "a@example.ng", "amount": 100, "reference": "slash/no"}),
        (
            "POST",
            "/transfer",
            {"source": "balance", "amount": 100, "recipient": "RCP_x", "reference": "UPPER-case-ref-0001"},
        ),
        ("POST", "/refund", {"transaction": "no-such-transaction"}),
        ("GET", "/refund/987654", None),
        ("POST", "/transfer/finalize_transfer", {"transfer_code": "TRF_nope", "otp": "123456"}),
    ],
)
def test_the_stand_ins_refusals_use_paystacks_error_envelope(paystack, method, path, body):
    if path == "/transfer":  # a real recipient, so only the reference is wrong
        body["recipient"] = fits(
            schemas.RECIPIENT_ANSWER,
            ask("POST", "/transferrecipient", json={"type": "nuban", "name": "X", **ACCOUNT})[1],
        )["data"]["recipient_code"]
    code, answer = ask(method, path, json=body)

    assert code in (400, 404, 422)
    fits(schemas.ERROR, answer)
    paystack.requests.clear()  # malformed on purpose


def test_the_schemas_catch_what_paystack_does_not_document():
    """The checker itself: the shapes the project once assumed are refused."""
    assert schemas.check(schemas.REFUND_LIST_QUERY, {"transaction": "123"})
    assert schemas.check(
        schemas.refund_event("processed"),
        {
            "event": "refund.processed",
            "data": {
                "id": 3018284,
                "status": "processed",
                "transaction_reference": "T1",
                "amount": 200000,
                "currency": "NGN",
            },
        },
    )
    assert schemas.check(
        schemas.TRANSFER_REQUEST, {"source": "balance", "amount": 1, "recipient": "RCP_1", "reference": "SMPO-1-ABC"}
    )
    assert schemas.check(schemas.ERROR, {"status": False, "message": "no"})
    assert not schemas.check(
        schemas.ERROR, {"status": False, "message": "no", "type": "api_error", "code": "api_error"}
    )


def test_a_client_request_outside_the_documented_shape_fails_the_suite():
    """What the `paystack` fixture checks after every test: the old list-by-transaction call is caught."""
    assert schemas.check_request("GET", "/refund", {"transaction": "17"}, None)
    assert schemas.check_request(
        "POST",
        "/refund/retry_with_customer_details/5",
        {},
        {"refund_account_details": {"currency": "NGN", "account_number": "0123456789", "bank_id": 3}},
    )
    assert not schemas.check_request(
        "GET", "/refund", {"perPage": "100", "page": "2", "from": "2026-12-07T09:00:00.000Z"}, None
    )


@pytest.mark.parametrize(
    "status, expected",
    [("failed", PaymentStatus.FAILED), ("reversed", PaymentStatus.FAILED), ("abandoned", PaymentStatus.PENDING)],
)
def test_a_transaction_paystack_did_not_complete_is_never_taken_as_paid(
    settings, paystack, client_user, status, expected
):
    request = ServiceRequestFactory(client=client_user)
    payment = payments.initialize_payment(
        settings, PaystackClient(settings), client_user, request.id, PaymentType.BOOKING_FEE
    )
    data = fits(schemas.TRANSACTION, paystack.charge(payment.paystack_reference, status=status))

    assert payments.process_charge(data, "webhook").status == expected
