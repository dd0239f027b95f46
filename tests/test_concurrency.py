"""Concurrent writes through the thread pool: none may fail with a 500 (SQLite's "database is locked"
for read-then-write transactions was one), and a status can only move once."""

import asyncio
from datetime import timedelta

import pytest

from models import Event, RequestStatus, ServiceRequest
from models.foundation.clock import platform_today

from .factories import ClientFactory, ServiceRequestFactory


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_bookings_all_succeed(api, settings, category):
    clients = [ClientFactory() for _ in range(20)]
    body = {
        "category_id": category.id,
        "booking_date": str(platform_today(settings.zone) + timedelta(days=6)),
        "address": "3 Adeola Odeku, VI",
        "description": "Water heater not heating",
    }

    responses = await asyncio.gather(*(api.post("/api/requests/", body, user=c) for c in clients))

    assert [r.status for r in responses] == [201] * 20
    assert ServiceRequest.select().count() == 20


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_cancels_move_the_status_once(api, admin_user):
    request = ServiceRequestFactory(status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)

    responses = await asyncio.gather(
        *(api.post(f"/api/requests/{request.id}/cancel/", {"reason": "dup"}, user=admin_user) for _ in range(8))
    )

    assert sorted(r.status for r in responses) == [200] + [409] * 7
    assert Event.select().where(Event.service_request == request.id, Event.type == "request_cancelled").count() == 1
