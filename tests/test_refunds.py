"""Cancellation policy and refunds through Paystack's Refund API, against the stand-in on loopback.

Given a paid booking, when it is cancelled (by the client under the policy, or by an admin with a full
refund), or an admin refunds a payment by hand, or money arrives for a booking that cannot use it,
then Paystack is asked for exactly the promised amount exactly once, however the calls race, time out,
fail or are replayed; the refund follows Paystack's refund.* webhooks and the reconciliation job, and
the client (started, processed) or the admins (failed) are told.
"""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest

from models import Notification, Payment, Refund, RefundPolicy, RefundStatus, RequestStatus
from models.actions import analytics, booking, refunds
from models.foundation.clock import utcnow
from models.foundation.paystack import PaystackClient, sign

from .booking_support import AFTER_ASSIGNMENT, cancel_path, events_of
from .conftest import make_settings
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, ClientFactory, ServiceRequestFactory
from .paystack_support import paid_request, post_refund_calls, post_webhook
from .pipeline_support import mail_text

S = RequestStatus


def quote_path(request, refund=None):
    return f"/api/requests/{request.id}/cancellation-quote/" + (f"?refund={refund}" if refund else "")


# --- the policy, shown before anyone cancels ------------------------------------------------------


@pytest.mark.gen_test
async def test_before_assignment_the_booking_fee_is_refunded_in_full(api, settings, paystack):
    request, _ = paid_request(settings)

    response = await api.get(quote_path(request), user=request.client)

    assert response.status == 200, response
    assert response.data == {
        "refund_amount": "2000.00",
        "kept_amount": "0.00",
        "paid_amount": "2000.00",
        "currency": "NGN",
        "policy": RefundPolicy.BEFORE_ASSIGNMENT,
        "refund": "policy",
        "reason": response.data["reason"],
    }
    assert "refunded in full" in response.data["reason"]


@pytest.mark.gen_test
@pytest.mark.parametrize("status", AFTER_ASSIGNMENT)
async def test_after_assignment_the_fee_is_kept_by_default(api, settings, paystack, status):
    request, _ = paid_request(settings, status)

    response = await api.get(quote_path(request), user=request.client)

    assert response.status == 200, response
    assert (response.data["refund_amount"], response.data["kept_amount"]) == ("0.00", "2000.00")
    assert response.data["policy"] == RefundPolicy.AFTER_ASSIGNMENT
    assert "100% of the booking fee" in response.data["reason"]


def test_the_share_kept_after_assignment_is_a_setting(paystack):
    settings = make_settings(CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT="25")
    request, _ = paid_request(settings, S.ASSIGNED)

    quote = booking.cancellation_quote(settings, request.client, request.id)

    assert (quote.refund_amount, quote.kept_amount) == (Decimal("1500.00"), Decimal("500.00"))
    assert "25% of the booking fee (₦500.00) is kept" in quote.reason


@pytest.mark.parametrize("value", ["-1", "100.01", "NaN", "lots"])
def test_a_share_outside_0_to_100_stops_start_up(value):
    from models.foundation.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT|numeric"):
        make_settings(CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT=value)


@pytest.mark.gen_test
async def test_nothing_paid_means_nothing_refunded(api, client_user):
    request = ServiceRequestFactory(client=client_user)
    response = await api.get(quote_path(request), user=client_user)
    assert response.status == 200, response
    assert (response.data["refund_amount"], response.data["kept_amount"], response.data["policy"]) == (
        "0.00",
        "0.00",
        RefundPolicy.NOTHING_PAID,
    )


