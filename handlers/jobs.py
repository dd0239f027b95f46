"""Doing the job: start work, mark done, confirm, rate; the serviceman's jobs and stats."""

from models.actions import jobs
from models.users import Role

from .base import BaseHandler, endpoint
from .schemas.catalog import RatingSchema
from .schemas.common import APPROVED_ONLY
from .schemas.jobs import JobListQuerySchema, JobSchema, RatingCreateSchema, ServicemanStatsSchema
from .schemas.service_requests import ServiceRequestSchema

TAGS = ("jobs",)
RequestOut = ServiceRequestSchema()


class StartWorkHandler(BaseHandler):
    @endpoint(
        operation_id="startWork",
        roles=Role.ADMIN,
        summary="Tell the primary serviceman to proceed (→ IN_PROGRESS)",
        response=RequestOut,
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description="Only from PAYMENT_CONFIRMED (409 otherwise). The primary serviceman gets `work_started`.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(jobs.start_work, self.user, int(request_id)))


class CompleteJobHandler(BaseHandler):
    @endpoint(
        operation_id="completeJob",
        roles=Role.SERVICEMAN,
        summary="Mark the job done (→ COMPLETED_BY_SERVICEMAN)",
        response=RequestOut,
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description="The primary serviceman, from IN_PROGRESS (409 otherwise). The backup serviceman gets "
        "403; a serviceman not on the job gets 404. Admins get `job_completed`." + APPROVED_ONLY,
    )
    async def post(self, request_id):
        await self.respond(await self.run(jobs.mark_completed, self.user, int(request_id)))


class ConfirmCompletionHandler(BaseHandler):
    @endpoint(
        operation_id="confirmCompletion",
        roles=Role.ADMIN,
        summary="Confirm the job with the client (→ COMPLETED)",
        response=RequestOut,
        errors=(401, 403, 404, 409),
        tags=TAGS,
        description="Only from COMPLETED_BY_SERVICEMAN (409 otherwise, so a repeated confirm is a 409). "
        "The primary serviceman's `jobs_completed` goes up by one in the same transaction; "
        "the client gets `job_confirmed`.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(jobs.confirm_completion, self.user, int(request_id)))


class RatingHandler(BaseHandler):
    @endpoint(
        operation_id="rateServiceman",
        roles=Role.CLIENT,
        summary="Rate the primary serviceman of a completed job, once",
        body=RatingCreateSchema,
        response=RatingSchema(),
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
        tags=TAGS,
        description="The owning client (another client's request is 404), while COMPLETED (409 "
        "`invalid_transition` otherwise); a second rating of the same request is 409 "
        "`already_rated`. The serviceman's `rating` (average, two places) and `rating_count` "
        "are recomputed from all their ratings; they get `rating_received`.",
    )
    async def post(self, request_id):
        await self.respond(await self.run(jobs.rate_job, self.user, int(request_id), **self.body))


class ServicemanJobsHandler(BaseHandler):
    @endpoint(
        operation_id="listMyJobs",
        roles=Role.SERVICEMAN,
        summary="The caller's jobs (primary or backup), newest first",
        query=JobListQuerySchema,
        response=JobSchema(),
        paginated=True,
        errors=(401, 403, 422),
        tags=TAGS,
        description="Each job says the caller's `role` (primary or backup) and `is_emergency`. Ordered by "
        "creation, newest first; filter with `status` and `is_emergency`.",
    )
    async def get(self):
        filters = {k: self.query.get(k) for k in ("status", "is_emergency")}
        await self.respond(jobs.serviceman_jobs(self.user, **filters))


class ServicemanStatsHandler(BaseHandler):
    @endpoint(
        operation_id="getMyStats",
        roles=Role.SERVICEMAN,
        summary="The caller's jobs, completion rate, ratings and earnings",
        response=ServicemanStatsSchema(),
        errors=(401, 403),
        tags=TAGS,
        description="Counts only jobs the caller was primary on. `all_time` and `this_month` (the current "
        "month of the platform's TIME_ZONE; a job counts in the month the admin confirmed it) "
        "each give COMPLETED jobs, earnings (their payouts in the ledger, naira) and the "
        "average and count of ratings received. `completion_rate` = COMPLETED ÷ (COMPLETED + "
        "CANCELLED after assignment) × 100, two places, null until a job has ended; active jobs "
        "are left out of it and reported as `active_jobs`.",
    )
    async def get(self):
        await self.respond(await self.run(jobs.serviceman_stats, self.user, self.config.zone))


ADMIN_REQUEST = r"/api/admin/requests/(?P<request_id>\d+)"
default_handlers = [
    (ADMIN_REQUEST + r"/start-work/", StartWorkHandler),
    (ADMIN_REQUEST + r"/confirm-completion/", ConfirmCompletionHandler),
    (r"/api/serviceman/requests/(?P<request_id>\d+)/complete/", CompleteJobHandler),
    (r"/api/requests/(?P<request_id>\d+)/rating/", RatingHandler),
    (r"/api/serviceman/jobs/", ServicemanJobsHandler),
    (r"/api/serviceman/stats/", ServicemanStatsHandler),
]
