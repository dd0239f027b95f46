"""Paying servicemen: banks, the payout account, the payout ledger, approvals and payout analytics."""

from models.actions import payouts
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.common import APPROVED_ONLY
from .schemas.payouts import (
    AdminPayoutListQuerySchema,
    AdminPayoutSchema,
    ApprovePayoutsSchema,
    BankListSchema,
    FinalizeTransferSchema,
    PayoutAccountCreateSchema,
    PayoutAccountSchema,
    PayoutListQuerySchema,
    PayoutResultsSchema,
    PayoutSchema,
    PayoutTotalsSchema,
    ResolvedAccountSchema,
    ResolveQuerySchema,
    TransferListSchema,
)
from .web.idempotent import AFTER

TAGS = ("payouts",)


class PayoutHandler(BaseHandler):
    @property
    def paystack(self):
        return self.application.settings["paystack"]

    @property
    def banks_ttl(self):
        return self.config.paystack_banks_ttl


class BankListHandler(PayoutHandler):
    @endpoint(
        operation_id="getBankList",
        roles=Role.SERVICEMAN,
        summary="Banks a payout account can be in",
        response=BankListSchema(),
        errors=(401, 403, 502),
        tags=TAGS,
        description="Paystack's Nigerian banks, kept for PAYSTACK_BANKS_TTL seconds.",
    )
    async def get(self):
        await self.respond({"results": await self.run(payouts.list_banks, self.paystack, self.banks_ttl)})


class ResolveAccountHandler(PayoutHandler):
    @endpoint(
        operation_id="getResolveAccount",
        roles=Role.SERVICEMAN,
        summary="Who holds an account: the name to confirm before saving it",
        query=ResolveQuerySchema,
        response=ResolvedAccountSchema(),
        errors=(401, 403, 422, 502),
        tags=TAGS,
        rate_limit="bank_lookup",
        description="Asks Paystack's account resolution. Nothing is saved. An unknown bank or an account "
        "the bank does not know is 422. Rate-limited per account and per IP "
        "(`RATE_LIMIT_BANK_LOOKUP`, shared with saving a payout account); every lookup is logged "
        "(who, the bank, the last four digits, the outcome)." + APPROVED_ONLY,
        idempotency=AFTER,
    )
    async def get(self):
        await self.respond(
            await self.run(
                payouts.resolve_account,
                self.paystack,
                self.banks_ttl,
                self.user,
                self.query["bank_code"],
                self.query["account_number"],
            )
        )


class PayoutAccountHandler(PayoutHandler):
    @endpoint(
        operation_id="getPayoutAccount",
        roles=Role.SERVICEMAN,
        summary="The caller's payout account",
        response=PayoutAccountSchema(),
        errors=(401, 403, 404),
        tags=TAGS,
        description="404 until one is added.",
    )
    async def get(self):
        await self.respond(await self.run(payouts.get_payout_account, self.user))

    @endpoint(
        operation_id="postPayoutAccount",
        roles=Role.SERVICEMAN,
        summary="Add or replace the caller's payout account",
        body=PayoutAccountCreateSchema,
        response=PayoutAccountSchema(),
        errors=(400, 401, 403, 409, 422, 502),
        tags=TAGS,
        rate_limit="bank_lookup",
        description="The account is resolved through Paystack (422 if the bank does not know it), a "
        "transfer recipient is created for it, and only the last four digits are stored. "
        "Transfers approved afterwards go to the new account. Rate-limited with the account "
        "lookup (`RATE_LIMIT_BANK_LOOKUP`)." + APPROVED_ONLY,
        idempotency=AFTER,
    )
    async def post(self):
        await self.respond(
            await self.run(
                payouts.set_payout_account,
                self.paystack,
                self.banks_ttl,
                self.user,
                self.body["bank_code"],
                self.body["account_number"],
                self.body.get("account_name"),
            )
        )


class ServicemanPayoutsHandler(BaseHandler):
    @endpoint(
        operation_id="getServicemanPayouts",
        roles=Role.SERVICEMAN,
        summary="The caller's payouts: owed, in transit, paid",
        query=PayoutListQuerySchema,
        response=PayoutSchema(),
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
        description="Newest first; filter with `status`.",
    )
    async def get(self):
        await self.respond(payouts.serviceman_payouts(self.user, self.query.get("status")))


