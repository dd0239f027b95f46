"""Taking money through Paystack: initialize, and one processing path for webhook, verify and
reconciliation that advances a booking exactly once.

The amount is always ours (the booking fee or the final cost on the request, never the client's
word). A Paystack success counts only when its reference is ours and its amount (kobo) and currency
equal what we expected; the payment row is locked while it is processed, so concurrent webhooks and
verify calls for one reference end in one transition, one `paid_at` and one set of notifications.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import InvalidTransition, NotFound, PermissionDenied, UpstreamUnavailable
from models.foundation.naira import format_naira
from models.foundation.paystack import PaystackClient, PaystackError, PaystackRefused, from_kobo, to_kobo
from models.foundation.settings import Settings

from ..db import for_update
from ..money import Payment, PaymentSource, PaymentStatus, PaymentType
from ..service_requests import RequestStatus, ServiceRequest
from ..users import Role, User
from ..workflow import record_event, transition, unit_of_work
from .refunds import open_unusable_payment_refund, submit_unsubmitted

log = logging.getLogger("serviceman.payments")
CURRENCY = "NGN"
FINAL = (PaymentStatus.SUCCESS, PaymentStatus.REVIEW)
# Paystack's words for an attempt that will never be paid. ("abandoned" is not one: it only means the
# customer has not finished yet, and they may come back to the same checkout.)
PAYSTACK_GAVE_UP = ("failed", "reversed")
RECONCILE_BATCH = 200


@dataclass(frozen=True)
class Purpose:
    label: str
    pay_in: str  # the request status this payment is taken in
    moves_to: str  # where a verified payment moves the request
    event: str  # the transition's event (and notification type)
    amount: Callable[[ServiceRequest], Decimal]  # what is due, read from the request


PURPOSES = {
    PaymentType.BOOKING_FEE: Purpose(
        "booking fee",
        RequestStatus.PENDING_PAYMENT,
        RequestStatus.PENDING_ADMIN_ASSIGNMENT,
        "payment_received",
        lambda request: request.booking_fee,
    ),
    PaymentType.FINAL_PAYMENT: Purpose(
        "final payment",
        RequestStatus.AWAITING_PAYMENT,
        RequestStatus.PAYMENT_CONFIRMED,
        "payment_confirmed",
        lambda request: request.final_cost,
    ),
}


def _new_reference(request_id: int, payment_type: str) -> str:
    # Paystack allows letters, digits, '-', '.', '='; the random part makes it unguessable.
    return f"SM-{request_id}-{payment_type[0]}-{secrets.token_hex(10)}"


def initialize_payment(
    settings: Settings, paystack: PaystackClient, client: User, request_id: int, payment_type: str
) -> Payment:
    """The open Paystack checkout for what `client` owes on this request, created if needed.

    The request row stays locked while Paystack is asked, so a double click cannot open two
    charges; Paystack failing leaves the attempt recorded as FAILED with the reason, and 502."""
    if client.email_verified_at is None:
        raise PermissionDenied(
            "Confirm your email address before paying: open the link we emailed you, or ask "
            "for a new one (POST /api/auth/resend-verification/).",
            code="email_not_verified",
        )
    purpose = PURPOSES[payment_type]
    failure = None
    with unit_of_work():
        request = (
            ServiceRequest.visible().where(ServiceRequest.id == request_id, ServiceRequest.client == client.id).first()
        )
        if request is None:
            raise NotFound("No such service request.")
        request = ServiceRequest.locked(request.id)
        if request.status != purpose.pay_in:
            raise InvalidTransition(
                f"The {purpose.label} can be paid only while the request is {purpose.pay_in}; it is {request.status}."
            )
        amount = purpose.amount(request)
        if amount is None or amount <= 0:
            raise InvalidTransition(f"No {purpose.label} is due on this request.")
        open_attempt = _open_attempt(request, payment_type)
        if open_attempt is not None and open_attempt.amount == amount and open_attempt.payer_id == client.id:
            return open_attempt
        if open_attempt is not None:
            _close(
                open_attempt,
                PaymentStatus.FAILED,
                f"superseded: {format_naira(open_attempt.amount)} was due when it opened, "
                f"{format_naira(amount)} is due now",
            )
        payment = Payment.create(
            service_request=request.id,
            payer=client.id,
            payment_type=payment_type,
            amount=amount,
            currency=CURRENCY,
            paystack_reference=_new_reference(request.id, payment_type),
            metadata={"service_request_id": request.id, "payment_type": payment_type, "payer_id": client.id},
            updated_at=utcnow(),
        )
        try:
            data = paystack.initialize(
                email=client.email,
                amount=amount,
                reference=payment.paystack_reference,
                currency=CURRENCY,
                metadata={**payment.metadata, "payment_id": payment.id},
                callback_url=settings.payment_callback_url,
            )
        except PaystackError as exc:
            failure = exc
            _close(payment, PaymentStatus.FAILED, f"initialize failed: {exc.message}")
        else:
            payment.paystack_access_code = str(data.get("access_code") or "")[:100]
            payment.authorization_url = str(data.get("authorization_url") or "")[:500]
            payment.save()
    if failure is not None:
        log.warning("Paystack initialize failed for request %s: %s", request_id, failure.message)
        raise UpstreamUnavailable("The payment provider could not start this payment; please try again.")
    return payment


def _open_attempt(request: ServiceRequest, payment_type: str) -> Payment | None:
    return (
        Payment.select()
        .where(
            Payment.service_request == request.id,
            Payment.payment_type == payment_type,
            Payment.status == PaymentStatus.PENDING,
        )
        .order_by(Payment.id.desc())
        .first()
    )


def _close(payment: Payment, status: str, reason: str) -> None:
    payment.status, payment.failure_reason, payment.updated_at = status, reason, utcnow()
    payment.save()


def _paid_at(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def process_charge(data: Any, source: str, give_up: bool = False) -> Payment | None:
    """Apply what Paystack says about one of our references, once. Returns the payment, or None
    when the reference is not ours. Safe to call any number of times, concurrently. `give_up`:
    anything but a success closes the attempt (reconciliation of a long-abandoned checkout)."""
    reference = data.get("reference") if isinstance(data, dict) else None
    if not isinstance(reference, str):
        return None
    with unit_of_work():
        payment = for_update(Payment.select().where(Payment.paystack_reference == reference)).first()
        if payment is None:
            return None
        if payment.status in FINAL:
            return payment  # already processed: this is a retry, a replay or a race we lost
        paystack_status = str(data.get("status") or "")[:20]
        payment.paystack_status, payment.updated_at = paystack_status, utcnow()
        if paystack_status != "success":
            if (give_up or paystack_status in PAYSTACK_GAVE_UP) and payment.status == PaymentStatus.PENDING:
                payment.status = PaymentStatus.FAILED
                payment.failure_reason = f"Paystack: {data.get('gateway_response') or paystack_status}"[:1000]
            payment.save()
            return payment
        request = ServiceRequest.locked(payment.service_request_id)
        _accept_success(payment, request, data, source)
    return payment


def settle_charge(paystack: PaystackClient, data: dict[str, Any], source: str, give_up: bool = False) -> Payment | None:
    """`process_charge`, then money the booking cannot use goes back at once (its refund, opened in
    the same transaction, is submitted to Paystack). Returns the payment, or None when not ours."""
    payment = process_charge(data, source, give_up)
    if payment is not None and payment.needs_refund:
        submit_unsubmitted(paystack, payment.id)
    return payment


def paid_price(data: dict[str, Any]) -> Any:
    """The kobo the client paid for what we asked, as Paystack reports it. When the business passes
    Paystack's fees on to the customer, `amount` includes them and `requested_amount` is the price we
    initialized (openapi: components/schemas/TransactionFetchResponse.yaml; Paystack's docs, "Verify
    Transaction"); otherwise there is no `requested_amount` and `amount` is the price."""
    requested, amount = data.get("requested_amount"), data.get("amount")
    if requested is None:
        return amount
    if type(amount) is not int or type(requested) is not int or amount < requested:
        return amount  # less was taken than the price: never a payment in full
    return requested


def _accept_success(payment: Payment, request: ServiceRequest, data: dict[str, Any], source: str) -> None:
    purpose = PURPOSES[payment.payment_type]
    expected_kobo = to_kobo(payment.amount)
    paid_kobo, currency = paid_price(data), data.get("currency")
    details = {
        "payment_id": payment.id,
        "reference": payment.paystack_reference,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "payment_type": payment.payment_type,
        "purpose": purpose.label,
    }
    payment.paystack_fees = _fees(data)
    if type(paid_kobo) is not int or paid_kobo != expected_kobo or currency != payment.currency:
        payment.status = PaymentStatus.REVIEW
        payment.failure_reason = (
            f"Paystack reported {paid_kobo!r} {currency!r}; expected {expected_kobo} {payment.currency}"
        )
        payment.processed_via = source
        payment.save()
        record_event(
            request,
            "payment_review",
            payment.payer_id,
            payload={**details, "reported_amount_kobo": paid_kobo, "reported_currency": currency},
        )
        log.warning("payment %s held for review: %s", payment.paystack_reference, payment.failure_reason)
        return
    payment.status, payment.processed_via = PaymentStatus.SUCCESS, source
    payment.paid_at = _paid_at(data.get("paid_at"))
    details["paid_at"] = payment.paid_at.isoformat()
    problem = _why_not_applicable(payment, request, purpose)
    if problem:
        # Money arrived that the booking cannot use: keep it as paid and flag it for a refund.
        payment.needs_refund, payment.failure_reason = True, problem
        payment.save()
        record_event(request, "payment_needs_refund", payment.payer_id, payload={**details, "reason": problem})
        open_unusable_payment_refund(payment)
        log.warning("payment %s needs a refund: %s", payment.paystack_reference, problem)
        return
    payment.save()
    transition(request, purpose.moves_to, payment.payer_id, purpose.event, payload=details)
    record_event(request, "payment_receipt", payment.payer_id, payload=details)


def _fees(data: dict[str, Any]) -> Decimal | None:
    """What Paystack kept of a successful charge (`fees`, kobo) in naira; None when it did not say."""
    fees = data.get("fees")
    return from_kobo(fees) if type(fees) is int and fees >= 0 else None


def _why_not_applicable(payment: Payment, request: ServiceRequest, purpose: Purpose) -> str | None:
    if request.status == RequestStatus.CANCELLED:
        return "the request was cancelled before this payment succeeded"
    if request.status != purpose.pay_in:
        return f"the request was {request.status} when this {purpose.label} succeeded (already paid?)"
    if purpose.amount(request) != payment.amount:
        return (
            f"{format_naira(purpose.amount(request))} is due now, but this attempt was for "
            f"{format_naira(payment.amount)}"
        )
    return None


def visible_payments(user: User) -> peewee.ModelSelect[Payment]:
    query = Payment.select()
    if user.role != Role.ADMIN:
        query = query.join(ServiceRequest).where(ServiceRequest.client == user.id)
    return query


def list_payments(
    user: User, status: str | None = None, payment_type: str | None = None, service_request_id: int | None = None
) -> peewee.ModelSelect[Payment]:
    query = visible_payments(user)
    if status is not None:
        query = query.where(Payment.status == status)
    if payment_type is not None:
        query = query.where(Payment.payment_type == payment_type)
    if service_request_id is not None:
        query = query.where(Payment.service_request == service_request_id)
    return query.order_by(Payment.created_at.desc(), Payment.id.desc())


def verify_payment(paystack: PaystackClient, user: User, reference: str) -> Payment:
    """Ask Paystack about one of the caller's payments and process the answer like a webhook."""
    payment = visible_payments(user).where(Payment.paystack_reference == reference).first()
    if payment is None:
        raise NotFound("No such payment.")
    if payment.status in FINAL:
        return payment
    try:
        data = paystack.verify(reference)
    except PaystackError as exc:
        Payment.update(failure_reason=f"verify failed: {exc.message}"[:1000], updated_at=utcnow()).where(
            Payment.id == payment.id, Payment.status == PaymentStatus.PENDING
        ).execute()
        raise UpstreamUnavailable("The payment provider could not be asked about this payment; try again.") from exc
    if data.get("reference") != reference:
        raise UpstreamUnavailable("The payment provider answered about another payment.")
    process_charge(data, PaymentSource.VERIFY)
    # Wider than settle_charge: any refund of this payment not yet submitted goes now, this answer's
    # or one a concurrent webhook opened and has not submitted yet.
    submit_unsubmitted(paystack, payment.id)
    return Payment.get_by_id(payment.id)


def reconcile_payments(
    paystack: PaystackClient, verify_after: float, abandon_after: float, now: datetime | None = None
) -> dict[str, int]:
    """Re-verify attempts still PENDING after `verify_after` (a webhook may have been lost) and
    close those Paystack gave up on, or that stayed unpaid past `abandon_after`. Returns counts."""
    now = now or utcnow()
    counts = {"checked": 0, "paid": 0, "failed": 0, "unreachable": 0}
    # Read whole before the loop writes: on SQLite a write while a read cursor is open fails.
    stale = list(
        Payment.select()
        .where(Payment.status == PaymentStatus.PENDING, Payment.created_at <= now - timedelta(seconds=verify_after))
        .order_by(Payment.created_at)
        .limit(RECONCILE_BATCH)
    )
    for payment in stale:
        counts["checked"] += 1
        abandoned = payment.created_at <= now - timedelta(seconds=abandon_after)
        try:
            data = paystack.verify(payment.paystack_reference)
        except PaystackRefused as exc:  # e.g. "Transaction reference not found": never reached Paystack
            data = {"reference": payment.paystack_reference, "status": "", "gateway_response": exc.message}
        except PaystackError as exc:
            counts["unreachable"] += 1
            log.warning("reconcile: Paystack unavailable for %s: %s", payment.paystack_reference, exc.message)
            continue
        if data.get("reference") != payment.paystack_reference:
            continue
        if abandoned and not data.get("gateway_response"):
            data = {**data, "gateway_response": "abandoned: unpaid past PAYMENT_ABANDON_AFTER"}
        result = settle_charge(paystack, data, PaymentSource.RECONCILE, give_up=abandoned)
        if result is not None and result.status in FINAL:
            counts["paid"] += 1
        elif result is not None and result.status == PaymentStatus.FAILED:
            counts["failed"] += 1
    return counts
