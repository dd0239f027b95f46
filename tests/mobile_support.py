"""Shared by the mobile-client tests: the app in either transport, and a booking body."""

import asyncio
from datetime import timedelta

import pytest

from handlers.web.executor import call_with_connection
from models.foundation.clock import platform_today
from server.app import make_app
from workers import runtime

from .conftest import make_settings, serve_app
from .pipeline_support import use_pipeline


@pytest.fixture(params=["embedded", "redis"])
def transport(request):
    """ "embedded" (no REDIS_URL: the in-process pipeline) or "redis" (pub/sub, stream, RQ)."""
    return request.param


@pytest.fixture
def mode_settings(transport, request, settings):
    if transport == "embedded":
        return settings
    return make_settings(REDIS_URL=request.getfixturevalue("redis_url"))


@pytest.fixture
def app(mode_settings, io_loop, database):
    if not mode_settings.redis_url:
        yield from serve_app(mode_settings)
        return
    application = make_app(mode_settings, bind_database=False)
    yield application
    io_loop.run_sync(lambda: _close(application.settings["hub"]))
    runtime.reset()


async def _close(hub):
    """Close the hub once its feed is subscribed: cancelling the feed in the middle of redis-py's
    subscribe can leave its connection's close waiting forever (seen when a test's only request was a 422)."""
    if hub._subscribed is not None:
        try:
            await asyncio.wait_for(hub._subscribed.wait(), 5)
        except TimeoutError:
            pass
    await hub.close()


async def run_pipeline(mode_settings):
    """Redis mode: run the dispatcher and a worker once, off the loop (embedded mode delivers at commit)."""
    if mode_settings.redis_url:
        pipeline = use_pipeline(mode_settings, mode_settings.redis_url)
        await asyncio.get_running_loop().run_in_executor(None, call_with_connection, pipeline.run)


def booking_body(settings, category, days=5, **extra):
    return {
        "category_id": category.id,
        "booking_date": str(platform_today(settings.zone) + timedelta(days=days)),
        "address": "14 Admiralty Way, Lekki",
        "description": "The kitchen tap drips all night.",
        **extra,
    }