@pytest.mark.gen_test
async def test_an_admin_may_quote_and_grant_a_full_refund_a_client_may_not(api, settings, paystack, admin_user):
    request, _ = paid_request(settings, S.AWAITING_PAYMENT)

    admin_quote = await api.get(quote_path(request, "full_refund"), user=admin_user)
    assert admin_quote.status == 200, admin_quote
    assert (admin_quote.data["refund_amount"], admin_quote.data["kept_amount"], admin_quote.data["policy"]) == (
        "2000.00",
        "0.00",
        RefundPolicy.FULL_REFUND,
    )
    assert (await api.get(quote_path(request), user=admin_user)).data["policy"] == RefundPolicy.AFTER_ASSIGNMENT

    stranger = ClientFactory()
    before = snapshot()
    assert_error(await api.get(quote_path(request, "full_refund"), user=request.client), 403)
    assert_error(await api.post(cancel_path(request), {"refund": "full_refund"}, user=request.client), 403)
    assert_error(await api.get(quote_path(request), user=stranger), 404)
    assert_error(await api.get(quote_path(request), user=request.primary_serviceman), 403)
    assert_error(await api.get(quote_path(request, "everything")), 401)
    assert_error(await api.get(quote_path(request, "everything"), user=admin_user), 422)
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [S.PAYMENT_CONFIRMED, S.IN_PROGRESS, S.COMPLETED, S.CANCELLED])
async def test_no_quote_once_it_can_no_longer_be_cancelled(api, client_user, status):
    request = ServiceRequestFactory(client=client_user, status=status)
    assert_error(await api.get(quote_path(request), user=client_user), 409, "invalid_transition")


# --- cancelling refunds what the quote said, once ------------------------------------------------


@pytest.mark.gen_test
async def test_a_client_cancelling_before_assignment_gets_the_fee_back(api, settings, paystack):
    request, payment = paid_request(settings)
    client = request.client

    response = await api.post(cancel_path(request), {"reason": "Found someone closer"}, user=client)

    assert response.status == 200 and response.data["status"] == S.CANCELLED, response
    [cancelled] = events_of(request, "request_cancelled")
    assert {k: cancelled.payload[k] for k in ("policy", "refund_amount", "kept_amount", "refund_choice")} == {
        "policy": RefundPolicy.BEFORE_ASSIGNMENT,
        "refund_amount": "2000.00",
        "kept_amount": "0.00",
        "refund_choice": "policy",
    }
    [refund] = Refund.select()
    assert (refund.payment_id, refund.amount, refund.status, refund.policy) == (
        payment.id,
        Decimal("2000.00"),
        RefundStatus.PENDING,
        RefundPolicy.BEFORE_ASSIGNMENT,
    )
    assert "Found someone closer" in refund.reason and refund.submitted_at is not None
    [at_paystack] = paystack.refunds_of(payment.paystack_reference)
    assert at_paystack["amount"] == 200_000 and refund.reference in at_paystack["merchant_note"]
    assert refund.paystack_refund_id == str(at_paystack["id"])
    assert len(events_of(request, "refund_started")) == 1

    paystack.settle_refund(at_paystack["id"], "processed")
    for _ in range(3):  # Paystack retries; replays change nothing
        assert (await post_webhook(api, *paystack.refund_webhook(at_paystack["id"]))).status == 200

    refund = Refund.get_by_id(refund.id)
    assert refund.status == RefundStatus.PROCESSED and refund.processed_at is not None
    assert len(events_of(request, "refund_processed")) == 1
    timeline = await api.get(f"/api/requests/{request.id}/events/", user=client)
    kinds = [e["type"] for e in timeline.data["results"]]
    assert kinds[-3:] == ["request_cancelled", "refund_started", "refund_processed"]
    assert timeline.data["results"][-3]["payload"]["refund_amount"] == "2000.00"


@pytest.mark.gen_test
async def test_a_client_cancelling_after_assignment_keeps_nothing_back_by_default(api, settings, paystack):
    request, payment = paid_request(settings, S.SERVICEMAN_INSPECTED)

    response = await api.post(cancel_path(request), {"reason": "Too slow"}, user=request.client)

    assert response.status == 200, response
    assert not Refund.select().exists() and not paystack.refunds
    [cancelled] = events_of(request, "request_cancelled")
    assert (cancelled.payload["kept_amount"], cancelled.payload["policy"]) == ("2000.00", RefundPolicy.AFTER_ASSIGNMENT)


