"""Payments through Paystack, against the stand-in on loopback that answers as Paystack documents
(`status`, `message`, `data` with kobo amounts) and signs webhooks as Paystack does.

Given a booking, when its fee or final cost is paid, then the request moves exactly once, and a
payment that is forged, mismatched, replayed, raced, late or lost is handled without losing money
or processing it twice.
"""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest

from models import Notification, Payment, PaymentStatus, PaymentType, RequestStatus, ServiceRequest
from models.actions import booking, payments
from models.foundation.clock import utcnow
from models.foundation.paystack import PaystackClient, sign, to_kobo
from models.money import PaymentSource
from workers import runtime

from .booking_support import events_of
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

WEBHOOK = "/api/payments/webhook/"
BOOKING_FEE, FINAL_PAYMENT = PaymentType.BOOKING_FEE, PaymentType.FINAL_PAYMENT


def initialize_body(request, payment_type=BOOKING_FEE):
    return {"service_request_id": request.id, "payment_type": payment_type}


async def start_payment(api, client, request, payment_type=BOOKING_FEE):
    response = await api.post("/api/payments/initialize/", initialize_body(request, payment_type), user=client)
    assert response.status == 200, response
    return response.data


async def post_webhook(api, raw, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-paystack-signature"] = signature
    return await api.call("POST", WEBHOOK, raw=raw, headers=headers)


def awaiting_final_payment(final_cost="15000.00"):
    primary, backup = ServicemanFactory(), ServicemanFactory()
    return ServiceRequestFactory(
        status=RequestStatus.AWAITING_PAYMENT,
        primary_serviceman=primary,
        backup_serviceman=backup,
        estimate_amount=Decimal("12500.00"),
        markup_percentage=Decimal("20.00"),
        final_cost=Decimal(final_cost),
    )


# --- the happy paths -----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_booking_fee_paid_through_checkout_moves_the_request_once(api, paystack, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user)

    checkout = await start_payment(api, client_user, request)

    assert checkout["amount"] == "2000.00" and checkout["currency"] == "NGN"
    assert checkout["authorization_url"].endswith(checkout["access_code"])
    sent = paystack.transactions[checkout["reference"]]
    assert sent["amount"] == 200_000  # kobo, at the boundary only
    assert sent["customer"]["email"] == client_user.email
    assert sent["metadata"]["service_request_id"] == request.id
    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert (payment.payer_id, payment.status, payment.amount) == (
        client_user.id,
        PaymentStatus.PENDING,
        Decimal("2000.00"),
    )

    paystack.charge(checkout["reference"])
    response = await post_webhook(api, *paystack.webhook(checkout["reference"]))

    assert response.status == 200, response
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
    payment = Payment.get_by_id(payment.id)
    assert payment.status == PaymentStatus.SUCCESS and payment.paid_at is not None
    assert payment.processed_via == PaymentSource.WEBHOOK
    [moved] = events_of(request, "payment_received")
    assert (moved.from_status, moved.to_status) == (
        RequestStatus.PENDING_PAYMENT,
        RequestStatus.PENDING_ADMIN_ASSIGNMENT,
    )
    [receipt] = events_of(request, "payment_receipt")
    assert receipt.payload["amount"] == "2000.00" and receipt.payload["reference"] == checkout["reference"]


@pytest.mark.gen_test
async def test_an_emergency_booking_is_charged_the_emergency_fee(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user, is_emergency=True, booking_fee=Decimal("5000.00"))
    checkout = await start_payment(api, client_user, request)
    assert checkout["amount"] == "5000.00"
    assert paystack.transactions[checkout["reference"]]["amount"] == 500_000


@pytest.mark.gen_test
async def test_the_final_payment_confirms_the_request(api, paystack):
    request = awaiting_final_payment()
    client = request.client

    checkout = await start_payment(api, client, request, FINAL_PAYMENT)
    assert checkout["amount"] == "15000.00"
    assert paystack.transactions[checkout["reference"]]["amount"] == 1_500_000

    paystack.charge(checkout["reference"])
    response = await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client)

    assert response.status == 200 and response.data["status"] == PaymentStatus.SUCCESS, response
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PAYMENT_CONFIRMED
    assert len(events_of(request, "payment_confirmed")) == 1
    assert len(events_of(request, "payment_receipt")) == 1


