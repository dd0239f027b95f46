"""Refunds through Paystack's Refund API, exactly once.

A refund is opened (a Refund row with our own reference) in the same transaction that decides it:
the cancellation, the processing of a payment that can no longer be used, or an admin's manual
refund. Opening locks the payment row and checks that the payment's refunds, this one included, add
up to no more than was paid; a unique index allows one refund per payment and cause. Paystack is
asked after that commit, with the refund row locked (so concurrent askers queue and the later ones
find it already asked); when an earlier ask timed out, Paystack's refunds of the transaction are
searched for our reference before asking again. Statuses then arrive through `refund.*` webhooks and
the reconciliation job; a failure is told to the admins, who may retry.
"""
import logging
import secrets
from datetime import timedelta

from peewee import fn

from server.clock import utcnow
from server.errors import Conflict, InvalidTransition, NotFound, UpstreamUnavailable, ValidationFailed
from server.naira import format_naira
from server.paystack import PaystackError, PaystackRefused, to_kobo

from ..base import CENTS
from ..db import for_update
from ..money import Payment, PaymentStatus
from ..refunds import Refund, RefundCause, RefundPolicy, RefundStatus
from ..workflow import record_event, unit_of_work

log = logging.getLogger("serviceman.refunds")
R = RefundStatus
# Paystack's refund statuses. "needs-attention": Paystack could not return the money on its own.
FROM_PAYSTACK = {"pending": R.PENDING, "processing": R.PROCESSING, "processed": R.PROCESSED,
                 "failed": R.FAILED, "needs-attention": R.FAILED, "reversed": R.FAILED}
# Where a status may move on Paystack's word (a late or replayed webhook never moves one back).
MOVES = {R.PENDING: {R.PROCESSING, R.PROCESSED, R.FAILED}, R.PROCESSING: {R.PROCESSED, R.FAILED},
         R.FAILED: {R.PROCESSED}, R.PROCESSED: set()}
RECONCILE_BATCH = 200


def refunded_total(payment_id):
    """Everything opened against a payment, failed ones included: a failed refund is retried, not
    replaced, so its amount stays reserved."""
    total = Refund.select(fn.SUM(Refund.amount)).where(Refund.payment == payment_id).scalar()
    return (Refund.amount.python_value(total) if total is not None else CENTS * 0)


def refundable_amount(payment):
    if payment.status != PaymentStatus.SUCCESS:
        return CENTS * 0
    return max(payment.amount - refunded_total(payment.id), CENTS * 0)


def lock_payment(payment_id):
    return for_update(Payment.select().where(Payment.id == payment_id)).first()


def open_refund(payment, amount, *, policy, reason, cause=None, actor=None):
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
        raise ValidationFailed.on("amount", f"Between {format_naira(CENTS)} and {format_naira(remaining)} of this "
                                            f"payment can be refunded.")
    refund = Refund.create(
        payment=payment.id, service_request=payment.service_request_id, amount=amount, currency=payment.currency,
        cause=cause, policy=policy, reason=reason[:2000], requested_by=actor,
        reference=f"SM-R-{payment.id}-{secrets.token_hex(8)}")
    log.info("refund %s opened: NGN %s of payment %s (%s)", refund.reference, amount, payment.id, policy)
    return refund


def open_cancellation_refunds(quote, reason, actor):
    """The refunds a cancellation's quote promises (inside the cancellation's transaction)."""
    ids = []
    for share in quote.shares:
        if share.refund > 0:
            payment = lock_payment(share.payment.id)
            ids.append(open_refund(payment, share.refund, policy=quote.policy, reason=reason,
                                   cause=RefundCause.CANCELLATION, actor=actor).id)
    return ids


def open_unusable_payment_refund(payment):
    """Money that arrived for a booking that cannot use it goes back whole (inside the transaction
    that found it unusable, which holds the payment locked)."""
    remaining = refundable_amount(payment)
    if remaining <= 0:
        return None
    return open_refund(payment, remaining, policy=RefundPolicy.UNUSABLE_PAYMENT, cause=RefundCause.UNUSABLE_PAYMENT,
                       reason=f"Paid but not usable: {payment.failure_reason}")


def refund_payment(paystack, admin, payment_id, reason, amount=None):
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


def _details(refund, **extra):
    return {"refund_id": refund.id, "payment_id": refund.payment_id, "amount": str(refund.amount),
            "currency": refund.currency, "policy": refund.policy, "reason": refund.reason,
            "reference": refund.reference, "status": refund.status, **extra}


