"""Paying servicemen: payout accounts, the payout ledger, and Paystack transfers exactly once.

A completed request owes its primary serviceman their part of the agreed price, split by the money
rule (`models.money.split_agreed_price`, the only place it is written): the payout row records both
parts, and every other figure (stats, analytics, dashboards, notifications) is read from those rows.

A payout's `transfer_reference` is generated and committed before Paystack is called. Paystack
accepts a reference once, so sending it again after a timeout (an admin approving again, or the
reconciliation job) can never pay twice: a refused duplicate is looked up with `verify` and its
state adopted. The webhook, the answer to the transfer call, `verify` and reconciliation all go
through `process_transfer()`, which locks the payout row, so every outcome is applied once. A
failed or reversed transfer sends the payout back to OWED with a new reference (the attempt stays
in `PayoutTransfer` as history) and tells the serviceman and the admins.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import peewee
from peewee import Case, fn

from models.foundation.clock import utcnow
from models.foundation.errors import Conflict, InvalidTransition, NotFound, UpstreamUnavailable, ValidationFailed
from models.foundation.paystack import PaystackClient, PaystackError, PaystackRefused

from ..base import CENTS
from ..db import database, for_update
from ..money import split_agreed_price
from ..payouts import Payout, PayoutAccount, PayoutStatus, PayoutTransfer
from ..service_requests import ServiceRequest
from ..users import User
from ..workflow import record_event, unit_of_work
from .standing import require_approved

log = logging.getLogger("serviceman.payouts")
P = PayoutStatus
CURRENCY = "NGN"
ZERO = Decimal("0.00")
RECONCILE_BATCH = 200
# Paystack's transfer statuses (https://paystack.com/docs/transfers/single-transfers/#transfer-statuses
# and openapi components/schemas/TransferVerifyResponse.yaml): still moving, waiting for an OTP,
# landed, or given up on (the money is back in our balance).
MOVING = ("pending", "received", "processing", "queued")
AWAITING_OTP = "otp"
GAVE_UP = {"failed": P.FAILED, "abandoned": P.FAILED, "rejected": P.FAILED, "blocked": P.FAILED, "reversed": P.REVERSED}


class Source:
    APPROVE = "approve"
    WEBHOOK = "webhook"
    RECONCILE = "reconcile"


# Where a payout may move (an attempt's outcome FAILED/REVERSED sends it back to OWED under a new
# reference). Checked by `_may_move`/`_move`; no other code changes a payout's status.
MOVES = {
    P.OWED: {P.APPROVED},
    P.APPROVED: {P.AWAITING_OTP, P.IN_TRANSIT, P.PAID, P.OWED},
    P.AWAITING_OTP: {P.IN_TRANSIT, P.PAID, P.OWED},
    P.IN_TRANSIT: {P.PAID, P.OWED},
    P.PAID: {P.OWED},
}  # PAID -> OWED: only a reversal (Paystack took back a transfer that had landed)
# Where one attempt (a PayoutTransfer) may move on Paystack's word: forward only, so a late or replayed
# webhook never moves one back; a landed transfer ends only by a reversal. Checked by `_move_attempt`.
ATTEMPT_MOVES = {
    P.APPROVED: {P.IN_TRANSIT, P.PAID, P.FAILED, P.REVERSED},
    P.IN_TRANSIT: {P.PAID, P.FAILED, P.REVERSED},
    P.PAID: {P.REVERSED},
}


# --- the rule ----------------------------------------------------------------------------------


def _new_reference(request_id: int) -> str:
    # Paystack asks for lowercase letters, digits, '-' and '_' in transfer references.
    return f"smpo-{request_id}-{secrets.token_hex(8)}"


def record_payout(request: ServiceRequest) -> Payout | None:
    """Inside the completing transaction: the primary serviceman is owed their share (once per request)."""
    if request.primary_serviceman_id is None or (request.final_cost is None and request.estimate_amount is None):
        log.warning("request %s completed with no agreed price or serviceman: no payout", request.id)
        return None
    if request.final_cost is None:  # never marked up: the estimate is the whole price
        amount, share = request.estimate_amount, ZERO
    else:
        amount, share = split_agreed_price(request.estimate_amount, request.final_cost)
    try:
        with database.atomic():  # a savepoint: the unique index refuses a second payout for the request
            payout = Payout.create(
                serviceman=request.primary_serviceman_id,
                service_request=request.id,
                amount=amount,
                platform_share=share,
                currency=CURRENCY,
                transfer_reference=_new_reference(request.id),
            )
    except peewee.IntegrityError:
        return Payout.get(Payout.service_request == request.id)
    record_event(request, "payout_owed", None, payload=_details(payout))
    return payout


def _details(payout: Payout, **extra: Any) -> dict[str, Any]:
    return {
        "payout_id": payout.id,
        "serviceman_id": payout.serviceman_id,
        "amount": f"{payout.amount:.2f}",
        "platform_share": f"{payout.platform_share:.2f}",
        "currency": payout.currency,
        "reference": payout.transfer_reference,
        **extra,
    }


# --- banks and the payout account --------------------------------------------------------------

_banks_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # Paystack base URL: (expiry, banks)
_banks_lock = threading.Lock()


def list_banks(paystack: PaystackClient, ttl: float) -> list[dict[str, Any]]:
    """Paystack's Nigerian banks ({name, code}), kept in this process for `ttl` seconds."""
    key = paystack.base_url
    with _banks_lock:
        cached = _banks_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    try:
        data = paystack.list_banks(CURRENCY)
    except PaystackError as exc:
        if cached:  # stale beats nothing: the list rarely changes
            return cached[1]
        raise UpstreamUnavailable("The payment provider's bank list could not be fetched; try again.") from exc
    banks = [
        {"name": str(b.get("name") or "")[:100], "code": str(b.get("code") or "")[:20], "id": b.get("id")}
        for b in data
        if isinstance(b, dict) and b.get("code") and can_receive_transfers(b)
    ]
    with _banks_lock:
        _banks_cache[key] = (time.monotonic() + ttl, banks)
    return banks