@pytest.mark.gen_test
async def test_the_amount_is_the_servers_whatever_the_client_sends(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    response = await api.post(
        "/api/payments/initialize/", {**initialize_body(request), "amount": "1.00"}, user=client_user
    )
    assert_error(response, 422)
    assert not Payment.select().exists() and not paystack.transactions


# --- initialize: one open attempt, the right party, the right state ------------------------------


@pytest.mark.gen_test
async def test_initializing_again_returns_the_open_attempt(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    first = await start_payment(api, client_user, request)
    again = await asyncio.gather(*(start_payment(api, client_user, request) for _ in range(5)))
    assert {c["reference"] for c in again} == {first["reference"]}
    assert Payment.select().count() == 1 and len(paystack.transactions) == 1


@pytest.mark.gen_test
async def test_a_fee_changed_before_payment_replaces_the_open_attempt(api, paystack, client_user, admin_user, settings):
    request = ServiceRequestFactory(client=client_user)
    first = await start_payment(api, client_user, request)
    booking.set_emergency(settings, admin_user, request.id, True)

    second = await start_payment(api, client_user, request)

    assert second["reference"] != first["reference"] and second["amount"] == "5000.00"
    old = Payment.get(Payment.paystack_reference == first["reference"])
    assert old.status == PaymentStatus.FAILED and "superseded" in old.failure_reason
    # Paying the old, cheaper checkout anyway does not buy the emergency booking: money kept, flagged.
    paystack.charge(first["reference"])
    await post_webhook(api, *paystack.webhook(first["reference"]))
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT
    old = Payment.get_by_id(old.id)
    assert old.status == PaymentStatus.SUCCESS and old.needs_refund
    assert len(events_of(request, "payment_needs_refund")) == 1


@pytest.mark.gen_test
async def test_only_the_owning_client_may_initialize(api, paystack, client_user, other_client, admin_user):
    request = ServiceRequestFactory(client=client_user)
    serviceman = ServicemanFactory()
    before = snapshot()
    assert_error(await api.post("/api/payments/initialize/", initialize_body(request), user=other_client), 404)
    assert_error(await api.post("/api/payments/initialize/", initialize_body(request), user=admin_user), 403)
    assert_error(await api.post("/api/payments/initialize/", initialize_body(request), user=serviceman), 403)
    assert snapshot() == before and not paystack.transactions


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "status,payment_type",
    [
        (RequestStatus.PENDING_ADMIN_ASSIGNMENT, BOOKING_FEE),
        (RequestStatus.CANCELLED, BOOKING_FEE),
        (RequestStatus.PENDING_PAYMENT, FINAL_PAYMENT),
        (RequestStatus.PAYMENT_CONFIRMED, FINAL_PAYMENT),
    ],
)
async def test_initialize_in_the_wrong_state_is_409(api, paystack, client_user, status, payment_type):
    request = ServiceRequestFactory(client=client_user, status=status, final_cost=Decimal("100.00"))
    response = await api.post("/api/payments/initialize/", initialize_body(request, payment_type), user=client_user)
    assert_error(response, 409, "invalid_transition")
    assert not Payment.select().exists()


@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["timeout", "error", "garbage"])
async def test_paystack_failing_on_initialize_is_502_and_the_attempt_is_kept(api, paystack, client_user, fault):
    request = ServiceRequestFactory(client=client_user)
    paystack.fail_next(fault)

    response = await api.post("/api/payments/initialize/", initialize_body(request), user=client_user)

    assert_error(response, 502, "payment_provider_unavailable")
    [attempt] = Payment.select()
    assert attempt.status == PaymentStatus.FAILED and "initialize failed" in attempt.failure_reason
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT
    # Once Paystack is back, a new attempt opens.
    checkout = await start_payment(api, client_user, request)
    assert checkout["reference"] != attempt.paystack_reference