def _locked(refund_id):
    return for_update(Refund.select().where(Refund.id == refund_id)).first()


def submit_refunds(paystack, refund_ids):
    return [submit_refund(paystack, refund_id) for refund_id in refund_ids]


def submit_unsubmitted(paystack, payment_id):
    """Ask Paystack for every refund of a payment not yet accepted (after a webhook made one)."""
    ids = [r.id for r in Refund.select(Refund.id).where(Refund.payment == payment_id, Refund.status == R.PENDING,
                                                         Refund.submitted_at.is_null())]
    return submit_refunds(paystack, ids)


def submit_refund(paystack, refund_id):
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
                    transaction=payment.paystack_reference, amount=refund.amount, currency=refund.currency,
                    merchant_note=f"{refund.reference} {refund.policy}",
                    customer_note=f"Serviceman booking #{refund.service_request_id}: {refund.reason}"[:200])
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


def _find_at_paystack(paystack, refund, payment):
    """The refund Paystack already made for our reference (an earlier ask whose answer was lost)."""
    transaction = paystack.verify(payment.paystack_reference)
    for candidate in paystack.list_refunds(transaction.get("id")):
        if isinstance(candidate, dict) and refund.reference in str(candidate.get("merchant_note") or "") \
                and FROM_PAYSTACK.get(str(candidate.get("status"))) != R.FAILED:
            log.info("refund %s: found at Paystack as %s after a lost answer", refund.reference, candidate.get("id"))
            return candidate
    return None


def _apply_paystack(refund, data):
    paystack_status = str(data.get("status") or "")[:20]
    status = FROM_PAYSTACK.get(paystack_status.lower())
    refund.paystack_status, refund.updated_at = paystack_status, utcnow()
    if status is not None and status in MOVES[refund.status]:
        return _move(refund, status, f"Paystack: {data.get('reason') or data.get('message') or paystack_status}")
    refund.save()
    return refund


def _move(refund, status, failure_reason=""):
    refund.status, refund.updated_at = status, utcnow()
    if status == R.PROCESSED:
        refund.processed_at, refund.failure_reason = utcnow(), ""
        refund.save()
        record_event(refund.service_request, "refund_processed", None, payload=_details(refund))
    elif status == R.FAILED:
        refund.failure_reason = failure_reason[:1000]
        refund.save()
        record_event(refund.service_request, "refund_failed", None,
                     payload=_details(refund, failure_reason=refund.failure_reason))
        log.warning("refund %s failed: %s", refund.reference, refund.failure_reason)
    else:
        refund.save()
    return refund


# --- Paystack's word: webhooks and reconciliation ---------------------------------------------------


def _kobo(value):
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _match(data):
    """Our refund a `refund.*` event is about, locked: by Paystack's refund id when the event has
    one, otherwise the oldest open refund of that transaction for that amount."""
    refund_id = data.get("id") if data.get("id") is not None else data.get("refund_id")
    if refund_id is not None:
        found = Refund.get_or_none(Refund.paystack_refund_id == str(refund_id))
        if found is not None:
            return _locked(found.id)
    reference, kobo = data.get("transaction_reference"), _kobo(data.get("amount"))
    if not isinstance(reference, str) or kobo is None:
        return None
    candidates = (Refund.select(Refund.id, Refund.amount).join(Payment)
                  .where(Payment.paystack_reference == reference, Refund.status.in_(R.OPEN))
                  .order_by(Refund.id))
    for candidate in candidates:
        if to_kobo(candidate.amount) != kobo:
            continue
        refund = _locked(candidate.id)  # waits for a submitter still holding it, then re-reads
        if refund.status in R.OPEN and (refund.paystack_refund_id is None or refund_id is None
                                        or refund.paystack_refund_id == str(refund_id)):
            return refund
    return None


def process_refund_event(event, data):
    """Apply a signed `refund.*` webhook once; returns the refund, or None when it is not ours.
    Replays and late events change nothing (statuses only move forward)."""
    if not isinstance(data, dict):
        return None
    if not data.get("status"):
        data = {**data, "status": event.partition(".")[2]}
    with unit_of_work():
        refund = _match(data)
        if refund is None:
            log.warning("webhook %s for a refund that is not ours (transaction %r)", event,
                        data.get("transaction_reference"))
            return None
        if refund.paystack_refund_id is None and data.get("id") is not None:
            refund.paystack_refund_id = str(data["id"])[:40]
        _apply_paystack(refund, data)
    return refund


