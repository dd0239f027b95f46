"""Pricing: the serviceman's estimate, the admin's markup, approving the cost, negotiation."""

from models.actions import pricing
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.common import APPROVED_ONLY
from .schemas.pricing import (
    ConsultationReplySchema,
    ConsultationSchema,
    CostApprovalSchema,
    EstimateSubmitSchema,
    MarkupSchema,
    NegotiationSchema,
    ProposalSchema,
)
from .schemas.service_requests import EventSchema, ServiceRequestSchema

TAGS = ("pricing",)
RequestOut = ServiceRequestSchema()
NegotiationOut = NegotiationSchema()
PARTIES = (Role.CLIENT, Role.ADMIN)
ANSWER_DESCRIPTION = (
    "Only the other party of a PENDING proposal answers it: an admin a client's proposal, the "
    "owning client an admin's. Answering one's own side's proposal is 403; a proposal that is no "
    "longer PENDING (someone answered first) is 409; another client's is 404."
)


class EstimateSubmitHandler(BaseHandler):
    @endpoint(
        operation_id="submitEstimate",
        roles=Role.SERVICEMAN,
        summary="Submit the inspection estimate (ASSIGNED → SERVICEMAN_INSPECTED)",
        body=EstimateSubmitSchema,
        response=RequestOut,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="The primary serviceman only. The backup, who sees the request, is refused with 403; "
        "a serviceman not assigned to it gets 404. Admins are notified (`estimate_submitted`)." + APPROVED_ONLY,
    )
    async def post(self):
        body = self.body
        await self.respond(
            await self.run(
                pricing.submit_estimate, self.user, body["service_request_id"], body["amount"], body["notes"]
            )
        )


class MarkupHandler(BaseHandler):
    @endpoint(
        operation_id="setMarkup",
        roles=Role.ADMIN,
        summary="Set the markup, hence the final cost (→ AWAITING_CLIENT_APPROVAL)",
        body=MarkupSchema,
        response=RequestOut,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="final_cost = estimate × (1 + markup_percentage/100), rounded half up to the kobo. "
        "From SERVICEMAN_INSPECTED; again while AWAITING_CLIENT_APPROVAL (the status stays). "
        "The client is notified (`final_cost_set`) with the breakdown.",
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(pricing.set_markup, self.user, int(request_id), self.body["markup_percentage"])
        )


class CostApprovalHandler(BaseHandler):
    @endpoint(
        operation_id="approveCost",
        roles=Role.CLIENT,
        summary="Accept the final cost (→ AWAITING_PAYMENT)",
        body=CostApprovalSchema,
        response=RequestOut,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="The owning client, while AWAITING_CLIENT_APPROVAL, or while NEGOTIATING with no "
        "proposal pending (after a rejection). Admins are notified (`cost_approved`).",
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(pricing.approve_cost, self.user, int(request_id), self.body.get("final_cost"))
        )


class NegotiationListHandler(BaseHandler):
    @endpoint(
        operation_id="listNegotiations",
        roles=PARTIES,
        summary="The request's price proposals, oldest first",
        response=NegotiationOut,
        paginated=True,
        errors=(401, 403, 404, 422),
        tags=TAGS,
    )
    async def get(self, request_id):
        await self.respond(await self.run(pricing.negotiation_history, self.user, int(request_id)))

    @endpoint(
        operation_id="proposePrice",
        roles=PARTIES,
        summary="Propose a price (→ NEGOTIATING)",
        body=ProposalSchema,
        response=NegotiationOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="One proposal may be PENDING at a time (another is 409). The client proposes while "
        "AWAITING_CLIENT_APPROVAL or NEGOTIATING; an admin only while NEGOTIATING (after a "
        "rejection). The other party is notified (`negotiation_message`).",
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(
                pricing.propose_price, self.user, int(request_id), self.body["proposed_amount"], self.body["message"]
            )
        )


class NegotiationAcceptHandler(BaseHandler):
    @endpoint(
        operation_id="acceptNegotiation",
        roles=PARTIES,
        summary="Accept a proposal: its amount becomes the final cost (→ AWAITING_PAYMENT)",
        response=NegotiationOut,
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description=ANSWER_DESCRIPTION,
    )
    async def post(self, negotiation_id):
        await self.respond(await self.run(pricing.accept_proposal, self.user, int(negotiation_id)))


class NegotiationRejectHandler(BaseHandler):
    @endpoint(
        operation_id="rejectNegotiation",
        roles=PARTIES,
        summary="Reject a proposal (the request stays NEGOTIATING)",
        response=NegotiationOut,
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description=ANSWER_DESCRIPTION,
    )
    async def post(self, negotiation_id):
        await self.respond(await self.run(pricing.reject_proposal, self.user, int(negotiation_id)))


class NegotiationCounterHandler(BaseHandler):
    @endpoint(
        operation_id="counterNegotiation",
        roles=PARTIES,
        summary="Counter a proposal with another amount",
        body=ProposalSchema,
        response=NegotiationOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description=ANSWER_DESCRIPTION + " The countered proposal becomes COUNTERED; the answer is the new "
        "PENDING one.",
    )
    async def post(self, negotiation_id):
        await self.respond(
            await self.run(
                pricing.counter_proposal,
                self.user,
                int(negotiation_id),
                self.body["proposed_amount"],
                self.body["message"],
            )
        )


class ConsultServicemanHandler(BaseHandler):
    @endpoint(
        operation_id="consultServiceman",
        roles=Role.ADMIN,
        summary="Ask the primary serviceman whether the offer on the table is acceptable",
        body=ConsultationSchema,
        response=EventSchema(),
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="While NEGOTIATING. Answers the timeline event; the primary serviceman is "
        "notified (`serviceman_consulted`).",
    )
    async def post(self, request_id):
        await self.respond(await self.run(pricing.consult_serviceman, self.user, int(request_id), self.body["message"]))


class ConsultationReplyHandler(BaseHandler):
    @endpoint(
        operation_id="replyToConsultation",
        roles=Role.SERVICEMAN,
        summary="Answer an admin's consultation",
        body=ConsultationReplySchema,
        response=EventSchema(),
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="The primary serviceman, while NEGOTIATING and after being consulted (409 otherwise); "
        "the backup is 403. Admins are notified (`consultation_replied`)." + APPROVED_ONLY,
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(
                pricing.reply_to_consultation, self.user, int(request_id), self.body["acceptable"], self.body["message"]
            )
        )


default_handlers = [
    (r"/api/serviceman/submit-estimate/", EstimateSubmitHandler),
    (r"/api/admin/requests/(?P<request_id>\d+)/markup/", MarkupHandler),
    (r"/api/requests/(?P<request_id>\d+)/approve-cost/", CostApprovalHandler),
    (r"/api/requests/(?P<request_id>\d+)/negotiations/", NegotiationListHandler),
    (r"/api/negotiations/(?P<negotiation_id>\d+)/accept/", NegotiationAcceptHandler),
    (r"/api/negotiations/(?P<negotiation_id>\d+)/reject/", NegotiationRejectHandler),
    (r"/api/negotiations/(?P<negotiation_id>\d+)/counter/", NegotiationCounterHandler),
    (r"/api/admin/requests/(?P<request_id>\d+)/consult-serviceman/", ConsultServicemanHandler),
    (r"/api/serviceman/requests/(?P<request_id>\d+)/consultation-reply/", ConsultationReplyHandler),
]
