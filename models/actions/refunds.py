"""Refunds through Paystack's Refund API, exactly once.

A refund is opened (a Refund row with our own reference) in the same transaction that decides it:
the cancellation, the processing of a payment that can no longer be used, or an admin's manual
refund. Opening locks the payment row and checks that the payment's refunds, this one included, add
up to no more than was paid; a unique index allows one refund per payment and cause. Paystack is
asked after that commit, with the refund row locked (so concurrent askers queue and the later ones
find it already asked); when an earlier ask timed out, Paystack's List Refunds is paged from a
little before that ask (it has no per-transaction filter) for our reference before asking again.
Statuses then arrive through `refund.*` webhooks and the reconciliation job; a failure is told to the
admins, who may retry; `needs-attention` (NEEDS_BANK) is retried with the customer's bank account
through Paystack's retry_with_customer_details, never by a second refund.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

import peewee
from peewee import fn

from models.foundation.clock import utcnow
from models.foundation.errors import Conflict, InvalidTransition, NotFound, UpstreamUnavailable, ValidationFailed
from models.foundation.naira import format_naira
from models.foundation.paystack import PaystackClient, PaystackError, PaystackRefused, PaystackUnavailable, to_kobo

from ..base import CENTS
from ..db import for_update
from ..money import Payment, PaymentStatus
from ..refunds import Refund, RefundCause, RefundPolicy, RefundStatus
from ..users import User
from ..workflow import record_event, unit_of_work

log = logging.getLogger("serviceman.refunds")


class RefundShare(Protocol):
    """A part of a payment a plan gives back (cancellation.Share)."""

    @property
    def payment(self) -> Payment: ...
    @property
    def refund(self) -> Decimal: ...


class RefundPlan(Protocol):
    """What a cancellation promises to give back (cancellation.Quote, which imports this module)."""

    @property
    def policy(self) -> str: ...
    @property
    def shares(self) -> Sequence[RefundShare]: ...


class PaystackUnavailableSearch(PaystackUnavailable):
    """The search for a refund whose answer was lost did not end: nothing is asked again."""


R = RefundStatus
# Paystack's refund statuses (https://paystack.com/docs/payments/refunds/ and the refund.* webhook
# events). "needs-attention": Paystack could not return the money on its own and needs the customer's
# bank account; "reversed" is kept as a failure for safety, though the refund docs do not list it.
FROM_PAYSTACK = {
    "pending": R.PENDING,
    "processing": R.PROCESSING,
    "processed": R.PROCESSED,
    "failed": R.FAILED,
    "needs-attention": R.NEEDS_BANK,
    "reversed": R.FAILED,
}
# Where a status may move on Paystack's word (a late or replayed webhook never moves one back).
# NEEDS_BANK moves on once an admin gave Paystack the customer's account (retry_with_customer_details).
MOVES = {
    R.PENDING: {R.PROCESSING, R.PROCESSED, R.FAILED, R.NEEDS_BANK},
    R.PROCESSING: {R.PROCESSED, R.FAILED, R.NEEDS_BANK},
    R.NEEDS_BANK: {R.PROCESSING, R.PROCESSED, R.FAILED},
    R.FAILED: {R.PROCESSED},
    R.PROCESSED: set(),
}
RECONCILE_BATCH = 200
# Looking for a refund whose answer was lost: Paystack's List Refunds, a page at a time, from a little
# before we asked (clocks differ) until the pages end; never more than FIND_MAX_PAGES pages.
FIND_PER_PAGE = 100
FIND_SLACK = timedelta(minutes=10)
FIND_MAX_PAGES = 50


def refunded_total(payment_id: int) -> Decimal:
    """Everything opened against a payment, failed ones included: a failed refund is retried, not
    replaced, so its amount stays reserved."""
    total = Refund.select(fn.SUM(Refund.amount)).where(Refund.payment == payment_id).scalar()
    return cast(Decimal, Refund.amount.python_value(total)) if total is not None else CENTS * 0


def refundable_amount(payment: Payment) -> Decimal:
    if payment.status != PaymentStatus.SUCCESS:
        return CENTS * 0
    return max(payment.amount - refunded_total(payment.id), CENTS * 0)


def lock_payment(payment_id: int) -> Payment | None:
    return for_update(Payment.select().where(Payment.id == payment_id)).first()


def open_refund(
    payment: Payment, amount: Decimal, *, policy: str, reason: str, cause: str | None = None, actor: int | None = None
) -> Refund:
    """Open a refund of `amount` naira; the caller's transaction holds `payment` locked. With a
    cause, an existing refund for that cause is returned instead of a second one."""
    if cause is not None:
        existing = Refund.get_or_none(Refund.payment == payment.id, Refund.cause == cause)
        if existing is not None:
            return existing
    if payment.status != PaymentStatus.SUCCESS:
        raise InvalidTransition(f"Only a verified payment can be refunded; this one is {payment.status}.")
    remaining = refundable_amount(payment)
    if remaining <= 0:
        raise Conflict("This payment has already been refunded in full.", code="already_refunded")
    if amount <= 0 or amount > remaining:
        raise ValidationFailed.on(
            "amount", f"Between {format_naira(CENTS)} and {format_naira(remaining)} of this payment can be refunded."
        )
    refund = Refund.create(
        payment=payment.id,
        service_request=payment.service_request_id,
        amount=amount,
        currency=payment.currency,
        cause=cause,
        policy=policy,
        reason=reason[:2000],
        requested_by=actor,
        reference=f"SM-R-{payment.id}-{secrets.token_hex(8)}",
    )
    log.info("refund %s opened: NGN %s of payment %s (%s)", refund.reference, amount, payment.id, policy)
    return refund


def open_cancellation_refunds(quote: RefundPlan, reason: str, actor: int | None) -> list[int]:
    """The refunds a cancellation's quote promises (inside the cancellation's transaction)."""
    ids = []
    for share in quote.shares:
        if share.refund > 0:
            payment = lock_payment(share.payment.id)
            assert payment is not None  # the quote's own payment, read in this transaction
            ids.append(
                open_refund(
                    payment,
                    share.refund,
                    policy=quote.policy,
                    reason=reason,
                    cause=RefundCause.CANCELLATION,
                    actor=actor,
                ).id
            )
    return ids


def open_unusable_payment_refund(payment: Payment) -> Refund | None:
    """Money that arrived for a booking that cannot use it goes back whole (inside the transaction
    that found it unusable, which holds the payment locked)."""
    remaining = refundable_amount(payment)
    if remaining <= 0:
        return None
    return open_refund(
        payment,
        remaining,
        policy=RefundPolicy.UNUSABLE_PAYMENT,
        cause=RefundCause.UNUSABLE_PAYMENT,
        reason=f"Paid but not usable: {payment.failure_reason}",
    )


def refund_payment(
    paystack: PaystackClient, admin: User, payment_id: int, reason: str, amount: Decimal | None = None
) -> Refund | None:
    """An admin's manual refund of a verified payment: all that is left of it, or `amount`."""
    with unit_of_work():
        payment = lock_payment(payment_id)
        if payment is None:
            raise NotFound("No such payment.")
        if amount is None:
            amount = refundable_amount(payment)
        refund = open_refund(payment, amount, policy=RefundPolicy.MANUAL, reason=reason, actor=admin.id)
    return submit_refund(paystack, refund.id)


