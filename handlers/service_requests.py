"""Booking: quote, create, list, detail, edit, delete, cancel, timeline."""

import functools

from models.actions import booking, timeline
from models.service_requests import ServiceRequest
from models.users import Role

from .base import SIGNED_IN, BaseHandler, endpoint
from .schemas.rows import with_rows
from .schemas.service_requests import (
    CancelSchema,
    EventSchema,
    QuoteQuerySchema,
    QuoteSchema,
    RequestCreateSchema,
    RequestListQuerySchema,
    RequestUpdateSchema,
    RequestWithWarningsSchema,
    ServiceRequestSchema,
)
from .web.idempotent import AFTER

TAGS = ("requests",)
RequestOut = ServiceRequestSchema()
RequestListOut = with_rows(ServiceRequestSchema(), ServiceRequest)


class QuoteHandler(BaseHandler):
    @endpoint(
        operation_id="quoteBooking",
        roles=Role.CLIENT,
        summary="Emergency flag and booking fee for a date, without booking",
        query=QuoteQuerySchema,
        response=QuoteSchema(),
        errors=(401, 403, 422),
        tags=TAGS,
        description="Less than 2 days ahead (platform date in TIME_ZONE) is an emergency: "
        "is_emergency=false is then refused with 422.",
    )
    async def get(self):
        await self.respond(booking.booking_terms(self.config, self.query["booking_date"], self.query["is_emergency"]))


class RequestListHandler(BaseHandler):
    @endpoint(
        operation_id="listServiceRequests",
        roles=SIGNED_IN,
        summary="Requests visible to the caller, newest first",
        query=RequestListQuerySchema,
        response=RequestListOut,
        paginated=True,
        errors=(401, 422),
        tags=TAGS,
        description="Clients see their own, servicemen those they are primary or backup on, admins all.",
    )
    async def get(self):
        filters = {k: self.query.get(k) for k in ("status", "is_emergency")}
        await self.respond(booking.list_requests(self.user, **filters))

    @endpoint(
        operation_id="createServiceRequest",
        roles=Role.CLIENT,
        summary="Book a service (starts PENDING_PAYMENT)",
        body=RequestCreateSchema,
        response=RequestWithWarningsSchema(),
        status=201,
        errors=(400, 401, 403, 422),
        tags=TAGS,
        description="A busy or unavailable preferred serviceman may be booked; `warnings` says so.",
    )
    async def post(self):
        await self.respond(await self.run(booking.create_request, self.config, self.user, **self.body))


class RequestDetailHandler(BaseHandler):
    @endpoint(
        operation_id="getServiceRequest",
        roles=SIGNED_IN,
        summary="One request (owner, assigned serviceman, admin)",
        response=RequestOut,
        errors=(401, 404),
        tags=TAGS,
    )
    async def get(self, request_id):
        await self.respond(await self.run(booking.get_request, self.user, int(request_id)))

    @endpoint(
        operation_id="updateServiceRequest",
        roles=Role.CLIENT,
        summary="Edit an unpaid booking; flag and fee are recomputed",
        body=RequestUpdateSchema,
        response=RequestOut,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
    )
    async def patch(self, request_id):
        await self.respond(await self.run(booking.update_request, self.config, self.user, int(request_id), **self.body))

    @endpoint(
        operation_id="deleteServiceRequest",
        roles=(Role.CLIENT, Role.ADMIN),
        summary="Soft-delete (an unpaid booking is cancelled first)",
        status=204,
        errors=(401, 403, 404, 409),
        tags=TAGS,
    )
    async def delete(self, request_id):
        await self.run(booking.delete_request, self.user, int(request_id))
        await self.respond()


class RequestCancelHandler(BaseHandler):
    @endpoint(
        operation_id="cancelServiceRequest",
        roles=(Role.CLIENT, Role.ADMIN),
        summary="Cancel a booking (refunding what the policy promises)",
        body=CancelSchema,
        response=RequestOut,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="The owning client or an admin, any time before the final payment is made. What is "
        "refunded follows the cancellation policy (GET .../cancellation-quote/ shows it first); "
        "an admin may send `refund: full_refund` instead (a client doing so is 403). The rule "
        "and the amounts are stored on the `request_cancelled` event; the refund is asked of "
        "Paystack at once and the client is told when it starts and when it lands.",
        idempotency=AFTER,
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(
                booking.cancel_request,
                self.config,
                self.user,
                int(request_id),
                self.body["reason"],
                self.body["refund"],
                self.application.settings["paystack"],
            )
        )


class RequestEventsHandler(BaseHandler):
    @endpoint(
        operation_id="listServiceRequestEvents",
        roles=SIGNED_IN,
        summary="The request's timeline: every change, who, when",
        response=EventSchema(),
        paginated=True,
        errors=(401, 404, 422),
        tags=TAGS,
    )
    async def get(self, request_id):
        events = await self.run(booking.request_events, self.user, int(request_id))
        await self.respond(events, transform=functools.partial(timeline.as_seen_by, self.user))


default_handlers = [
    (r"/api/requests/quote/", QuoteHandler),
    (r"/api/requests/", RequestListHandler),
    (r"/api/requests/(?P<request_id>\d+)/", RequestDetailHandler),
    (r"/api/requests/(?P<request_id>\d+)/cancel/", RequestCancelHandler),
    (r"/api/requests/(?P<request_id>\d+)/events/", RequestEventsHandler),
]