# --- the webhook: signatures ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_forged_missing_and_stale_signatures_are_401_and_change_nothing(api, paystack, client_user, caplog):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"])
    raw, good = paystack.webhook(checkout["reference"])
    tampered = raw.replace(b'"amount": 200000', b'"amount": 100')
    before = snapshot()

    for body, signature in [
        (raw, None),
        (raw, ""),
        (raw, "0" * 128),
        (raw, sign(raw, "sk_test_other")),
        (tampered, good),
        (raw, good[:-2]),
        (raw, sign(raw + b" ", "sk_test_local")),
    ]:
        response = await post_webhook(api, body, signature)
        assert_error(response, 401, "invalid_signature")

    assert snapshot() == before
    assert "bad or missing signature" in caplog.text


@pytest.mark.gen_test
async def test_the_signature_is_checked_before_the_body_is_parsed(api, paystack):
    for raw in (b"not json", b"[" * 5000):
        response = await post_webhook(api, raw, sign(b"something else", "sk_test_local"))
        assert_error(response, 401)
    response = await post_webhook(api, b"not json", sign(b"not json", "sk_test_local"))
    assert_error(response, 400, "malformed_request")


@pytest.mark.gen_test
async def test_other_events_and_unknown_references_are_acknowledged_and_change_nothing(api, paystack, caplog):
    ServiceRequestFactory()
    before = snapshot()
    for event in (
        {"event": "transfer.success", "data": {"reference": "x"}},
        {
            "event": "charge.success",
            "data": {"reference": "SM-not-ours", "status": "success", "amount": 200000, "currency": "NGN"},
        },
        {"event": "charge.success", "data": "nonsense"},
    ):
        raw = json.dumps(event).encode()
        response = await post_webhook(api, raw, sign(raw, "sk_test_local"))
        assert response.status == 200 and response.data == {"status": "ok"}, response
    assert snapshot() == before
    assert "not ours" in caplog.text


# --- processing: amounts, currencies, states, replays, races -------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "amount,currency",
    [(100, "NGN"), (199_999, "NGN"), (200_001, "NGN"), (200_000, "USD"), (200_000, "GHS"), ("200000", "NGN")],
)
async def test_a_mismatched_amount_or_currency_is_held_for_review(
    api, paystack, client_user, admin_user, amount, currency
):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"], amount=amount, currency=currency)

    response = await post_webhook(api, *paystack.webhook(checkout["reference"]))

    assert response.status == 200
    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert payment.status == PaymentStatus.REVIEW and payment.paid_at is None
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT
    [alert] = events_of(request, "payment_review")
    assert alert.payload["reported_amount_kobo"] == amount and alert.payload["reported_currency"] == currency
    # A later, correct-looking replay cannot turn a payment under review into a paid booking.
    paystack.charge(checkout["reference"], amount=200_000, currency="NGN")
    await post_webhook(api, *paystack.webhook(checkout["reference"]))
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT


