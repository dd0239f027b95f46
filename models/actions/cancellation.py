"""The cancellation policy: what cancelling a booking now would refund and keep, and why.

Before servicemen are assigned the booking fee is refunded in full. After, a share of it is kept for
their trouble (CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT, default all of it). An admin may
instead refund everything paid (the platform's fault, or no serviceman could be found). Only money
really received counts: verified payments of the request, less what was already refunded of them; a
payment flagged `needs_refund` is given back whole on its own path (models/actions/refunds.py).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from models.foundation.errors import InvalidTransition, PermissionDenied
from models.foundation.naira import format_naira
from models.foundation.settings import Settings

from ..base import CENTS
from ..money import Payment, PaymentStatus, PaymentType
from ..refunds import RefundPolicy
from ..service_requests import RequestStatus, ServiceRequest, can_transition
from ..users import Role, User
from .refunds import refundable_amount

POLICY, FULL_REFUND = "policy", "full_refund"
CHOICES = (POLICY, FULL_REFUND)
ZERO = Decimal("0.00")
S = RequestStatus
# Servicemen are committed to the job in these (cancellable) statuses.
AFTER_ASSIGNMENT = (S.ASSIGNED, S.SERVICEMAN_INSPECTED, S.AWAITING_CLIENT_APPROVAL, S.NEGOTIATING, S.AWAITING_PAYMENT)


@dataclass(frozen=True)
class Share:
    payment: Payment
    refund: Decimal
    kept: Decimal


@dataclass(frozen=True)
class Quote:
    choice: str
    policy: str
    reason: str
    shares: tuple[Share, ...]
    currency: str = "NGN"

    @property
    def refund_amount(self) -> Decimal:
        return sum((s.refund for s in self.shares), ZERO)

    @property
    def kept_amount(self) -> Decimal:
        return sum((s.kept for s in self.shares), ZERO)

    @property
    def paid_amount(self) -> Decimal:
        return self.refund_amount + self.kept_amount

    def as_payload(self) -> dict[str, Any]:
        """What the cancellation event stores (and the timeline shows)."""
        return {
            "refund_choice": self.choice,
            "policy": self.policy,
            "policy_reason": self.reason,
            "paid_amount": str(self.paid_amount),
            "refund_amount": str(self.refund_amount),
            "kept_amount": str(self.kept_amount),
            "currency": self.currency,
        }


def _paid_payments(request_id: int) -> list[Payment]:
    return list(
        Payment.select()
        .where(
            Payment.service_request == request_id,
            Payment.status == PaymentStatus.SUCCESS,
            Payment.needs_refund == False,
        )
        .order_by(Payment.id)
    )


def _percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / 100).quantize(CENTS, rounding=ROUND_HALF_UP)


def check_cancellable(request: ServiceRequest) -> None:
    if request.status == S.CANCELLED:
        raise InvalidTransition("This booking is already cancelled.")
    if not can_transition(request.status, S.CANCELLED):
        raise InvalidTransition("Once the final payment is made a booking can no longer be cancelled.")


def check_choice(user: User, choice: str) -> None:
    if choice == FULL_REFUND and user.role != Role.ADMIN:
        raise PermissionDenied("Only an admin may cancel with a full refund.")


def quote(settings: Settings, request: ServiceRequest, choice: str = POLICY) -> Quote:
    """The Quote for cancelling `request` now; 409 when it can no longer be cancelled."""
    check_cancellable(request)
    paid = [(payment, refundable_amount(payment)) for payment in _paid_payments(request.id)]
    paid = [(payment, remaining) for payment, remaining in paid if remaining > 0]
    total = sum((remaining for _, remaining in paid), ZERO)
    if not paid:
        return Quote(
            choice, RefundPolicy.NOTHING_PAID, "Nothing has been paid for this booking, so nothing is refunded.", ()
        )
    if choice == FULL_REFUND:
        return Quote(
            choice,
            RefundPolicy.FULL_REFUND,
            f"An admin refunds everything paid: {format_naira(total)}.",
            tuple(Share(p, remaining, ZERO) for p, remaining in paid),
        )
    if request.status not in AFTER_ASSIGNMENT:
        return Quote(
            choice,
            RefundPolicy.BEFORE_ASSIGNMENT,
            f"No serviceman has been assigned yet, so the booking fee is refunded in full: {format_naira(total)}.",
            tuple(Share(p, remaining, ZERO) for p, remaining in paid),
        )
    percent = settings.cancellation_fee_kept_percent_after_assignment
    shares = []
    for payment, remaining in paid:
        # Only the booking fee pays for the servicemen's trouble; anything else paid goes back whole.
        keep = (
            min(remaining, _percent_of(payment.amount, percent))
            if payment.payment_type == PaymentType.BOOKING_FEE
            else ZERO
        )
        shares.append(Share(payment, remaining - keep, keep))
    kept = sum((s.kept for s in shares), ZERO)
    return Quote(
        choice,
        RefundPolicy.AFTER_ASSIGNMENT,
        f"Servicemen were already assigned: {percent.normalize():f}% of the booking fee "
        f"({format_naira(kept)}) is kept for their trouble and {format_naira(total - kept)} is refunded.",
        tuple(shares),
    )
