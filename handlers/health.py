"""GET /livez, /readyz and /healthz (models/actions/health.py says what each reports).

The checks run on a few threads of their own, not the domain pool, and each answer is bounded by
CHECK_DEADLINE_SECONDS: a probe must answer quickly even when every domain thread waits on a
database that stopped, and a dependency too slow to answer within it counts as unavailable.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from models.actions import health

from .base import ANYONE, BaseHandler, endpoint

CHECK_DEADLINE_SECONDS = 1.0
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
TAGS = ("docs",)


async def _state(check, settings):
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_checks, check, settings), CHECK_DEADLINE_SECONDS)
    except TimeoutError:
        return health.UNAVAILABLE


async def dependency_states(settings):
    """(database, redis) states, both asked at once."""
    return await asyncio.gather(_state(health.database_state, settings), _state(health.redis_state, settings))


class _ProbeHandler(BaseHandler):
    def answer(self, status, body):
        self.set_status(status)
        self.finish(json.dumps(body))


class LivenessHandler(_ProbeHandler):
    response_example = {"status": "ok"}

    @endpoint(
        operation_id="getLiveness",
        roles=ANYONE,
        summary="Liveness: the process answers",
        tags=TAGS,
        description='Always `{"status": "ok"}` while the process serves; no dependency is asked.',
    )
    async def get(self):
        self.answer(*health.liveness())


def _dependency_report(report, **declaration):
    """A GET answering `report(database_state, redis_state)`: readiness or health."""

    @endpoint(roles=ANYONE, errors=(503,), tags=TAGS, **declaration)
    async def get(self):
        self.answer(*report(*await dependency_states(self.config)))

    return get


class ReadinessHandler(_ProbeHandler):
    response_example = {"status": "ok", "database": "ok", "redis": "ok"}
    get = _dependency_report(
        health.readiness,
        operation_id="getReadiness",
        summary="Readiness: the database answers (Redis reported)",
        description='503 when the database does not answer within a second. `redis` ("ok", "embedded" or '
        '"unavailable") is reported but does not fail readiness: requests are served without it.',
    )


class HealthHandler(_ProbeHandler):
    response_example = {"status": "ok", "database": "ok", "redis": "ok"}
    get = _dependency_report(
        health.health,
        operation_id="getHealth",
        summary="Health of the process and its dependencies",
        description='{"status": "ok", "database": "ok", "redis": "ok" or "embedded"}; 503 names the failing part '
        '("unavailable") when the database or Redis does not answer within a second.',
    )


default_handlers = [
    (r"/livez", LivenessHandler),
    (r"/readyz", ReadinessHandler),
    (r"/healthz", HealthHandler),
]