@pytest.mark.gen_test
async def test_a_replayed_webhook_is_processed_once(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"])
    delivery = paystack.webhook(checkout["reference"])

    for _ in range(3):
        assert (await post_webhook(api, *delivery)).status == 200
    paid_at = Payment.get(Payment.paystack_reference == checkout["reference"]).paid_at
    assert (await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)).status == 200

    assert Payment.get(Payment.paystack_reference == checkout["reference"]).paid_at == paid_at
    assert len(events_of(request, "payment_received")) == 1
    assert len(events_of(request, "payment_receipt")) == 1


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_webhooks_and_verify_calls_move_the_request_once(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"])
    delivery = paystack.webhook(checkout["reference"])
    verify = f"/api/payments/verify/{checkout['reference']}/"

    responses = await asyncio.gather(
        *[post_webhook(api, *delivery) for _ in range(20)], *[api.get(verify, user=client_user) for _ in range(5)]
    )

    assert [r.status for r in responses] == [200] * 25
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
    assert len(events_of(request, "payment_received")) == 1
    assert len(events_of(request, "payment_receipt")) == 1


@pytest.mark.gen_test
async def test_a_payment_for_a_request_cancelled_meanwhile_is_kept_and_flagged_for_refund(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    assert (
        await api.post(f"/api/requests/{request.id}/cancel/", {"reason": "found someone"}, user=client_user)
    ).status == 200
    paystack.charge(checkout["reference"])

    assert (await post_webhook(api, *paystack.webhook(checkout["reference"]))).status == 200

    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert payment.status == PaymentStatus.SUCCESS and payment.needs_refund and payment.paid_at
    assert "cancelled" in payment.failure_reason
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.CANCELLED
    assert len(events_of(request, "payment_needs_refund")) == 1


@pytest.mark.gen_test
async def test_a_second_paid_attempt_for_an_already_paid_fee_is_flagged_not_applied(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    first = await start_payment(api, client_user, request)
    paystack.charge(first["reference"])
    await post_webhook(api, *paystack.webhook(first["reference"]))
    # A stale second attempt (opened before the first was confirmed) also succeeds at Paystack.
    stale = Payment.create(
        service_request=request.id,
        payer=client_user.id,
        payment_type=BOOKING_FEE,
        amount=Decimal("2000.00"),
        paystack_reference="SM-stale-attempt",
    )
    raw = json.dumps(
        {
            "event": "charge.success",
            "data": {
                "reference": stale.paystack_reference,
                "status": "success",
                "amount": 200_000,
                "currency": "NGN",
                "paid_at": "2026-11-25T10:00:00.000Z",
            },
        }
    ).encode()

    assert (await post_webhook(api, raw, sign(raw, "sk_test_local"))).status == 200

    stale = Payment.get_by_id(stale.id)
    assert stale.status == PaymentStatus.SUCCESS and stale.needs_refund
    assert len(events_of(request, "payment_received")) == 1


@pytest.mark.gen_test
async def test_a_failed_charge_marks_the_attempt_failed(api, paystack, client_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"], status="failed")
    paystack.transactions[checkout["reference"]]["gateway_response"] = "Declined"

    response = await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)

    assert response.data["status"] == PaymentStatus.FAILED
    assert Payment.get(Payment.paystack_reference == checkout["reference"]).failure_reason == "Paystack: Declined"
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT


# --- verify ----------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_verify_is_for_the_owning_client_and_admins_only(api, paystack, client_user, other_client, admin_user):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    path = f"/api/payments/verify/{checkout['reference']}/"
    assert_error(await api.get(path), 401)
    assert_error(await api.get(path, user=other_client), 404)
    assert_error(await api.get(path, user=ServicemanFactory()), 403)
    assert_error(await api.get("/api/payments/verify/SM-unknown/", user=admin_user), 404)
    paystack.charge(checkout["reference"])
    response = await api.get(path, user=admin_user)
    assert response.status == 200 and response.data["status"] == PaymentStatus.SUCCESS
    assert Payment.get(Payment.paystack_reference == checkout["reference"]).processed_via == PaymentSource.VERIFY


@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["timeout", "error"])
async def test_paystack_failing_on_verify_is_502_and_changes_nothing_but_the_note(api, paystack, client_user, fault):
    request = ServiceRequestFactory(client=client_user)
    checkout = await start_payment(api, client_user, request)
    paystack.charge(checkout["reference"])
    paystack.fail_next(fault)

    response = await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)

    assert_error(response, 502)
    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert payment.status == PaymentStatus.PENDING and "verify failed" in payment.failure_reason
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT


# --- list ------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_clients_list_their_own_payments_and_admins_filter_all(
    api, paystack, client_user, other_client, admin_user
):
    mine = ServiceRequestFactory(client=client_user)
    theirs = awaiting_final_payment()
    await start_payment(api, client_user, mine)
    await start_payment(api, theirs.client, theirs, FINAL_PAYMENT)

    own = await api.get("/api/payments/", user=client_user)
    assert [p["service_request_id"] for p in own.data["results"]] == [mine.id]
    assert (await api.get("/api/payments/", user=other_client)).data["count"] == 0
    everything = await api.get("/api/payments/", user=admin_user)
    assert everything.data["count"] == 2
    finals = await api.get(f"/api/payments/?payment_type={FINAL_PAYMENT}&status=PENDING", user=admin_user)
    assert [p["service_request_id"] for p in finals.data["results"]] == [theirs.id]
    assert finals.data["results"][0]["amount"] == "15000.00"
    by_request = await api.get(f"/api/payments/?service_request_id={mine.id}", user=admin_user)
    assert by_request.data["count"] == 1
    assert_error(await api.get("/api/payments/?status=PAID", user=admin_user), 422)


# --- reconciliation --------------------------------------------------------------------------------