def test_a_partial_share_is_refunded_partially(paystack):
    settings = make_settings(CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT="25")
    request, payment = paid_request(settings, S.ASSIGNED)

    booking.cancel_request(settings, request.client, request.id, "changed plans", paystack=PaystackClient(settings))

    [refund] = Refund.select()
    assert refund.amount == Decimal("1500.00") and refund.policy == RefundPolicy.AFTER_ASSIGNMENT
    [at_paystack] = paystack.refunds_of(payment.paystack_reference)
    assert at_paystack["amount"] == 150_000


@pytest.mark.gen_test
async def test_an_admin_full_refund_after_assignment_returns_everything(api, settings, paystack, admin_user):
    request, payment = paid_request(settings, S.AWAITING_CLIENT_APPROVAL)

    response = await api.post(
        cancel_path(request), {"reason": "No serviceman available", "refund": "full_refund"}, user=admin_user
    )

    assert response.status == 200, response
    [refund] = Refund.select()
    assert (refund.amount, refund.policy, refund.requested_by_id) == (
        Decimal("2000.00"),
        RefundPolicy.FULL_REFUND,
        admin_user.id,
    )
    assert paystack.refunds_of(payment.paystack_reference)[0]["amount"] == 200_000


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_cancels_make_one_refund(api, settings, paystack, admin_user):
    request, payment = paid_request(settings)

    responses = await asyncio.gather(
        *(api.post(cancel_path(request), {"refund": "full_refund"}, user=admin_user) for _ in range(6)),
        *(api.post(cancel_path(request), {}, user=request.client) for _ in range(2)),
    )

    assert sorted(r.status for r in responses) == [200] + [409] * 7
    assert Refund.select().count() == 1
    assert len(paystack.refunds_of(payment.paystack_reference)) == 1
    assert len(post_refund_calls(paystack)) == 1


# --- a refund racing itself, timing out, failing ---------------------------------------------------


def cancel_without_asking(settings, request, actor):
    """Cancel, leaving the refund opened but not yet asked of Paystack (as after a crash)."""
    booking.cancel_request(settings, actor, request.id, "duplicate", refund="full_refund")
    return Refund.get(Refund.service_request == request.id)


def test_a_refund_racing_itself_asks_paystack_once(settings, paystack):
    request, payment = paid_request(settings)
    refund = cancel_without_asking(settings, request, AdminFactory())
    threads = settings.db_pool_size - 1
    start = threading.Barrier(threads, timeout=20)

    def one(_):
        from models.db import database

        with database.connection_context():
            start.wait()
            return refunds.submit_refund(PaystackClient(settings), refund.id).status

    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(one, range(threads)))

    assert set(statuses) == {RefundStatus.PENDING}
    assert len(post_refund_calls(paystack)) == 1 and len(paystack.refunds) == 1
    assert len(events_of(request, "refund_started")) == 1


def test_a_timed_out_refund_is_found_at_paystack_not_made_twice(settings, paystack):
    request, payment = paid_request(settings)
    paystack.fail_next("timeout")  # Paystack makes the refund, but its answer comes too late

    booking.cancel_request(settings, request.client, request.id, "", paystack=PaystackClient(settings))

    refund = Refund.get(Refund.service_request == request.id)
    assert refund.status == RefundStatus.PENDING and refund.submitted_at is None and refund.asked_at is not None
    assert "unavailable" in refund.failure_reason
    assert paystack.wait_until(lambda: len(paystack.refunds) == 1)
    assert not events_of(request, "refund_started")

    counts = refunds.reconcile_refunds(PaystackClient(settings), after=0)

    assert counts["submitted"] == 1
    refund = Refund.get_by_id(refund.id)
    [at_paystack] = paystack.refunds.values()
    assert refund.paystack_refund_id == str(at_paystack["id"]) and refund.submitted_at is not None
    assert refund.attempts == 1 and len(post_refund_calls(paystack)) == 1
    assert len(events_of(request, "refund_started")) == 1


