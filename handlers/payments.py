"""Payments: initialize a Paystack checkout, Paystack's webhook, verify, list."""

import logging

from models.actions import payments, paystack_events
from models.foundation.errors import NotAuthenticated
from models.foundation.paystack import SIGNATURE_HEADER, signature_is_valid
from models.users import Role

from .base import ANYONE, SIGNED_IN, BaseHandler, endpoint
from .inputs import parse_json
from .schemas.payments import CheckoutSchema, InitializeSchema, PaymentListQuerySchema, PaymentSchema, WebhookAckSchema

log = logging.getLogger("serviceman.payments")
TAGS = ("payments",)
WEBHOOK_BODY_LIMIT = 256 * 1024  # Paystack's events are a few KB; a charge with metadata stays far below


class PaymentHandlerMixin:
    @property
    def paystack(self):
        return self.application.settings["paystack"]


class InitializeHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="initializePayment",
        roles=Role.CLIENT,
        summary="Start paying the booking fee or the final cost",
        body=InitializeSchema,
        response=CheckoutSchema(),
        errors=(401, 403, 404, 409, 422, 502),
        tags=TAGS,
        rate_limit="payment_initialize",
        description="The amount is always the server's: the booking fee while PENDING_PAYMENT, the final "
        "cost while AWAITING_PAYMENT. Asking again returns the same open checkout; if the fee "
        "changed since, the old one is replaced. Another client's request is 404. A client "
        "whose email address is not verified yet gets 403 `email_not_verified`.",
    )
    async def post(self):
        await self.respond(
            await self.run(
                payments.initialize_payment,
                self.config,
                self.paystack,
                self.user,
                self.body["service_request_id"],
                self.body["payment_type"],
            )
        )


class WebhookHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="receivePaystackWebhook",
        roles=ANYONE,
        summary="Paystack's webhook (signed)",
        response=WebhookAckSchema(),
        errors=(400, 401, 413),
        tags=TAGS,
        max_body=WEBHOOK_BODY_LIMIT,
        description="`x-paystack-signature` must be the HMAC-SHA512 of the raw body with the secret key; "
        "otherwise 401 and nothing changes. `charge.success`, `refund.*` (pending, "
        "processing, processed, failed, needs-attention) and `transfer.*` (success, failed, "
        "reversed) are processed exactly once; other events are acknowledged and logged.",
    )
    async def post(self):
        raw = self.raw_body
        if not signature_is_valid(
            raw, self.request.headers.get(SIGNATURE_HEADER, ""), self.config.paystack_webhook_secret
        ):
            log.warning(
                "webhook refused: bad or missing signature (request %s, from %s)",
                self.request_id,
                self.request.remote_ip,
            )
            raise NotAuthenticated("The webhook signature is missing or invalid.", code="invalid_signature")
        await self.run(paystack_events.process_event, self.paystack, parse_json(raw))
        await self.respond({"status": "ok"})


class VerifyHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="verifyPayment",
        roles=(Role.CLIENT, Role.ADMIN),
        summary="Ask Paystack about a payment now",
        response=PaymentSchema(),
        errors=(401, 403, 404, 502),
        tags=TAGS,
        description="The owning client or an admin. Goes through the same exactly-once processing as the "
        "webhook and returns the payment.",
    )
    async def get(self, reference):
        await self.respond(await self.run(payments.verify_payment, self.paystack, self.user, reference))


class PaymentListHandler(BaseHandler):
    @endpoint(
        operation_id="listPayments",
        roles=SIGNED_IN,
        summary="Payments: own, or all for admins",
        query=PaymentListQuerySchema,
        response=PaymentSchema(),
        paginated=True,
        errors=(401, 422),
        tags=TAGS,
        description="Filter by status, payment_type and service_request_id; newest first.",
    )
    async def get(self):
        filters = {k: self.query.get(k) for k in ("status", "payment_type", "service_request_id")}
        await self.respond(payments.list_payments(self.user, **filters))


default_handlers = [
    (r"/api/payments/", PaymentListHandler),
    (r"/api/payments/initialize/", InitializeHandler),
    (r"/api/payments/webhook/", WebhookHandler),
    (r"/api/payments/verify/(?P<reference>[A-Za-z0-9._=-]{1,100})/", VerifyHandler),
]