def test_reconciliation_finds_a_paid_attempt_whose_webhook_never_came(settings, paystack):
    client = ClientFactory()
    request = ServiceRequestFactory(client=client)
    payment = payments.initialize_payment(settings, PaystackClient(settings), client, request.id, BOOKING_FEE)
    paystack.charge(payment.paystack_reference)  # paid at Paystack; the webhook is lost
    fresh = payments.reconcile_payments(PaystackClient(settings), verify_after=600, abandon_after=86400)
    assert fresh["checked"] == 0  # too young: its webhook may still come

    later = utcnow() + timedelta(minutes=11)
    counts = payments.reconcile_payments(PaystackClient(settings), 600, 86400, now=later)

    assert counts == {"checked": 1, "paid": 1, "failed": 0, "unreachable": 0}
    payment = Payment.get_by_id(payment.id)
    assert payment.status == PaymentStatus.SUCCESS and payment.processed_via == PaymentSource.RECONCILE
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
    assert payments.reconcile_payments(PaystackClient(settings), 600, 86400, now=later)["checked"] == 0


def test_reconciliation_fails_long_abandoned_attempts_and_skips_when_paystack_is_down(settings, paystack):
    client = ClientFactory()
    abandoned = payments.initialize_payment(
        settings, PaystackClient(settings), client, ServiceRequestFactory(client=client).id, BOOKING_FEE
    )
    recent = payments.initialize_payment(
        settings, PaystackClient(settings), client, ServiceRequestFactory(client=client).id, BOOKING_FEE
    )
    Payment.update(created_at=utcnow() - timedelta(days=2)).where(Payment.id == abandoned.id).execute()
    Payment.update(created_at=utcnow() - timedelta(hours=1)).where(Payment.id == recent.id).execute()

    paystack.fail_next("error")
    counts = payments.reconcile_payments(PaystackClient(settings), 600, 86400)
    assert counts["unreachable"] == 1 and counts["failed"] == 0

    counts = payments.reconcile_payments(PaystackClient(settings), 600, 86400)
    assert Payment.get_by_id(abandoned.id).status == PaymentStatus.FAILED
    assert Payment.get_by_id(recent.id).status == PaymentStatus.PENDING  # still unpaid, not yet abandoned
    assert counts["failed"] == 1


def test_the_reconcile_command_verifies_pending_payments(settings, paystack, capsys, monkeypatch):
    from server import __main__ as cli

    client = ClientFactory()
    request = ServiceRequestFactory(client=client)
    payment = payments.initialize_payment(settings, PaystackClient(settings), client, request.id, BOOKING_FEE)
    paystack.charge(payment.paystack_reference)
    monkeypatch.setattr(cli, "load_settings", lambda: settings)
    monkeypatch.setattr(cli, "bind", lambda *args: None)  # keep the test session's database binding

    cli.main(["reconcile", "--older-than", "0"])

    assert "'paid': 1" in capsys.readouterr().out
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
    runtime.reset()


# --- the pipeline: one notification and one email per recipient, however the payment races ------


def _race(settings, reference, data, calls=25):
    """Webhook processing and verify calls for one reference, as many at once as the connection pool
    allows (the web process's own limit), released together by a barrier."""
    threads = settings.db_pool_size - 1  # the test's own thread holds one connection
    start = threading.Barrier(threads, timeout=20)
    client = Payment.get(Payment.paystack_reference == reference).payer

    def one(index):
        from models.db import database

        with database.connection_context():
            if index < threads:
                start.wait()
            if index % 5 == 0:
                return payments.verify_payment(PaystackClient(settings), client, reference).status
            return payments.process_charge(dict(data), PaymentSource.WEBHOOK).status

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(calls)))