def test_paystack_down_leaves_the_refund_for_the_reconciliation_job(settings, paystack):
    request, payment = paid_request(settings)
    paystack.fail_next("error")
    booking.cancel_request(settings, request.client, request.id, "", paystack=PaystackClient(settings))
    assert not paystack.refunds
    paystack.fail_next("error")  # still down when the job first looks
    assert refunds.reconcile_refunds(PaystackClient(settings), after=0)["unreachable"] == 1

    counts = refunds.reconcile_refunds(PaystackClient(settings), after=0)

    assert counts["submitted"] == 1 and len(paystack.refunds) == 1
    assert Refund.get(Refund.service_request == request.id).attempts == 2


@pytest.mark.gen_test
async def test_a_failed_refund_is_flagged_and_an_admin_retries_it(api, settings, paystack, admin_user):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [first] = paystack.refunds.values()
    paystack.settle_refund(first["id"], "failed")
    assert (await post_webhook(api, *paystack.refund_webhook(first["id"]))).status == 200
    refund = Refund.get(Refund.service_request == request.id)
    assert refund.status == RefundStatus.FAILED
    [flag] = events_of(request, "refund_failed")
    assert flag.payload["refund_id"] == refund.id and flag.payload["failure_reason"]
    listed = await api.get("/api/admin/refunds/?status=FAILED", user=admin_user)
    assert [r["id"] for r in listed.data["results"]] == [refund.id]

    retried = await api.post(f"/api/admin/refunds/{refund.id}/retry/", user=admin_user)

    assert retried.status == 200 and retried.data["status"] == RefundStatus.PENDING, retried
    assert len(paystack.refunds) == 2 and len(post_refund_calls(paystack)) == 2
    second = max(paystack.refunds)
    assert retried.data["paystack_refund_id"] == str(second)
    assert len(events_of(request, "refund_started")) == 2
    assert_error(await api.post(f"/api/admin/refunds/{refund.id}/retry/", user=admin_user), 409, "invalid_transition")
    paystack.settle_refund(second, "processed")
    await post_webhook(api, *paystack.refund_webhook(second))
    assert Refund.get_by_id(refund.id).status == RefundStatus.PROCESSED
    assert sum(r["amount"] for r in paystack.refunds.values() if r["status"] != "failed") == 200_000


@pytest.mark.gen_test
async def test_paystack_refusing_fails_the_refund_at_once(api, settings, paystack, admin_user):
    request, payment = paid_request(settings)
    paystack.fail_next("refused")

    await api.post(cancel_path(request), {}, user=request.client)

    refund = Refund.get(Refund.service_request == request.id)
    assert refund.status == RefundStatus.FAILED and "refused" in refund.failure_reason
    assert len(events_of(request, "refund_failed")) == 1 and not events_of(request, "refund_started")
    retried = await api.post(f"/api/admin/refunds/{refund.id}/retry/", user=admin_user)
    assert retried.status == 200 and retried.data["status"] == RefundStatus.PENDING
    assert len(paystack.refunds) == 1


@pytest.mark.gen_test
async def test_a_retry_adopts_a_failed_refund_that_went_through_after_all(api, settings, paystack, admin_user):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [first] = paystack.refunds.values()
    paystack.settle_refund(first["id"], "failed")
    await post_webhook(api, *paystack.refund_webhook(first["id"]))
    paystack.settle_refund(first["id"], "processed")  # Paystack's support pushed it through

    retried = await api.post(f"/api/admin/refunds/{Refund.get().id}/retry/", user=admin_user)

    assert retried.data["status"] == RefundStatus.PROCESSED, retried
    assert len(paystack.refunds) == 1 and len(post_refund_calls(paystack)) == 1
    assert_error(await api.post("/api/admin/refunds/999999/retry/", user=admin_user), 404)


