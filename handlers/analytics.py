"""Admin analytics: revenue, top servicemen, top categories, requests by status."""

from models.actions import analytics
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.analytics import (
    RequestStatsSchema,
    RevenueQuerySchema,
    RevenueSchema,
    TopCategoriesQuerySchema,
    TopCategoriesSchema,
    TopServicemenQuerySchema,
    TopServicemenSchema,
)

TAGS = ("analytics",)


class RevenueHandler(BaseHandler):
    @endpoint(
        operation_id="getRevenue",
        roles=Role.ADMIN,
        summary="Where the money went: gross, refunds, Paystack fees, serviceman shares, platform net, by month",
        query=RevenueQuerySchema,
        response=RevenueSchema(),
        errors=(401, 403, 422),
        tags=TAGS,
        description="Counts payments that succeeded and are not flagged for refund (money to be given "
        "back is not revenue), and the refunds of them. To the kobo, in all and in each month: "
        "`gross` - `refunds` = `serviceman_shares` + `held` + `paystack_fees` + `platform_net`. "
        "Serviceman shares and markup are read from the payout ledger (the money rule split each "
        "confirmed job's final payment). `from` and `to` are inclusive UTC dates of `paid_at` "
        "(of a refund: when it was opened); months are UTC months. `from` after `to` is 422.",
    )
    async def get(self):
        await self.respond(await self.run(analytics.revenue, self.query["date_from"], self.query["date_to"]))


class TopServicemenHandler(BaseHandler):
    @endpoint(
        operation_id="listTopServicemen",
        roles=Role.ADMIN,
        summary="Approved servicemen by rating or by jobs completed",
        query=TopServicemenQuerySchema,
        response=TopServicemenSchema(),
        errors=(401, 403, 422),
        tags=TAGS,
        description="by=rating: rating, then rating count, among those with at least `min_ratings` "
        "ratings; by=jobs: jobs completed. Remaining ties by id.",
    )
    async def get(self):
        await self.respond(await self.run(analytics.top_servicemen, **self.query))


class TopCategoriesHandler(BaseHandler):
    @endpoint(
        operation_id="listTopCategories",
        roles=Role.ADMIN,
        summary="Most requested categories",
        query=TopCategoriesQuerySchema,
        response=TopCategoriesSchema(),
        errors=(401, 403, 422),
        tags=TAGS,
        description="Requests made in each category, cancelled ones included (they show demand), "
        "deleted ones not; categories without requests are not listed. Ties by id.",
    )
    async def get(self):
        await self.respond(await self.run(analytics.top_categories, **self.query))


class RequestStatsHandler(BaseHandler):
    @endpoint(
        operation_id="getRequestStats",
        roles=Role.ADMIN,
        summary="Requests by status and the average time from payment to assignment",
        response=RequestStatsSchema(),
        errors=(401, 403),
        tags=TAGS,
        description="Deleted requests are left out. The average runs from each request's "
        "payment_received event to its first serviceman_assigned event.",
    )
    async def get(self):
        await self.respond(await self.run(analytics.request_stats))


default_handlers = [
    (r"/api/admin/analytics/revenue/", RevenueHandler),
    (r"/api/admin/analytics/top-servicemen/", TopServicemenHandler),
    (r"/api/admin/analytics/top-categories/", TopCategoriesHandler),
    (r"/api/admin/analytics/requests/", RequestStatsHandler),
]