def test_racing_deliveries_notify_each_recipient_once_on_both_channels(mail_pipeline, mailbox, paystack):
    settings, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    client = ClientFactory()
    request = ServiceRequestFactory(client=client)
    payment = payments.initialize_payment(settings, PaystackClient(settings), client, request.id, BOOKING_FEE)
    data = paystack.charge(payment.paystack_reference)

    statuses = _race(settings, payment.paystack_reference, data)
    pipeline.run()
    pipeline.run()

    assert set(statuses) == {PaymentStatus.SUCCESS}
    assert len(events_of(request, "payment_received")) == 1
    for admin in admins:
        [note] = Notification.select().where(Notification.user == admin.id)
        assert note.notification_type == "payment_received" and note.sent_to_email
        assert len([m for m in mailbox.messages if admin.email in m.rcpt_tos]) == 1
    [receipt] = Notification.select().where(
        Notification.user == client.id, Notification.notification_type == "payment_receipt"
    )
    assert "₦2,000.00" in receipt.message and payment.paystack_reference in receipt.message
    [email] = [m for m in mailbox.messages if client.email in m.rcpt_tos]
    assert payment.paystack_reference in email.content.decode()


def test_the_final_payment_notifies_admins_and_the_primary_serviceman(mail_pipeline, mailbox, paystack):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = awaiting_final_payment()
    payment = payments.initialize_payment(settings, PaystackClient(settings), request.client, request.id, FINAL_PAYMENT)
    payments.process_charge(paystack.charge(payment.paystack_reference), PaymentSource.WEBHOOK)
    pipeline.run()

    for user in (admin, request.primary_serviceman):
        [note] = Notification.select().where(Notification.user == user.id)
        assert note.notification_type == "payment_confirmed" and "₦15,000.00" in note.message
    assert not Notification.select().where(Notification.user == request.backup_serviceman_id).exists()
    assert {n.notification_type for n in Notification.select().where(Notification.user == request.client_id)} == {
        "payment_receipt"
    }
    assert len(mailbox.messages) == 3


def test_review_and_refund_alerts_reach_admins(mail_pipeline, mailbox, paystack):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    client = ClientFactory()
    first = ServiceRequestFactory(client=client)
    second = ServiceRequestFactory(client=client)
    wrong = payments.initialize_payment(settings, PaystackClient(settings), client, first.id, BOOKING_FEE)
    late = payments.initialize_payment(settings, PaystackClient(settings), client, second.id, BOOKING_FEE)
    booking.cancel_request(settings, client, second.id)

    payments.process_charge(paystack.charge(wrong.paystack_reference, amount=100), PaymentSource.WEBHOOK)
    payments.process_charge(paystack.charge(late.paystack_reference), PaymentSource.WEBHOOK)
    pipeline.run()

    kinds = {n.notification_type for n in Notification.select().where(Notification.user == admin.id)}
    assert {"payment_review", "payment_needs_refund"} <= kinds
    assert to_kobo(Decimal("2000.00")) == 200_000


def test_the_cron_process_enqueues_reconciliation_for_the_workers(mail_pipeline, paystack, monkeypatch):
    """`python -m server cron` registers the schedule with RQ's cron scheduler; the job it enqueues,
    run by a worker, reconciles a payment whose webhook never came."""
    from server import __main__ as cli
    from workers import cron

    settings, pipeline = mail_pipeline
    client = ClientFactory()
    request = ServiceRequestFactory(client=client)
    payment = payments.initialize_payment(settings, PaystackClient(settings), client, request.id, BOOKING_FEE)
    paystack.charge(payment.paystack_reference)
    Payment.update(created_at=utcnow() - timedelta(hours=1)).where(Payment.id == payment.id).execute()
    started = []
    # The loop itself is tested in test_pipeline_outages.
    monkeypatch.setattr(
        cron, "run_cron", lambda transport, schedule, stopping: started.append(cron.make_scheduler(transport, schedule))
    )
    monkeypatch.setattr(cli, "load_settings", lambda: settings)
    monkeypatch.setattr(cli, "bind", lambda *args: None)  # keep the test session's database binding

    cli.main(["cron"])

    [scheduler] = started
    from workers.periodic import SCHEDULE

    registered = [job.func_name for job in scheduler.get_jobs()]
    assert registered == [f"workers.periodic.{job.__name__}" for job, _ in SCHEDULE]
    assert "workers.periodic.reconcile_payments" in registered
    assert len(scheduler.enqueue_jobs()) == len(SCHEDULE)  # each due at once, then on its own interval
    runtime.configure(settings, pipeline.transport)
    pipeline.work()
    assert Payment.get_by_id(payment.id).status == PaymentStatus.SUCCESS
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