@pytest.mark.gen_test
async def test_retry_is_502_and_changes_nothing_when_paystack_is_down(api, settings, paystack, admin_user):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [first] = paystack.refunds.values()
    paystack.settle_refund(first["id"], "failed")
    await post_webhook(api, *paystack.refund_webhook(first["id"]))
    before = snapshot()
    paystack.fail_next("error")

    assert_error(await api.post(f"/api/admin/refunds/{Refund.get().id}/retry/", user=admin_user), 502)
    assert snapshot() == before


# --- webhooks --------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_refund_webhook_without_an_id_is_matched_by_transaction_and_amount(api, settings, paystack):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [at_paystack] = paystack.refunds.values()
    paystack.settle_refund(at_paystack["id"], "processing")
    await post_webhook(api, *paystack.refund_webhook(at_paystack["id"], with_id=False))
    assert Refund.get().status == RefundStatus.PROCESSING
    paystack.settle_refund(at_paystack["id"], "processed")
    await post_webhook(api, *paystack.refund_webhook(at_paystack["id"], with_id=False))
    # A late "pending" moves nothing back.
    paystack.settle_refund(at_paystack["id"], "pending")
    await post_webhook(api, *paystack.refund_webhook(at_paystack["id"], with_id=False))

    assert Refund.get().status == RefundStatus.PROCESSED
    assert len(events_of(request, "refund_processed")) == 1


@pytest.mark.gen_test
async def test_refund_webhooks_that_are_not_ours_or_forged_change_nothing(api, settings, paystack):
    paid_request(settings)
    before = snapshot()
    for data in (
        {"id": 42, "status": "processed", "transaction_reference": "T-not-ours", "amount": 100},
        {"status": "processed", "transaction_reference": "T-not-ours", "amount": "x"},
        "nonsense",
    ):
        raw = json.dumps({"event": "refund.processed", "data": data}).encode()
        assert (await post_webhook(api, raw, sign(raw, "sk_test_local"))).status == 200
    raw = json.dumps({"event": "refund.processed", "data": {}}).encode()
    assert_error(await post_webhook(api, raw, sign(raw, "sk_test_other")), 401)
    assert snapshot() == before


@pytest.mark.gen_test(timeout=60)
async def test_racing_refund_webhooks_land_once(api, settings, paystack):
    request, payment = paid_request(settings)
    await api.post(cancel_path(request), {}, user=request.client)
    [at_paystack] = paystack.refunds.values()
    paystack.settle_refund(at_paystack["id"], "processed")
    delivery = paystack.refund_webhook(at_paystack["id"])

    responses = await asyncio.gather(*(post_webhook(api, *delivery) for _ in range(12)))

    assert {r.status for r in responses} == {200}
    assert len(events_of(request, "refund_processed")) == 1


def test_the_reconciliation_job_reads_refunds_whose_webhook_never_came(settings, paystack):
    request, payment = paid_request(settings)
    booking.cancel_request(settings, request.client, request.id, "", paystack=PaystackClient(settings))
    [at_paystack] = paystack.refunds.values()
    paystack.settle_refund(at_paystack["id"], "processed")  # the webhook is lost
    assert refunds.reconcile_refunds(PaystackClient(settings), after=600)["checked"] == 0  # too soon

    counts = refunds.reconcile_refunds(PaystackClient(settings), 600, now=utcnow() + timedelta(minutes=11))

    assert (counts["checked"], counts["processed"]) == (1, 1)
    assert Refund.get().status == RefundStatus.PROCESSED
    assert len(events_of(request, "refund_processed")) == 1


# --- money that cannot be used goes back by the same path ---------------------------------------