def reconcile_refunds(paystack, after, now=None):
    """Open refunds for paid-but-unusable payments that have none, ask Paystack for refunds it was
    never (successfully) asked for, and re-read those it has been processing for `after` seconds."""
    now = now or utcnow()
    counts = {"opened": 0, "submitted": 0, "checked": 0, "processed": 0, "failed": 0, "unreachable": 0}
    refunded = Refund.select(Refund.payment).where(Refund.cause == RefundCause.UNUSABLE_PAYMENT)
    opened = []
    for payment in (Payment.select(Payment.id).where(Payment.needs_refund == True,  # noqa: E712
                                                     Payment.status == PaymentStatus.SUCCESS,
                                                     Payment.id.not_in(refunded)).limit(RECONCILE_BATCH)):
        with unit_of_work():
            refund = open_unusable_payment_refund(lock_payment(payment.id))
        if refund is not None:
            opened.append(refund.id)
    counts["opened"] = len(opened)
    unsubmitted = (Refund.select(Refund.id).where(Refund.status == R.PENDING, Refund.submitted_at.is_null(),
                                                  Refund.created_at <= now - timedelta(seconds=after))
                   .order_by(Refund.id).limit(RECONCILE_BATCH))
    for refund_id in opened + [row.id for row in unsubmitted if row.id not in opened]:
        refund = submit_refund(paystack, refund_id)
        counts["submitted" if refund.submitted_at else "failed" if refund.status == R.FAILED else "unreachable"] += 1
    stale = (Refund.select().where(Refund.status.in_(R.OPEN), Refund.submitted_at <= now - timedelta(seconds=after),
                                   Refund.paystack_refund_id.is_null(False))
             .order_by(Refund.submitted_at).limit(RECONCILE_BATCH))
    for refund in stale:
        counts["checked"] += 1
        try:
            data = paystack.fetch_refund(refund.paystack_refund_id)
        except PaystackError as exc:
            counts["unreachable"] += 1
            log.warning("reconcile: Paystack unavailable for refund %s: %s", refund.reference, exc.message)
            continue
        with unit_of_work():
            refund = _locked(refund.id)
            if refund.status in R.OPEN:
                refund = _apply_paystack(refund, data)
        if refund.status == R.PROCESSED:
            counts["processed"] += 1
        elif refund.status == R.FAILED:
            counts["failed"] += 1
    return counts


# --- admins ------------------------------------------------------------------------------------------


def retry_refund(paystack, admin, refund_id):
    """Ask Paystack again for a FAILED refund. If the refund Paystack failed has since gone through
    (or is going through), that is adopted instead: never a second refund for one promise."""
    with unit_of_work():
        refund = _locked(refund_id)
        if refund is None:
            raise NotFound("No such refund.")
        if refund.status != R.FAILED:
            raise InvalidTransition(f"Only a failed refund can be retried; this one is {refund.status}.")
        if refund.paystack_refund_id:
            try:
                data = paystack.fetch_refund(refund.paystack_refund_id)
            except PaystackRefused:
                data = {}
            except PaystackError as exc:
                raise UpstreamUnavailable("The payment provider could not be asked about this refund; "
                                          "try again.") from exc
            alive = FROM_PAYSTACK.get(str(data.get("status") or "").lower())
            if alive == R.PROCESSED:
                return _move(refund, R.PROCESSED)
            if alive in R.OPEN:
                refund.status, refund.paystack_status = alive, str(data["status"])[:20]
                refund.failure_reason, refund.updated_at = "", utcnow()
                refund.save()
                record_event(refund.service_request, "refund_retried", admin.id,
                             payload=_details(refund, outcome="Paystack is still processing the first attempt"))
                return refund
        refund.status, refund.paystack_refund_id, refund.paystack_status = R.PENDING, None, ""
        refund.asked_at = refund.submitted_at = None
        refund.updated_at = utcnow()
        refund.save()
        record_event(refund.service_request, "refund_retried", admin.id, payload=_details(refund))
    return submit_refund(paystack, refund.id)


def list_refunds(status=None, service_request_id=None, payment_id=None):
    query = Refund.select()
    if status is not None:
        query = query.where(Refund.status == status)
    if service_request_id is not None:
        query = query.where(Refund.service_request == service_request_id)
    if payment_id is not None:
        query = query.where(Refund.payment == payment_id)
    return query.order_by(Refund.created_at.desc(), Refund.id.desc())
