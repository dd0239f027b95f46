"""Assignment: the admins' queue of paid bookings, assigning servicemen, and servicemen dropping out."""

from models.actions import assignment
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.assignment import AssignSchema, DeclineSchema, ReassignSchema, UnassignedRequestSchema
from .schemas.common import APPROVED_ONLY
from .schemas.service_requests import RequestWithWarningsSchema, ServiceRequestSchema

TAGS = ("assignment",)
CHECKS = (
    "Primary and backup must be different, approved, active servicemen offering the request's category "
    "(another category only with `confirm_outside_category: true`); a busy or unavailable one is "
    "accepted with a `warnings` entry."
)


class UnassignedRequestsHandler(BaseHandler):
    @endpoint(
        operation_id="listUnassignedRequests",
        roles=Role.ADMIN,
        summary="Paid bookings waiting for servicemen: emergencies first, then oldest",
        response=UnassignedRequestSchema(),
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
        description="Each with its client's contact, the preferred serviceman's availability and load, "
        "the category, and how long it has waited since the booking fee was paid.",
    )
    async def get(self):
        await self.respond(assignment.unassigned_requests(self.user), transform=assignment.queue_details)


class AssignHandler(BaseHandler):
    @endpoint(
        operation_id="assignServicemen",
        roles=Role.ADMIN,
        summary="Assign a primary and a backup serviceman (-> ASSIGNED)",
        body=AssignSchema,
        response=RequestWithWarningsSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description=CHECKS + " Only while PENDING_ADMIN_ASSIGNMENT; both servicemen are notified.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(assignment.assign_servicemen, self.user, int(request_id), **self.body))


class PromoteBackupHandler(BaseHandler):
    @endpoint(
        operation_id="promoteBackup",
        roles=Role.ADMIN,
        summary="Make the backup the primary; the old primary is removed",
        response=ServiceRequestSchema(),
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description="Only while ASSIGNED and with a backup; the job is then left without a backup.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(assignment.promote_backup, self.user, int(request_id)))


class ReassignHandler(BaseHandler):
    @endpoint(
        operation_id="reassignServicemen",
        roles=Role.ADMIN,
        summary="Replace the primary, the backup or both",
        body=ReassignSchema,
        response=RequestWithWarningsSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description=CHECKS + " Only while ASSIGNED; whoever is removed and whoever is placed are notified.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(assignment.reassign, self.user, int(request_id), **self.body))


class DeclineHandler(BaseHandler):
    @endpoint(
        operation_id="declineJob",
        roles=Role.SERVICEMAN,
        summary="Decline a job assigned to you, before inspecting it",
        body=DeclineSchema,
        response=ServiceRequestSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="Only while ASSIGNED. A declining primary is replaced by the backup at once; the "
        "admins are asked to name a new backup. Answers the request as it now stands. "
        "Not your job: 404." + APPROVED_ONLY,
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(assignment.decline_assignment, self.user, int(request_id), self.body["reason"])
        )


ADMIN_REQUEST = r"/api/admin/requests/(?P<request_id>\d+)"
default_handlers = [
    (r"/api/admin/requests/unassigned/", UnassignedRequestsHandler),
    (ADMIN_REQUEST + r"/assign/", AssignHandler),
    (ADMIN_REQUEST + r"/promote-backup/", PromoteBackupHandler),
    (ADMIN_REQUEST + r"/reassign/", ReassignHandler),
    (r"/api/serviceman/requests/(?P<request_id>\d+)/decline/", DeclineHandler),
]