@pytest.mark.gen_test
async def test_a_payment_made_after_cancellation_is_refunded_automatically(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = (
        await api.post(
            "/api/payments/initialize/",
            {"service_request_id": request.id, "payment_type": "BOOKING_FEE"},
            user=client_user,
        )
    ).data
    assert (await api.post(cancel_path(request), {}, user=client_user)).status == 200
    assert not Refund.select().exists()  # nothing was paid when it was cancelled
    paystack.charge(checkout["reference"])

    assert (await post_webhook(api, *paystack.webhook(checkout["reference"]))).status == 200

    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert payment.needs_refund
    [refund] = Refund.select()
    assert (refund.payment_id, refund.amount, refund.policy) == (
        payment.id,
        Decimal("2000.00"),
        RefundPolicy.UNUSABLE_PAYMENT,
    )
    assert refund.submitted_at is not None and paystack.refunds_of(checkout["reference"])[0]["amount"] == 200_000
    # The webhook replayed, and verify, make no second refund.
    await post_webhook(api, *paystack.webhook(checkout["reference"]))
    await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)
    assert Refund.select().count() == 1 and len(paystack.refunds) == 1


def test_reconciliation_refunds_unusable_payments_that_have_no_refund_yet(settings, paystack):
    request, payment = paid_request(settings)
    Payment.update(needs_refund=True, failure_reason="paid twice").where(Payment.id == payment.id).execute()

    counts = refunds.reconcile_refunds(PaystackClient(settings), after=0)

    assert (counts["opened"], counts["submitted"]) == (1, 1)
    [refund] = Refund.select()
    assert refund.policy == RefundPolicy.UNUSABLE_PAYMENT and "paid twice" in refund.reason
    assert refunds.reconcile_refunds(PaystackClient(settings), after=0)["opened"] == 0


# --- manual refunds ---------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_admin_refunds_part_then_the_rest_and_never_more(api, settings, paystack, admin_user):
    request, payment = paid_request(settings, S.COMPLETED)
    path = f"/api/admin/payments/{payment.id}/refund/"

    part = await api.post(path, {"amount": "500.00", "reason": "Late arrival"}, user=admin_user)
    assert part.status == 201, part
    assert (part.data["amount"], part.data["policy"], part.data["reason"]) == ("500.00", "manual", "Late arrival")
    assert_error(await api.post(path, {"amount": "1500.01", "reason": "too much"}, user=admin_user), 422)
    rest = await api.post(path, {"reason": "Job redone for free"}, user=admin_user)
    assert rest.status == 201 and rest.data["amount"] == "1500.00", rest
    before = snapshot()
    assert_error(await api.post(path, {"amount": "0.01", "reason": "more"}, user=admin_user), 409, "already_refunded")
    assert_error(await api.post(path, {"reason": "x"}, user=admin_user), 409, "already_refunded")
    assert snapshot() == before
    assert sorted(r["amount"] for r in paystack.refunds_of(payment.paystack_reference)) == [50_000, 150_000]
    listed = await api.get(f"/api/admin/refunds/?payment_id={payment.id}", user=admin_user)
    assert [r["amount"] for r in listed.data["results"]] == ["1500.00", "500.00"]
    assert (await api.get(f"/api/admin/refunds/?service_request_id={request.id}", user=admin_user)).data["count"] == 2