# --- asking Paystack ---------------------------------------------------------------------------------


def _details(refund: Refund, **extra: Any) -> dict[str, Any]:
    return {
        "refund_id": refund.id,
        "payment_id": refund.payment_id,
        "amount": str(refund.amount),
        "currency": refund.currency,
        "policy": refund.policy,
        "reason": refund.reason,
        "reference": refund.reference,
        "status": refund.status,
        **extra,
    }


def _locked(refund_id: int) -> Refund | None:
    return for_update(Refund.select().where(Refund.id == refund_id)).first()


def submit_refunds(paystack: PaystackClient, refund_ids: Iterable[int]) -> list[Refund | None]:
    return [submit_refund(paystack, refund_id) for refund_id in refund_ids]


def submit_unsubmitted(paystack: PaystackClient, payment_id: int) -> list[Refund | None]:
    """Ask Paystack for every refund of a payment not yet accepted (after a webhook made one)."""
    ids = [
        r.id
        for r in Refund.select(Refund.id).where(
            Refund.payment == payment_id, Refund.status == R.PENDING, Refund.submitted_at.is_null()
        )
    ]
    return submit_refunds(paystack, ids)


def submit_refund(paystack: PaystackClient, refund_id: int) -> Refund | None:
    """Have Paystack make this refund, once. Safe to call any number of times, concurrently: the
    row stays locked while Paystack is asked. Paystack unreachable leaves it PENDING for the
    reconciliation job; Paystack refusing fails it (admins are told)."""
    with unit_of_work():
        refund = _locked(refund_id)
        if refund is None or refund.status != R.PENDING or refund.submitted_at is not None:
            return refund
        payment = refund.payment
        try:
            data = _find_at_paystack(paystack, refund, payment) if refund.asked_at else None
            if data is None:
                refund.asked_at, refund.attempts = utcnow(), refund.attempts + 1
                data = paystack.create_refund(
                    transaction=payment.paystack_reference,
                    amount=refund.amount,
                    currency=refund.currency,
                    merchant_note=f"{refund.reference} {refund.policy}",
                    customer_note=f"Serviceman booking #{refund.service_request_id}: {refund.reason}"[:200],
                )
        except PaystackRefused as exc:
            _move(refund, R.FAILED, f"Paystack refused the refund: {exc.message}")
            return refund
        except PaystackError as exc:
            # The outcome is unknown (the refund may exist at Paystack): asked_at, committed, makes the
            # next attempt look for it before asking again.
            refund.failure_reason, refund.updated_at = f"Paystack unavailable: {exc.message}"[:1000], utcnow()
            refund.save()
            log.warning("refund %s: Paystack unavailable (%s); will retry", refund.reference, exc.message)
            return refund
        refund.paystack_refund_id = str(data.get("id") or "")[:40] or None
        refund.submitted_at, refund.failure_reason = utcnow(), ""
        record_event(refund.service_request, "refund_started", refund.requested_by_id, payload=_details(refund))
        _apply_paystack(refund, data)
    return refund