def can_receive_transfers(bank: dict[str, Any]) -> bool:
    """Paystack's List Banks (openapi: components/schemas/MiscellaneousListBanksResponseArray.yaml)
    marks each bank `active`, `is_deleted` and `supports_transfer`: only an active, living bank that takes transfers
    will do.
    A bank that does not say is taken at its `active` word (older answers lack the flags)."""
    return (
        bank.get("active", True) is True
        and bank.get("is_deleted", False) is not True
        and bank.get("supports_transfer", True) is True
    )


def clear_bank_cache() -> None:
    with _banks_lock:
        _banks_cache.clear()


def _bank_name(paystack: PaystackClient, ttl: float, bank_code: str) -> str:
    name = next((b["name"] for b in list_banks(paystack, ttl) if b["code"] == bank_code), None)
    if name is None:
        raise ValidationFailed.on("bank_code", "Not a bank Paystack can pay to; see GET /api/banks/.")
    return name


def resolve_account(
    paystack: PaystackClient, ttl: float, serviceman: User, bank_code: str, account_number: str
) -> dict[str, str]:
    """Who holds the account, as the bank says: shown to the serviceman before it is saved. Only an
    approved serviceman may ask (each lookup spends the platform's Paystack quota and names a person)."""
    require_approved(serviceman, "look up bank accounts")
    return _resolve(paystack, ttl, serviceman, bank_code, account_number, "lookup")


def _resolve(
    paystack: PaystackClient, ttl: float, serviceman: User, bank_code: str, account_number: str, purpose: str
) -> dict[str, str]:
    """Paystack's account resolution, each call logged: who, the bank, the account's last four
    digits and the outcome; never the whole number nor the holder's name."""
    outcome = "error"
    try:
        resolved = _ask_paystack(paystack, ttl, bank_code, account_number)
        outcome = "resolved"
        return resolved
    except ValidationFailed as exc:
        outcome = "unknown_bank" if "bank_code" in exc.fields else "not_found"
        raise
    except UpstreamUnavailable:
        outcome = "provider_unavailable"
        raise
    finally:
        log.info(
            "bank account %s by user %s: bank %s, account %s: %s",
            purpose,
            serviceman.id,
            bank_code,
            _masked(account_number),
            outcome,
        )