@pytest.mark.gen_test
async def test_only_verified_payments_can_be_refunded(api, paystack, admin_user, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = (
        await api.post(
            "/api/payments/initialize/",
            {"service_request_id": request.id, "payment_type": "BOOKING_FEE"},
            user=client_user,
        )
    ).data
    before = snapshot()
    assert_error(
        await api.post(f"/api/admin/payments/{checkout['payment_id']}/refund/", {"reason": "x"}, user=admin_user),
        409,
        "invalid_transition",
    )
    assert_error(await api.post("/api/admin/payments/999999/refund/", {"reason": "x"}, user=admin_user), 404)
    assert_error(
        await api.post(f"/api/admin/payments/{checkout['payment_id']}/refund/", {"amount": "5.00"}, user=admin_user),
        422,
    )
    assert snapshot() == before


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_manual_refunds_never_exceed_the_payment(api, settings, paystack, admin_user):
    request, payment = paid_request(settings, S.COMPLETED)
    path = f"/api/admin/payments/{payment.id}/refund/"

    responses = await asyncio.gather(
        *(api.post(path, {"amount": "1500.00", "reason": "race"}, user=admin_user) for _ in range(6))
    )

    assert sorted(r.status for r in responses) == [201] + [422] * 5, responses
    assert Refund.select().count() == 1 and len(paystack.refunds) == 1


# --- analytics ---------------------------------------------------------------------------------------


def test_revenue_is_net_of_refunds(settings, paystack):
    request, payment = paid_request(settings, S.COMPLETED)
    _, other_payment = paid_request(settings, S.COMPLETED)
    kept = refunds.refund_payment(PaystackClient(settings), AdminFactory(), payment.id, "goodwill", Decimal("500.00"))
    failed = refunds.refund_payment(PaystackClient(settings), AdminFactory(), other_payment.id, "x", Decimal("300.00"))
    Refund.update(status=RefundStatus.FAILED).where(Refund.id == failed.id).execute()

    report = analytics.revenue()

    assert (report["total"], report["refunds"], report["net"]) == (
        Decimal("4000.00"),
        Decimal("500.00"),
        Decimal("3500.00"),
    )
    [month] = report["by_month"]
    assert (month["refunds"], month["net"]) == (Decimal("500.00"), Decimal("3500.00"))
    assert kept.amount == Decimal("500.00")


# --- both channels, and the whole path on PostgreSQL in Redis mode --------------------------------


def test_refunds_reach_the_client_and_failures_the_admins_on_both_channels(mail_pipeline, mailbox, paystack):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request, payment = paid_request(settings, S.ASSIGNED)
    client = request.client
    booking.cancel_request(
        settings, admin, request.id, "no serviceman", refund="full_refund", paystack=PaystackClient(settings)
    )
    refund = Refund.get()
    paystack.settle_refund(int(refund.paystack_refund_id), "failed")
    refunds.process_refund_event(
        "refund.failed", json.loads(paystack.refund_webhook(int(refund.paystack_refund_id))[0])["data"]
    )
    refunds.retry_refund(PaystackClient(settings), admin, refund.id)
    second = int(Refund.get_by_id(refund.id).paystack_refund_id)
    paystack.settle_refund(second, "processed")
    refunds.process_refund_event("refund.processed", json.loads(paystack.refund_webhook(second)[0])["data"])
    pipeline.run()
    pipeline.run()

    kinds = {n.notification_type for n in Notification.select().where(Notification.user == client.id)}
    assert {"request_cancelled", "refund_started", "refund_processed"} <= kinds
    [landed] = Notification.select().where(
        Notification.user == client.id, Notification.notification_type == "refund_processed"
    )
    assert "₦2,000.00" in landed.message and landed.sent_to_email
    assert [
        n.notification_type
        for n in Notification.select().where(
            Notification.user == admin.id, Notification.notification_type.startswith("refund")
        )
    ] == ["refund_failed"]
    for serviceman in (request.primary_serviceman_id, request.backup_serviceman_id):
        assert (
            Notification.select()
            .where(Notification.user == serviceman, Notification.notification_type == "request_cancelled")
            .exists()
        )
    client_mail = [mail_text(m) for m in mailbox.messages if client.email in m.rcpt_tos]
    assert any("refunded" in m for m in client_mail) and any("refund of ₦2,000.00 started" in m for m in client_mail)
    assert any(admin.email in m.rcpt_tos for m in mailbox.messages)