def _find_at_paystack(paystack: PaystackClient, refund: Refund, payment: Payment) -> dict[str, Any] | None:
    """The refund Paystack already made for our reference (an earlier ask whose answer was lost).

    Paystack's List Refunds has no per-transaction filter (openapi: paths/refund.yaml takes perPage,
    page, from, to): we read every page of the refunds made since a little before our first ask and
    match our reference in `merchant_note` (and the transaction's reference, as a second check)."""
    if refund.paystack_refund_id:
        return paystack.fetch_refund(refund.paystack_refund_id)
    since = refund.asked_at - FIND_SLACK
    for page in range(1, FIND_MAX_PAGES + 1):
        found, meta = paystack.list_refunds(page=page, per_page=FIND_PER_PAGE, since=since)
        for candidate in found:
            if _is_ours(candidate, refund, payment):
                log.info(
                    "refund %s: found at Paystack as %s after a lost answer", refund.reference, candidate.get("id")
                )
                return candidate
        if not found or page >= _int(meta.get("pageCount"), page):
            return None
    raise PaystackUnavailableSearch(f"more than {FIND_MAX_PAGES} pages of refunds since {since:%Y-%m-%d %H:%M}")


def _is_ours(candidate: Any, refund: Refund, payment: Payment) -> bool:
    if not isinstance(candidate, dict) or refund.reference not in str(candidate.get("merchant_note") or ""):
        return False
    reference = candidate.get("transaction_reference")
    if reference is None and isinstance(candidate.get("transaction"), dict):
        reference = candidate["transaction"].get("reference")
    return (
        reference in (None, payment.paystack_reference) and FROM_PAYSTACK.get(str(candidate.get("status"))) != R.FAILED
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _apply_paystack(refund: Refund, data: dict[str, Any]) -> Refund:
    paystack_status = str(data.get("status") or "")[:20]
    status = FROM_PAYSTACK.get(paystack_status.lower())
    refund.paystack_status, refund.updated_at = paystack_status, utcnow()
    if status is not None and status in MOVES[refund.status]:
        return _move(refund, status, f"Paystack: {data.get('reason') or data.get('message') or paystack_status}")
    refund.save()
    return refund


def _move(refund: Refund, status: str, failure_reason: str = "") -> Refund:
    refund.status, refund.updated_at = status, utcnow()
    if status == R.PROCESSED:
        refund.processed_at, refund.failure_reason = utcnow(), ""
        refund.save()
        record_event(refund.service_request, "refund_processed", None, payload=_details(refund))
    elif status == R.FAILED:
        refund.failure_reason = failure_reason[:1000]
        refund.save()
        record_event(
            refund.service_request,
            "refund_failed",
            None,
            payload=_details(refund, failure_reason=refund.failure_reason),
        )
        log.warning("refund %s failed: %s", refund.reference, refund.failure_reason)
    elif status == R.NEEDS_BANK:
        refund.failure_reason = (
            "Paystack needs the customer's bank account to return this money: collect it "
            "and retry with the customer's details."
        )
        refund.save()
        record_event(
            refund.service_request,
            "refund_needs_attention",
            None,
            payload=_details(refund, failure_reason=refund.failure_reason),
        )
        log.warning("refund %s needs the customer's bank details", refund.reference)
    else:
        refund.save()
    return refund


# --- Paystack's word: webhooks and reconciliation ---------------------------------------------------


def _kobo(value: object) -> int | None:
    """Kobo from an integer or a string of digits (Paystack's webhooks send the amount as a string)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# A webhook may speak of any refund that is not settled yet.
AWAITING_WORD = R.OPEN + (R.NEEDS_BANK,)


def _candidates(data: dict[str, Any]) -> list[int]:
    """Our refunds an event without a known Paystack id may be about: same transaction, same kobo."""
    reference, kobo = data.get("transaction_reference"), _kobo(data.get("amount"))
    if not isinstance(reference, str) or kobo is None:
        return []
    query = (
        Refund.select(Refund.id, Refund.amount)
        .join(Payment)
        .where(Payment.paystack_reference == reference, Refund.status.in_(AWAITING_WORD))
        .order_by(Refund.id)
    )
    if data.get("id") is not None:  # an event naming an id we do not know is about none we know by id
        query = query.where(Refund.paystack_refund_id.is_null())
    return [row.id for row in query if to_kobo(row.amount) == kobo]


def process_refund_event(event: str, data: Any, paystack: PaystackClient | None = None) -> Refund | None:
    """Apply a signed `refund.*` webhook once; returns the refund, or None when it is not ours.
    Replays and late events change nothing (statuses only move forward).

    Paystack's refund.pending/processing/processed events carry no refund id and an `amount` in kobo
    as a string (https://paystack.com/docs/payments/webhooks/#refunds): they are matched by Paystack's
    id when present, otherwise by transaction reference and amount. When two open refunds of one
    transaction have that amount, the event cannot say which it is: each of them is read from
    Paystack (GET /refund/{id}) instead of guessing."""
    if not isinstance(data, dict):
        return None
    if not data.get("status"):
        data = {**data, "status": event.partition(".")[2]}
    refund_id = data.get("id") if data.get("id") is not None else data.get("refund_id")
    known = Refund.get_or_none(Refund.paystack_refund_id == str(refund_id)) if refund_id is not None else None
    ids = [known.id] if known is not None else _candidates(data)
    if len(ids) > 1:
        _reread(paystack, ids, event)
        return None
    if not ids:
        log.warning(
            "webhook %s for a refund that is not ours (transaction %r)", event, data.get("transaction_reference")
        )
        return None
    with unit_of_work():
        refund = _locked(ids[0])  # waits for a submitter still holding it, then re-reads
        assert refund is not None  # one of our rows: refunds are never deleted
        if known is None and refund.status not in AWAITING_WORD:
            return None
        if refund.paystack_refund_id is None and refund_id is not None:
            refund.paystack_refund_id = str(refund_id)[:40]
        _apply_paystack(refund, data)
    return refund


def _reread(paystack: PaystackClient | None, ids: list[int], event: str) -> None:
    """Several refunds fit an event that names none: apply what Paystack says of each."""
    log.info("webhook %s fits %d refunds; asking Paystack about each", event, len(ids))
    if paystack is None:
        return None
    for refund_id in ids:
        refund = Refund.get_by_id(refund_id)
        if not refund.paystack_refund_id:
            continue  # not accepted yet: the submitter or the reconciliation job will read it
        try:
            data = paystack.fetch_refund(refund.paystack_refund_id)
        except PaystackError as exc:
            log.warning(
                "refund %s: Paystack unavailable (%s); the reconciliation job will read it",
                refund.reference,
                exc.message,
            )
            continue
        with unit_of_work():
            locked = _locked(refund_id)
            assert locked is not None  # one of our rows: refunds are never deleted
            if locked.status in AWAITING_WORD:
                _apply_paystack(locked, data)
    return None


def reconcile_refunds(paystack: PaystackClient, after: float, now: datetime | None = None) -> dict[str, int]:
    """Open refunds for paid-but-unusable payments that have none, ask Paystack for refunds it was
    never (successfully) asked for, and re-read those it has been processing for `after` seconds."""
    now = now or utcnow()
    counts = {"opened": 0, "submitted": 0, "checked": 0, "processed": 0, "failed": 0, "unreachable": 0}
    refunded = Refund.select(Refund.payment).where(Refund.cause == RefundCause.UNUSABLE_PAYMENT)
    opened = []
    # Each query is read whole before its loop writes: on SQLite a write while a read cursor is open fails.
    for payment in list(
        Payment.select(Payment.id)
        .where(Payment.needs_refund == True, Payment.status == PaymentStatus.SUCCESS, Payment.id.not_in(refunded))
        .limit(RECONCILE_BATCH)
    ):
        with unit_of_work():
            locked = lock_payment(payment.id)
            assert locked is not None  # payments are never deleted
            refund = open_unusable_payment_refund(locked)
        if refund is not None:
            opened.append(refund.id)
    counts["opened"] = len(opened)
    unsubmitted = (
        Refund.select(Refund.id)
        .where(
            Refund.status == R.PENDING,
            Refund.submitted_at.is_null(),
            Refund.created_at <= now - timedelta(seconds=after),
        )
        .order_by(Refund.id)
        .limit(RECONCILE_BATCH)
    )
    for refund_id in opened + [row.id for row in unsubmitted if row.id not in opened]:
        refund = submit_refund(paystack, refund_id)
        assert refund is not None  # one of our rows: refunds are never deleted
        counts["submitted" if refund.submitted_at else "failed" if refund.status == R.FAILED else "unreachable"] += 1
    stale = list(
        Refund.select()
        .where(
            Refund.status.in_(R.OPEN),
            Refund.submitted_at <= now - timedelta(seconds=after),
            Refund.paystack_refund_id.is_null(False),
        )
        .order_by(Refund.submitted_at)
        .limit(RECONCILE_BATCH)
    )
    for refund in stale:
        counts["checked"] += 1
        try:
            assert refund.paystack_refund_id is not None  # the query's filter
            data = paystack.fetch_refund(refund.paystack_refund_id)
        except PaystackError as exc:
            counts["unreachable"] += 1
            log.warning("reconcile: Paystack unavailable for refund %s: %s", refund.reference, exc.message)
            continue
        with unit_of_work():
            relocked = _locked(refund.id)
            assert relocked is not None  # one of our rows: refunds are never deleted
            refund = relocked
            if refund.status in R.OPEN:
                refund = _apply_paystack(refund, data)
        if refund.status == R.PROCESSED:
            counts["processed"] += 1
        elif refund.status == R.FAILED:
            counts["failed"] += 1
    return counts


# --- admins ------------------------------------------------------------------------------------------


def retry_refund(paystack: PaystackClient, admin: User, refund_id: int) -> Refund | None:
    """Ask Paystack again for a FAILED refund. If the refund Paystack failed has since gone through
    (or is going through), that is adopted instead: never a second refund for one promise."""
    with unit_of_work():
        refund = _locked(refund_id)
        if refund is None:
            raise NotFound("No such refund.")
        if refund.status == R.NEEDS_BANK:
            raise InvalidTransition(
                "Paystack needs the customer's bank account for this refund: retry it with "
                "the customer's details (POST /api/admin/refunds/{id}/customer-details/).",
                code="needs_customer_details",
            )
        if refund.status != R.FAILED:
            raise InvalidTransition(f"Only a failed refund can be retried; this one is {refund.status}.")
        if refund.paystack_refund_id:
            try:
                data = paystack.fetch_refund(refund.paystack_refund_id)
            except PaystackRefused:
                data = {}
            except PaystackError as exc:
                raise UpstreamUnavailable(
                    "The payment provider could not be asked about this refund; try again."
                ) from exc
            alive = FROM_PAYSTACK.get(str(data.get("status") or "").lower())
            if alive == R.PROCESSED:
                return _move(refund, R.PROCESSED)
            if alive in R.OPEN:
                refund.status, refund.paystack_status = alive, str(data["status"])[:20]
                refund.failure_reason, refund.updated_at = "", utcnow()
                refund.save()
                record_event(
                    refund.service_request,
                    "refund_retried",
                    admin.id,
                    payload=_details(refund, outcome="Paystack is still processing the first attempt"),
                )
                return refund
        refund.status, refund.paystack_refund_id, refund.paystack_status = R.PENDING, None, ""
        refund.asked_at = refund.submitted_at = None
        refund.updated_at = utcnow()
        refund.save()
        record_event(refund.service_request, "refund_retried", admin.id, payload=_details(refund))
    return submit_refund(paystack, refund.id)


def retry_with_customer_details(
    paystack: PaystackClient,
    banks: Iterable[dict[str, Any]],
    admin: User,
    refund_id: int,
    bank_code: str,
    account_number: str,
) -> Refund:
    """Give Paystack the customer's bank account for a NEEDS_BANK refund, as Paystack documents it:
    `POST /refund/retry_with_customer_details/{id}` (never a second `POST /refund`: Paystack keeps the
    amount reserved for the first). `banks` is Paystack's bank list ({code, id}); the account number
    goes to Paystack only, never into our rows, events or logs."""
    bank_id = next((b.get("id") for b in banks if b.get("code") == bank_code), None)
    if bank_id is None:
        raise ValidationFailed.on("bank_code", "Not a bank Paystack can pay to; see GET /api/banks/.")
    with unit_of_work():
        refund = _locked(refund_id)
        if refund is None:
            raise NotFound("No such refund.")
        if refund.status != R.NEEDS_BANK or not refund.paystack_refund_id:
            raise InvalidTransition(
                f"Only a refund waiting for the customer's bank account can be retried with "
                f"it; this one is {refund.status}."
            )
        try:
            data = paystack.retry_refund_with_customer_details(
                refund.paystack_refund_id, currency=refund.currency, account_number=account_number, bank_id=bank_id
            )
        except PaystackRefused as exc:
            raise ValidationFailed.on("account_number", f"Paystack refused these details: {exc.message}") from exc
        except PaystackError as exc:
            raise UpstreamUnavailable("The payment provider could not be asked; try again.") from exc
        refund.failure_reason = ""
        record_event(
            refund.service_request,
            "refund_retried",
            admin.id,
            payload=_details(
                refund, outcome=f"sent the customer's account at bank {bank_code} (******{account_number[-4:]})"
            ),
        )
        paystack_status = str(data.get("status") or "").lower()
        if FROM_PAYSTACK.get(paystack_status) in (None, R.NEEDS_BANK):
            paystack_status = "processing"  # the details were taken in: Paystack works on it again
        _apply_paystack(refund, {**data, "status": paystack_status})
    return refund


def list_refunds(
    status: str | None = None, service_request_id: int | None = None, payment_id: int | None = None
) -> peewee.ModelSelect[Refund]:
    query = Refund.select()
    if status is not None:
        query = query.where(Refund.status == status)
    if service_request_id is not None:
        query = query.where(Refund.service_request == service_request_id)
    if payment_id is not None:
        query = query.where(Refund.payment == payment_id)
    return query.order_by(Refund.created_at.desc(), Refund.id.desc())
