"""Admin: vetting servicemen, managing users, emergency override."""

from models.actions import accounts, booking, catalog
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.accounts import (
    AdminCreateSchema,
    ApprovalStatusQuerySchema,
    ApproveSchema,
    ReasonSchema,
    ServicemanApplicationSchema,
    UserSchema,
)
from .schemas.service_requests import EmergencySchema, ServiceRequestSchema
from .web.idempotent import AFTER

TAGS = ("admin",)


def _application(profiles):
    cards = catalog.serviceman_cards(profiles)
    for card, profile in zip(cards, profiles, strict=True):
        card.update(
            email=profile.user.email,
            phone=profile.user.phone,
            approval_status=profile.approval_status,
            status_reason=profile.status_reason,
        )
    return cards


class ServicemanApplicationsHandler(BaseHandler):
    @endpoint(
        operation_id="listServicemanApplications",
        roles=Role.ADMIN,
        summary="Serviceman applications and servicemen by approval status",
        query=ApprovalStatusQuerySchema,
        response=ServicemanApplicationSchema(),
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
    )
    async def get(self):
        query = await self.run(catalog.servicemen_by_status, self.query.get("status"))
        await self.respond(query, transform=_application)


class ServicemanApproveHandler(BaseHandler):
    @endpoint(
        operation_id="approveServiceman",
        roles=Role.ADMIN,
        summary="Approve a serviceman (optionally fixing their categories)",
        body=ApproveSchema,
        response=ServicemanApplicationSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
    )
    async def post(self, serviceman_id):
        await self.respond(
            await self.run(
                _set_approval,
                self.transport,
                self.user,
                int(serviceman_id),
                "approve",
                category_ids=self.body.get("category_ids"),
            )
        )


class ServicemanWithReasonHandler(BaseHandler):
    """reject and suspend: the route says which."""

    def initialize(self, action):
        self.action = action

    @endpoint(
        operation_id="{action}Serviceman",
        roles=Role.ADMIN,
        summary="Reject an application or suspend a serviceman, with a reason",
        body=ReasonSchema,
        response=ServicemanApplicationSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        idempotency=AFTER,
    )
    async def post(self, serviceman_id):
        await self.respond(
            await self.run(
                _set_approval, self.transport, self.user, int(serviceman_id), self.action, self.body["reason"]
            )
        )


class ServicemanReinstateHandler(BaseHandler):
    @endpoint(
        operation_id="reinstateServiceman",
        roles=Role.ADMIN,
        summary="Reinstate a suspended serviceman",
        response=ServicemanApplicationSchema(),
        errors=(401, 403, 404, 409),
        tags=TAGS,
    )
    async def post(self, serviceman_id):
        await self.respond(await self.run(_set_approval, self.transport, self.user, int(serviceman_id), "reinstate"))


def _set_approval(transport, actor, serviceman_id, action, reason="", category_ids=None):
    return _application([accounts.set_approval(transport, serviceman_id, action, reason, category_ids, actor=actor)])[0]


class AdminUserCreateHandler(BaseHandler):
    @endpoint(
        operation_id="createAdmin",
        roles=Role.ADMIN,
        summary="Create another admin",
        body=AdminCreateSchema,
        response=UserSchema(),
        status=201,
        errors=(400, 401, 403, 422),
        tags=TAGS,
    )
    async def post(self):
        await self.respond(await self.run(accounts.create_admin, self.config, **self.body))


class AdminUserDeactivateHandler(BaseHandler):
    @endpoint(
        operation_id="deactivateUser",
        roles=Role.ADMIN,
        summary="Deactivate a user (every session of theirs ends at once)",
        response=UserSchema(),
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description="409 `cannot_deactivate_self` for one's own account; 409 `last_admin` for the last active admin.",
        idempotency=AFTER,
    )
    async def post(self, user_id):
        await self.respond(await self.run(accounts.deactivate_user, self.transport, self.user, int(user_id)))


class EmergencyOverrideHandler(BaseHandler):
    @endpoint(
        operation_id="overrideEmergency",
        roles=Role.ADMIN,
        summary="Override a request's emergency flag",
        body=EmergencySchema,
        response=ServiceRequestSchema(),
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="While the fee is unpaid it follows the flag; afterwards only the flag changes.",
    )
    async def post(self, request_id):
        await self.respond(
            await self.run(booking.set_emergency, self.config, self.user, int(request_id), self.body["is_emergency"])
        )


SERVICEMAN = r"/api/admin/servicemen/(?P<serviceman_id>\d+)"
default_handlers = [
    (r"/api/admin/servicemen/", ServicemanApplicationsHandler),
    (SERVICEMAN + r"/approve/", ServicemanApproveHandler),
    (SERVICEMAN + r"/reject/", ServicemanWithReasonHandler, {"action": "reject"}),
    (SERVICEMAN + r"/suspend/", ServicemanWithReasonHandler, {"action": "suspend"}),
    (SERVICEMAN + r"/reinstate/", ServicemanReinstateHandler),
    (r"/api/admin/users/", AdminUserCreateHandler),
    (r"/api/admin/users/(?P<user_id>\d+)/deactivate/", AdminUserDeactivateHandler),
    (r"/api/admin/requests/(?P<request_id>\d+)/emergency/", EmergencyOverrideHandler),
]
