"""Paystack's signed webhook events, dispatched to the action that applies each: a charge, a refund,
a transfer. The web layer checks the signature and hands over the parsed event; every action is
idempotent, since Paystack retries until it gets a 200 and a replay must change nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from models.foundation.paystack import PaystackClient

from ..money import PaymentSource
from . import payments, payouts, refunds

log = logging.getLogger("serviceman.payments")


def _charge_success(paystack: PaystackClient, kind: str, data: dict[str, Any]) -> None:
    if payments.settle_charge(paystack, data, PaymentSource.WEBHOOK) is None:
        log.warning("webhook charge.success for a reference that is not ours")


def _refund_event(paystack: PaystackClient, kind: str, data: dict[str, Any]) -> None:
    refunds.process_refund_event(kind, data, paystack)


def _transfer_event(
    apply: Callable[[dict[str, Any], str], object], paystack: PaystackClient, kind: str, data: dict[str, Any]
) -> None:
    if apply(data, PaymentSource.WEBHOOK) is None:
        log.warning("webhook %s for a transfer reference that is not ours", kind)


# Paystack's event -> what processes it, `fn(paystack, event, data)`.
EVENTS: dict[str, Callable[[PaystackClient, str, dict[str, Any]], None]] = {
    "charge.success": _charge_success,
    "refund.pending": _refund_event,
    "refund.processing": _refund_event,
    "refund.processed": _refund_event,
    "refund.failed": _refund_event,
    "refund.needs-attention": _refund_event,
    **{
        kind: functools.partial(_transfer_event, apply)  # transfer.success|failed|reversed
        for kind, apply in payouts.TRANSFER_WEBHOOKS.items()
    },
}


def process_event(paystack: PaystackClient, event: object) -> None:
    """Apply one verified webhook event (the parsed JSON body); an event we do not act on is only
    logged, so Paystack still gets its 200."""
    if not isinstance(event, dict):
        log.info("webhook without an event acknowledged, nothing to do")
        return
    kind = event.get("event")
    action = EVENTS.get(kind) if isinstance(kind, str) else None
    if action is None or not isinstance(kind, str):
        log.info("webhook %r acknowledged, nothing to do", kind)
        return
    data = event.get("data")
    action(paystack, kind, data if isinstance(data, dict) else {})