def _ask_paystack(paystack: PaystackClient, ttl: float, bank_code: str, account_number: str) -> dict[str, str]:
    bank_name = _bank_name(paystack, ttl, bank_code)
    try:
        data = paystack.resolve_account(account_number, bank_code)
    except PaystackRefused as exc:
        raise ValidationFailed.on("account_number", "This account number could not be found at that bank.") from exc
    except PaystackError as exc:
        raise UpstreamUnavailable("The payment provider could not check this account; try again.") from exc
    name = str(data.get("account_name") or "").strip()[:200]
    if not name:
        raise ValidationFailed.on("account_number", "This account number could not be found at that bank.")
    return {
        "bank_code": bank_code,
        "bank_name": bank_name,
        "account_name": name,
        "account_number_masked": _masked(account_number),
    }


def _masked(account_number: str) -> str:
    return f"******{account_number[-4:]}"


def get_payout_account(serviceman: User) -> PayoutAccount:
    account = PayoutAccount.get_or_none(PayoutAccount.serviceman == serviceman.id)
    if account is None:
        raise NotFound("No payout account yet: add one with POST /api/serviceman/payout-account/.")
    return account


def set_payout_account(
    paystack: PaystackClient,
    ttl: float,
    serviceman: User,
    bank_code: str,
    account_number: str,
    account_name: str | None = None,
) -> PayoutAccount:
    """Resolve the account, create its Paystack transfer recipient, and keep only the last four digits.
    `account_name`, when sent, is the name the serviceman confirmed: if the bank now says otherwise,
    nothing is saved (409). Only an approved serviceman may (checked again as it is saved)."""
    require_approved(serviceman, "change your bank account")
    resolved = _resolve(paystack, ttl, serviceman, bank_code, account_number, "save")
    if account_name is not None and account_name.strip().casefold() != resolved["account_name"].casefold():
        raise Conflict(
            f"The bank names this account {resolved['account_name']!r}, not {account_name!r}.",
            code="account_name_mismatch",
        )
    try:
        recipient = paystack.create_recipient(
            name=resolved["account_name"], account_number=account_number, bank_code=bank_code, currency=CURRENCY
        )
    except PaystackRefused as exc:
        raise ValidationFailed.on("account_number", "The payment provider refused this account.") from exc
    except PaystackError as exc:
        raise UpstreamUnavailable("The payment provider could not register this account; try again.") from exc
    code = str(recipient.get("recipient_code") or "")[:64]
    if not code:
        raise UpstreamUnavailable("The payment provider did not register this account; try again.")
    fields = {
        "bank_code": bank_code,
        "bank_name": resolved["bank_name"],
        "account_last4": account_number[-4:],
        "account_name": resolved["account_name"],
        "recipient_code": code,
        "updated_at": utcnow(),
    }
    with database.atomic():
        require_approved(serviceman, "change your bank account")  # not suspended while Paystack answered
        updated = PayoutAccount.update(**fields).where(PayoutAccount.serviceman == serviceman.id).execute()
        if not updated:
            try:
                with database.atomic():
                    PayoutAccount.create(serviceman=serviceman.id, **fields)
            except peewee.IntegrityError:  # a concurrent first save won: this one replaces it
                PayoutAccount.update(**fields).where(PayoutAccount.serviceman == serviceman.id).execute()
    return get_payout_account(serviceman)


# --- the ledger --------------------------------------------------------------------------------


def list_payouts(status: str | None = None, serviceman_id: int | None = None) -> peewee.ModelSelect[Payout]:
    query = Payout.select()
    if status is not None:
        query = query.where(Payout.status == status)
    if serviceman_id is not None:
        query = query.where(Payout.serviceman == serviceman_id)
    return query.order_by(Payout.created_at.desc(), Payout.id.desc())


def serviceman_payouts(serviceman: User, status: str | None = None) -> peewee.ModelSelect[Payout]:
    return list_payouts(status=status, serviceman_id=serviceman.id)