class ServicemanPayoutTotalsHandler(BaseHandler):
    @endpoint(
        operation_id="getServicemanPayoutTotals",
        roles=Role.SERVICEMAN,
        summary="The caller's payout totals by status",
        response=PayoutTotalsSchema(),
        errors=(401, 403),
        tags=TAGS,
        description="Counts and sums of the caller's payouts owed, approved, in transit and paid.",
    )
    async def get(self):
        await self.respond(await self.run(payouts.payout_totals, self.user.id))


class AdminPayoutsHandler(BaseHandler):
    @endpoint(
        operation_id="getAdminPayouts",
        roles=Role.ADMIN,
        summary="Every payout, by status",
        query=AdminPayoutListQuerySchema,
        response=AdminPayoutSchema(),
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
        description="Newest first; filter with `status` and `serviceman_id`.",
    )
    async def get(self):
        await self.respond(payouts.list_payouts(self.query.get("status"), self.query.get("serviceman_id")))


class ApprovePayoutsHandler(PayoutHandler):
    @endpoint(
        operation_id="postApprovePayouts",
        roles=Role.ADMIN,
        summary="Approve payouts: each becomes a Paystack transfer",
        body=ApprovePayoutsSchema,
        response=PayoutResultsSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="All are checked first: an unknown id is 404; a payout in transit or paid, or a "
        "serviceman without a payout account, is 409 and nothing is sent. Each transfer's "
        "reference is stored before Paystack is called, so approving an APPROVED payout again "
        "(its answer was lost) re-sends the same reference and never pays twice. If Paystack "
        "does not answer, the payout stays APPROVED and the reconciliation job retries it.",
        idempotency=AFTER,
    )
    async def post(self):
        results = await self.run(payouts.approve_payouts, self.paystack, self.user, self.body["payout_ids"])
        await self.respond({"results": results})


class FinalizePayoutHandler(PayoutHandler):
    @endpoint(
        operation_id="postFinalizePayout",
        roles=Role.ADMIN,
        summary="Finalize an AWAITING_OTP payout with Paystack's OTP",
        body=FinalizeTransferSchema,
        response=AdminPayoutSchema(),
        errors=(400, 401, 403, 404, 409, 422, 502),
        tags=TAGS,
        description="Paystack holds a transfer in status `otp` while OTP for transfers is on: the OTP it sent "
        "to the business's phone goes to Paystack's finalize_transfer and the payout moves on "
        "(IN_TRANSIT or PAID). 409 unless the payout is AWAITING_OTP; 422 when Paystack refuses "
        "the OTP.",
        idempotency=AFTER,
    )
    async def post(self, payout_id):
        await self.respond(
            await self.run(payouts.finalize_transfer, self.paystack, self.user, int(payout_id), self.body["otp"])
        )


class PayoutTransfersHandler(BaseHandler):
    @endpoint(
        operation_id="getPayoutTransfers",
        roles=Role.ADMIN,
        summary="A payout's transfer attempts",
        response=TransferListSchema(),
        errors=(401, 403, 404),
        tags=TAGS,
        description="Every attempt, failed and reversed ones included, oldest first.",
    )
    async def get(self, payout_id):
        await self.respond({"results": await self.run(payouts.transfer_history, int(payout_id))})


class PayoutAnalyticsHandler(BaseHandler):
    @endpoint(
        operation_id="getPayoutAnalytics",
        roles=Role.ADMIN,
        summary="Payouts owed, in transit and paid; the platform's margin",
        response=PayoutTotalsSchema(),
        errors=(401, 403),
        tags=("analytics",),
        description="Over every payout (one per completed job): counts and sums by status, and the "
        "platform's margin, its share of the jobs' agreed prices.",
    )
    async def get(self):
        await self.respond(await self.run(payouts.payout_totals))


default_handlers = [
    (r"/api/banks/", BankListHandler),
    (r"/api/banks/resolve/", ResolveAccountHandler),
    (r"/api/serviceman/payout-account/", PayoutAccountHandler),
    (r"/api/serviceman/payouts/", ServicemanPayoutsHandler),
    (r"/api/serviceman/payouts/totals/", ServicemanPayoutTotalsHandler),
    (r"/api/admin/payouts/", AdminPayoutsHandler),
    (r"/api/admin/payouts/approve/", ApprovePayoutsHandler),
    (r"/api/admin/payouts/(?P<payout_id>\d+)/transfers/", PayoutTransfersHandler),
    (r"/api/admin/payouts/(?P<payout_id>\d+)/finalize/", FinalizePayoutHandler),
    (r"/api/admin/analytics/payouts/", PayoutAnalyticsHandler),
]
