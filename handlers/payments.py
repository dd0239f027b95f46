"""Payments: initialize a Paystack checkout, Paystack's webhook, verify, list."""
import logging

from models.actions import payments, payouts, refunds
from models.money import PaymentSource
from models.users import Role
from models.foundation.errors import NotAuthenticated
from models.foundation.paystack import SIGNATURE_HEADER, signature_is_valid

from .base import ANYONE, SIGNED_IN, BaseHandler, endpoint
from .inputs import parse_json
from .schemas.payments import (CheckoutSchema, InitializeSchema, PaymentListQuerySchema, PaymentSchema,
                               WebhookAckSchema)

log = logging.getLogger("serviceman.payments")
TAGS = ("payments",)
WEBHOOK_BODY_LIMIT = 256 * 1024  # Paystack's events are a few KB; a charge with metadata stays far below


class PaymentHandlerMixin:
    @property
    def paystack(self):
        return self.application.settings["paystack"]


class InitializeHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(roles=Role.CLIENT, summary="Start paying the booking fee or the final cost", body=InitializeSchema,
              response=CheckoutSchema(), errors=(401, 403, 404, 409, 422, 502), tags=TAGS,
              rate_limit="payment_initialize",
              description="The amount is always the server's: the booking fee while PENDING_PAYMENT, the final "
                          "cost while AWAITING_PAYMENT. Asking again returns the same open checkout; if the fee "
                          "changed since, the old one is replaced. Another client's request is 404. A client "
                          "whose email address is not verified yet gets 403 `email_not_verified`.")
    async def post(self):
        await self.respond(await self.run(payments.initialize_payment, self.config, self.paystack, self.user,
                                          self.body["service_request_id"], self.body["payment_type"]))


class WebhookHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(roles=ANYONE, summary="Paystack's webhook (signed)", response=WebhookAckSchema(),
              errors=(400, 401, 413), tags=TAGS, max_body=WEBHOOK_BODY_LIMIT,
              description="`x-paystack-signature` must be the HMAC-SHA512 of the raw body with the secret key; "
                          "otherwise 401 and nothing changes. `charge.success`, `refund.*` (pending, "
                          "processing, processed, failed, needs-attention) and `transfer.*` (success, failed, "
                          "reversed) are processed exactly once; other events are acknowledged and logged.")
    async def post(self):
        raw = self.raw_body
        if not signature_is_valid(raw, self.request.headers.get(SIGNATURE_HEADER, ""),
                                  self.config.paystack_webhook_secret):
            log.warning("webhook refused: bad or missing signature (request %s, from %s)",
                        self.request_id, self.request.remote_ip)
            raise NotAuthenticated("The webhook signature is missing or invalid.", code="invalid_signature")
        event = parse_json(raw)
        kind = event.get("event") if isinstance(event, dict) else None
        action = WEBHOOK_EVENTS.get(kind) if isinstance(kind, str) else None
        if action is None:
            log.info("webhook %r acknowledged, nothing to do", kind)
        else:
            data = event.get("data")
            await self.run(action, self.paystack, kind, data if isinstance(data, dict) else {})
        await self.respond({"status": "ok"})


def _charge_success(paystack, kind, data):
    payment = payments.process_charge(data, PaymentSource.WEBHOOK)
    if payment is None:
        log.warning("webhook charge.success for a reference that is not ours")
    elif payment.needs_refund:
        refunds.submit_unsubmitted(paystack, payment.id)  # money the booking cannot use goes back at once


def _refund_event(paystack, kind, data):
    refunds.process_refund_event(kind, data, paystack)


def _transfer_event(paystack, kind, data):
    if payouts.TRANSFER_WEBHOOKS[kind](data, PaymentSource.WEBHOOK) is None:
        log.warning("webhook %s for a transfer reference that is not ours", kind)


# Paystack's event -> what processes it, `fn(paystack, event, data)` on the thread pool. Every one is
# idempotent: Paystack retries until it gets a 200, and replays change nothing.
WEBHOOK_EVENTS = {
    "charge.success": _charge_success,
    "refund.pending": _refund_event,
    "refund.processing": _refund_event,
    "refund.processed": _refund_event,
    "refund.failed": _refund_event,
    "refund.needs-attention": _refund_event,
    **{kind: _transfer_event for kind in payouts.TRANSFER_WEBHOOKS},  # transfer.success|failed|reversed
}


class VerifyHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(roles=(Role.CLIENT, Role.ADMIN), summary="Ask Paystack about a payment now", response=PaymentSchema(),
              errors=(401, 403, 404, 502), tags=TAGS,
              description="The owning client or an admin. Goes through the same exactly-once processing as the "
                          "webhook and returns the payment.")
    async def get(self, reference):
        await self.respond(await self.run(payments.verify_payment, self.paystack, self.user, reference))


class PaymentListHandler(BaseHandler):
    @endpoint(roles=SIGNED_IN, summary="Payments: own, or all for admins", query=PaymentListQuerySchema,
              response=PaymentSchema(), paginated=True, errors=(401, 422), tags=TAGS,
              description="Filter by status, payment_type and service_request_id; newest first.")
    async def get(self):
        filters = {k: self.query.get(k) for k in ("status", "payment_type", "service_request_id")}
        await self.respond(payments.list_payments(self.user, **filters))


default_handlers = [
    (r"/api/payments/", PaymentListHandler),
    (r"/api/payments/initialize/", InitializeHandler),
    (r"/api/payments/webhook/", WebhookHandler),
    (r"/api/payments/verify/(?P<reference>[A-Za-z0-9._=-]{1,100})/", VerifyHandler),
]