def _money(value: object) -> Decimal:
    return ZERO if value is None else Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP)


def payout_totals(serviceman_id: int | None = None) -> dict[str, Any]:
    """Count and sum of payouts by status (owed, approved, in transit, paid), and the platform's
    margin on the completed jobs behind them: its share of their agreed prices."""

    def when(status: str, value: peewee.ColumnBase | int) -> peewee.ColumnBase:
        return fn.COALESCE(fn.SUM(Case(None, [(Payout.status == status, value)], 0)), 0)

    columns: list[peewee.ColumnBase] = [
        fn.COUNT(Payout.id).alias("jobs"),
        fn.COALESCE(fn.SUM(Payout.amount), 0).alias("servicemen"),
        fn.COALESCE(fn.SUM(Payout.platform_share), 0).alias("margin"),
    ]
    for status in (P.OWED, P.APPROVED, P.IN_TRANSIT, P.PAID):
        columns += [when(status, 1).alias(f"{status}_count"), when(status, Payout.amount).alias(f"{status}_amount")]
    query = Payout.select(*columns)
    if serviceman_id is not None:
        query = query.where(Payout.serviceman == serviceman_id)
    row = cast(dict[str, Any], query.dicts().get())
    servicemen, margin = _money(row["servicemen"]), _money(row["margin"])
    agreed = servicemen + margin
    return {
        "currency": CURRENCY,
        **{
            status.lower(): {"count": int(row[f"{status}_count"]), "amount": _money(row[f"{status}_amount"])}
            for status in (P.OWED, P.APPROVED, P.IN_TRANSIT, P.PAID)
        },
        "completed_jobs": int(row["jobs"]),
        "agreed_prices": agreed,
        "servicemen_share": servicemen,
        "platform_margin": margin,
        "margin_percentage": (margin * 100 / agreed).quantize(CENTS, rounding=ROUND_HALF_UP) if agreed else None,
    }


# --- transfers ---------------------------------------------------------------------------------


