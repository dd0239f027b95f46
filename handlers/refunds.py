"""Refunds: the cancellation quote, and the admins' refunds (list, manual refund, retry)."""

from models.actions import booking, payouts, refunds
from models.users import Role

from .base import BaseHandler, endpoint
from .payments import PaymentHandlerMixin
from .schemas.refunds import (
    CancellationQuoteQuerySchema,
    CancellationQuoteSchema,
    CustomerDetailsSchema,
    ManualRefundSchema,
    RefundListQuerySchema,
    RefundSchema,
)
from .web.idempotent import AFTER

TAGS = ("refunds",)
RefundOut = RefundSchema()


class CancellationQuoteHandler(BaseHandler):
    @endpoint(
        operation_id="getCancellationQuote",
        roles=(Role.CLIENT, Role.ADMIN),
        summary="What cancelling now would refund and keep, and why",
        query=CancellationQuoteQuerySchema,
        response=CancellationQuoteSchema(),
        errors=(401, 403, 404, 409, 422),
        tags=TAGS,
        description="The owning client or an admin. Before assignment the booking fee is refunded in full; "
        "after, CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT of it is kept. Admins may ask "
        "`?refund=full_refund`. 409 once the booking can no longer be cancelled.",
    )
    async def get(self, request_id):
        await self.respond(
            await self.run(booking.cancellation_quote, self.config, self.user, int(request_id), self.query["refund"])
        )


class RefundListHandler(BaseHandler):
    @endpoint(
        operation_id="getRefundList",
        roles=Role.ADMIN,
        summary="Refunds, newest first",
        query=RefundListQuerySchema,
        response=RefundOut,
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
        description="Filter by status (FAILED ones need a retry), service_request_id and payment_id.",
    )
    async def get(self):
        filters = {k: self.query.get(k) for k in ("status", "service_request_id", "payment_id")}
        await self.respond(refunds.list_refunds(**filters))


class ManualRefundHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="postManualRefund",
        roles=Role.ADMIN,
        summary="Refund a verified payment, in full or in part",
        body=ManualRefundSchema,
        response=RefundOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="Without `amount`, all that is left of the payment. A payment's refunds never add up to "
        "more than was paid (422 on `amount`; 409 `already_refunded` when nothing is left); "
        "only a SUCCESS payment can be refunded (409). Paystack is asked at once; if it cannot "
        "be reached the refund stays PENDING and the reconciliation job asks again.",
        idempotency=AFTER,
    )
    async def post(self, payment_id):
        await self.respond(
            await self.run(
                refunds.refund_payment,
                self.paystack,
                self.user,
                int(payment_id),
                self.body["reason"],
                self.body["amount"],
            )
        )


class RefundRetryHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="postRefundRetry",
        roles=Role.ADMIN,
        summary="Ask Paystack again for a failed refund",
        response=RefundOut,
        errors=(401, 403, 404, 409, 502),
        tags=TAGS,
        description="FAILED refunds only (409 otherwise). If the refund Paystack reported failed has since "
        "gone through, it is adopted instead of asking for a second one.",
        idempotency=AFTER,
    )
    async def post(self, refund_id):
        await self.respond(await self.run(refunds.retry_refund, self.paystack, self.user, int(refund_id)))


class RefundCustomerDetailsHandler(PaymentHandlerMixin, BaseHandler):
    @endpoint(
        operation_id="postRefundCustomerDetails",
        roles=Role.ADMIN,
        summary="Retry a refund with the customer's bank account",
        body=CustomerDetailsSchema,
        response=RefundOut,
        errors=(400, 401, 403, 404, 409, 422, 502),
        tags=TAGS,
        description="For a NEEDS_BANK refund (Paystack's `needs-attention`: it could not return the money "
        "on its own). The account goes to Paystack's retry_with_customer_details and is never "
        "stored; the refund moves to PROCESSING. 409 for a refund in any other status.",
        idempotency=AFTER,
    )
    async def post(self, refund_id):
        banks = await self.run(payouts.list_banks, self.paystack, self.config.paystack_banks_ttl)
        await self.respond(
            await self.run(
                refunds.retry_with_customer_details,
                self.paystack,
                banks,
                self.user,
                int(refund_id),
                self.body["bank_code"],
                self.body["account_number"],
            )
        )


default_handlers = [
    (r"/api/requests/(?P<request_id>\d+)/cancellation-quote/", CancellationQuoteHandler),
    (r"/api/admin/refunds/", RefundListHandler),
    (r"/api/admin/payments/(?P<payment_id>\d+)/refund/", ManualRefundHandler),
    (r"/api/admin/refunds/(?P<refund_id>\d+)/retry/", RefundRetryHandler),
    (r"/api/admin/refunds/(?P<refund_id>\d+)/customer-details/", RefundCustomerDetailsHandler),
]