def approve_payouts(paystack: PaystackClient, admin: User, payout_ids: Iterable[int]) -> list[Payout]:
    """Each payout becomes a Paystack transfer to its serviceman's account. All are checked before
    any is sent: an unknown id is 404, a payout already in transit or paid 409, a serviceman with no
    payout account 409. An APPROVED payout (its transfer's answer was lost) is sent again with the
    same reference. Returns the payouts as they stand after Paystack answered."""
    ids = list(dict.fromkeys(payout_ids))
    found = {p.id: p for p in Payout.select().where(Payout.id.in_(ids))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No such payout: {', '.join(map(str, missing))}.")
    for payout in found.values():
        _check_approvable(payout)
    references = [_approve(admin, payout_id) for payout_id in ids]
    for reference in references:
        send_transfer(paystack, reference)
    return list(Payout.select().where(Payout.id.in_(ids)).order_by(Payout.id))


def _check_approvable(payout: Payout) -> None:
    if payout.status not in (P.OWED, P.APPROVED):
        raise InvalidTransition(f"Payout {payout.id} is {payout.status}; only OWED payouts can be approved.")
    if not PayoutAccount.select().where(PayoutAccount.serviceman == payout.serviceman_id).exists():
        raise Conflict(f"The serviceman of payout {payout.id} has no payout account yet.", code="no_payout_account")


def _approve(admin: User, payout_id: int) -> str:
    """Commit the attempt (its reference and recipient) before anything is sent; returns the reference."""
    with unit_of_work():
        payout = for_update(Payout.select().where(Payout.id == payout_id)).get()
        _check_approvable(payout)
        account = PayoutAccount.get(PayoutAccount.serviceman == payout.serviceman_id)
        attempt = PayoutTransfer.get_or_none(PayoutTransfer.reference == payout.transfer_reference)
        if attempt is None:
            PayoutTransfer.create(
                payout=payout.id,
                reference=payout.transfer_reference,
                amount=payout.amount,
                recipient_code=account.recipient_code,
            )
        if payout.status == P.OWED:
            now = utcnow()
            _move(payout, P.APPROVED, approved_by=admin.id, approved_at=now, failure_reason="")
            record_event(
                ServiceRequest.get_by_id(payout.service_request_id),
                "payout_approved",
                admin,
                payload=_details(payout, account=f"{account.bank_name} ******{account.account_last4}"),
            )
    return payout.transfer_reference


def send_transfer(paystack: PaystackClient, reference: str, source: str = Source.APPROVE) -> Payout | None:
    """Send (or re-send) one committed attempt and apply Paystack's answer."""
    attempt = PayoutTransfer.get(PayoutTransfer.reference == reference)
    try:
        data = paystack.transfer(
            amount=attempt.amount,
            recipient=attempt.recipient_code,
            reference=reference,
            reason=f"Serviceman payout {attempt.payout_id}",
            currency=CURRENCY,
        )
    except PaystackRefused as exc:
        # Refused: often because Paystack already has this reference (our earlier call's answer was lost).
        try:
            data = paystack.verify_transfer(reference)
        except PaystackRefused:
            data = {"reference": reference, "status": "failed", "gateway_response": f"refused: {exc.message}"}
        except PaystackError as unknown:
            return _note_unanswered(attempt, unknown)
    except PaystackError as exc:
        return _note_unanswered(attempt, exc)
    if data.get("reference") not in (None, reference):
        return _note_unanswered(attempt, PaystackError(f"answered about {data.get('reference')!r}"))
    return process_transfer({**data, "reference": reference}, source)


def _note_unanswered(attempt: PayoutTransfer, exc: PaystackError) -> Payout:
    """Nothing is known: the payout stays APPROVED with its reference, to be re-sent or verified."""
    log.warning("transfer %s unanswered: %s", attempt.reference, exc.message)
    reason = f"Paystack did not answer ({exc.message}); retried with the same reference"[:1000]
    Payout.update(failure_reason=reason, updated_at=utcnow()).where(
        Payout.id == attempt.payout_id, Payout.transfer_reference == attempt.reference
    ).execute()
    return Payout.get_by_id(attempt.payout_id)


def process_transfer(data: Any, source: str, event_status: str | None = None) -> Payout | None:
    """Apply what Paystack says about one of our transfer references, once; returns the payout, or
    None when the reference is not ours. `event_status` is the webhook's word when it names one."""
    reference = data.get("reference") if isinstance(data, dict) else None
    if not isinstance(reference, str):
        return None
    found = PayoutTransfer.get_or_none(PayoutTransfer.reference == reference)
    if found is None:
        return None
    status = str(event_status or data.get("status") or "")[:20]
    with unit_of_work():
        payout = for_update(Payout.select().where(Payout.id == found.payout_id)).get()  # payout first, always
        attempt = PayoutTransfer.get_by_id(found.id)
        attempt.paystack_status = status
        attempt.transfer_code = str(data.get("transfer_code") or attempt.transfer_code)[:64]
        attempt.updated_at = utcnow()
        current = payout.transfer_reference == reference
        if status in MOVING:
            _in_transit(payout, attempt, current)
        elif status == "success":
            _paid(payout, attempt, current, data)
        elif status in GAVE_UP:
            _gave_up(payout, attempt, current, GAVE_UP[status], data)
        elif status == AWAITING_OTP:
            _needs_otp(payout, attempt, current)
        elif status:
            log.error(
                "transfer %s: status %r is not one Paystack documents; payout %s left as it is",
                reference,
                status,
                payout.id,
            )
        attempt.save()
    log.info(
        "transfer %s: %s via %s -> payout %s is %s",
        reference,
        status,
        source,
        payout.id,
        Payout.get_by_id(payout.id).status,
    )
    return Payout.get_by_id(payout.id)


def _may_move(payout: Payout, status: str) -> bool:
    return status in MOVES.get(payout.status, ())


def _move(payout: Payout, status: str, **fields: Any) -> int:
    """The one place a payout's status changes, along MOVES, conditional on the status it was read in."""
    if not _may_move(payout, status):
        raise InvalidTransition(f"Payout {payout.id} cannot move from {payout.status} to {status}.")
    return (
        Payout.update(status=status, updated_at=utcnow(), **fields)
        .where(Payout.id == payout.id, Payout.status == payout.status)
        .execute()
    )


def _move_attempt(attempt: PayoutTransfer, status: str) -> bool:
    """Move an attempt along ATTEMPT_MOVES (saved with the rest of `process_transfer`'s changes);
    False, and nothing changed, when it may not move there."""
    if status not in ATTEMPT_MOVES.get(attempt.status, ()):
        return False
    attempt.status = status
    return True


OTP_HELP = (
    "Paystack holds this transfer until the OTP it sent to the business's phone is entered: enter it "
    "(Finalize), or turn off OTP for transfers in Paystack's dashboard and finalize with the OTP of that "
    "step."
)


def _needs_otp(payout: Payout, attempt: PayoutTransfer, current: bool) -> None:
    attempt.failure_reason = "Paystack asks for an OTP"
    if current and _may_move(payout, P.AWAITING_OTP):
        _move(payout, P.AWAITING_OTP, failure_reason=OTP_HELP)
        record_event(
            _request_of(payout),
            "payout_needs_otp",
            None,
            payload=_details(payout, transfer_code=attempt.transfer_code or ""),
        )


def finalize_transfer(paystack: PaystackClient, admin: User, payout_id: int, otp: str) -> Payout | None:
    """An admin enters the OTP Paystack sent for an AWAITING_OTP payout: `POST /transfer/finalize_transfer`
    (openapi: paths/transfer_finalize_transfer.yaml), and Paystack's answer is applied as any other."""
    payout = Payout.get_or_none(Payout.id == payout_id)
    if payout is None:
        raise NotFound("No such payout.")
    if payout.status != P.AWAITING_OTP:
        raise InvalidTransition(f"Payout {payout.id} is {payout.status}; only AWAITING_OTP payouts take an OTP.")
    attempt = PayoutTransfer.get(PayoutTransfer.reference == payout.transfer_reference)
    try:
        data = paystack.finalize_transfer(attempt.transfer_code, otp)
    except PaystackRefused as exc:
        raise ValidationFailed.on("otp", f"Paystack refused this OTP: {exc.message}") from exc
    except PaystackError as exc:
        raise UpstreamUnavailable("The payment provider could not be asked; try again.") from exc
    log.info("transfer %s finalized with an OTP by admin %s", attempt.reference, admin.id)
    return process_transfer({**data, "reference": attempt.reference}, Source.APPROVE)


def _request_of(payout: Payout) -> ServiceRequest:
    return ServiceRequest.get_by_id(payout.service_request_id)


def _account_label(payout: Payout) -> str:
    account = PayoutAccount.get_or_none(PayoutAccount.serviceman == payout.serviceman_id)
    return f"{account.bank_name} ******{account.account_last4}" if account else "your bank account"


def _in_transit(payout: Payout, attempt: PayoutTransfer, current: bool) -> None:
    _move_attempt(attempt, P.IN_TRANSIT)
    if current and _may_move(payout, P.IN_TRANSIT):
        _move(payout, P.IN_TRANSIT, sent_at=utcnow(), failure_reason="")
        record_event(_request_of(payout), "payout_sent", None, payload=_details(payout, account=_account_label(payout)))


def _paid(payout: Payout, attempt: PayoutTransfer, current: bool, data: dict[str, Any]) -> None:
    if not _move_attempt(attempt, P.PAID):
        if attempt.status != P.PAID:  # money landed on an attempt we had given up on: a person must look
            log.error("transfer %s succeeded after it was %s (payout %s)", attempt.reference, attempt.status, payout.id)
        return
    if not (current and _may_move(payout, P.PAID)):
        return
    now = utcnow()
    _move(payout, P.PAID, paid_at=now, sent_at=payout.sent_at or now, failure_reason="")
    record_event(
        _request_of(payout),
        "payout_paid",
        None,
        payload=_details(payout, account=_account_label(payout), paid_at=now.isoformat()),
    )


def _gave_up(payout: Payout, attempt: PayoutTransfer, current: bool, outcome: str, data: dict[str, Any]) -> None:
    """The attempt ends (FAILED or REVERSED); the payout is owed again, under a new reference."""
    if not _move_attempt(attempt, outcome):
        return
    reason = failure_cause(data, outcome)
    attempt.failure_reason = reason[:1000]
    landed_and_failed = payout.status == P.PAID and outcome != P.REVERSED  # only a reversal undoes a landing
    if not (current and _may_move(payout, P.OWED)) or landed_and_failed:
        return
    word = "reversed" if outcome == P.REVERSED else "failed"
    new_reference = _new_reference(payout.service_request_id)
    _move(
        payout,
        P.OWED,
        transfer_reference=new_reference,
        paid_at=None,
        sent_at=None,
        failure_reason=f"transfer {attempt.reference} {word}: {reason}"[:1000],
    )
    record_event(
        _request_of(payout),
        "payout_failed",
        None,
        payload=_details(
            payout, outcome=word, reason=reason[:300], failed_reference=attempt.reference, reference=new_reference
        ),
    )


def failure_cause(data: dict[str, Any], outcome: str) -> str:
    """Why Paystack gave up on a transfer. Its `reason` is the narration we sent ("Serviceman payout
    7"), not a cause: the cause is `gateway_response` or `failures` (openapi:
    components/schemas/TransferVerifyResponse.yaml), else the event's message, else the status."""
    failures = data.get("failures")
    if isinstance(failures, (list, tuple)):
        failures = "; ".join(
            str(f.get("message") or f.get("reason") or f) if isinstance(f, dict) else str(f) for f in failures if f
        )
    elif isinstance(failures, dict):
        failures = str(failures.get("message") or failures.get("reason") or "")
    for cause in (data.get("gateway_response"), failures, data.get("message")):
        if cause and str(cause).strip():
            return str(cause).strip()
    return f"Paystack reports the transfer {data.get('status') or outcome.lower()}"


def transfer_history(payout_id: int) -> list[PayoutTransfer]:
    if not Payout.select().where(Payout.id == payout_id).exists():
        raise NotFound("No such payout.")
    return list(PayoutTransfer.select().where(PayoutTransfer.payout == payout_id).order_by(PayoutTransfer.id))


# --- reconciliation ----------------------------------------------------------------------------


def reconcile_transfers(paystack: PaystackClient, after: float, now: datetime | None = None) -> dict[str, int]:
    """Payouts APPROVED, AWAITING_OTP or IN_TRANSIT for more than `after` seconds: ask Paystack and apply the
    answer; one Paystack never received (unknown reference) is sent again with the same reference."""
    now = now or utcnow()
    counts = {"checked": 0, "resent": 0, "settled": 0, "unreachable": 0}
    # Read whole before the loop writes: on SQLite a write while a read cursor is open fails.
    stale = list(
        Payout.select()
        .where(
            Payout.status.in_((P.APPROVED, P.AWAITING_OTP, P.IN_TRANSIT)),
            Payout.updated_at <= now - timedelta(seconds=after),
        )
        .order_by(Payout.updated_at)
        .limit(RECONCILE_BATCH)
    )
    for payout in stale:
        counts["checked"] += 1
        reference = payout.transfer_reference
        if not PayoutTransfer.select().where(PayoutTransfer.reference == reference).exists():
            continue
        try:
            data = paystack.verify_transfer(reference)
        except PaystackRefused:
            if payout.status == P.APPROVED:
                counts["resent"] += 1
                send_transfer(paystack, reference, Source.RECONCILE)
            continue
        except PaystackError as exc:
            counts["unreachable"] += 1
            log.warning("reconcile transfers: Paystack unavailable for %s: %s", reference, exc.message)
            continue
        result = process_transfer({**data, "reference": reference}, Source.RECONCILE)
        if result is not None and result.status != payout.status:
            counts["settled"] += 1
    return counts


# Webhook event type -> the function that applies it (data, source); merged into the webhook's table.
TRANSFER_WEBHOOKS = {
    "transfer.success": functools.partial(process_transfer, event_status="success"),
    "transfer.failed": functools.partial(process_transfer, event_status="failed"),
    "transfer.reversed": functools.partial(process_transfer, event_status="reversed"),
}
