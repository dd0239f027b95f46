"""The public servicemen page in Redis mode (production's shape): a change committed by one process
is seen at once by another web process that kept the page.

Given another web process that serves the page from its cache (its expiry set far beyond the test),
when this process commits a suspension, then the other process stops listing the serviceman as soon
as the announcement on Redis reaches it, long before its kept page would expire.
"""

import asyncio
import json
import time

import pytest
import tornado.httpclient

from models import ServicemanProfile

from .redis_web_support import app, redis_settings, serve_another_web_process  # noqa: F401 (fixtures)

ANNOUNCEMENT_DEADLINE = 5  # seconds; the other process keeps pages for 60


@pytest.fixture
def other_web_process(redis_settings):
    yield from serve_another_web_process(redis_settings, LISTING_CACHE_SECONDS="60")


async def bios(port, category):
    """{serviceman id: bio} as the other process lists them."""
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}/api/categories/{category.id}/servicemen/"
    )
    return {card["id"]: card["bio"] for card in json.loads(response.body)["results"]}


def set_bio(serviceman, bio):
    """Behind every process's back (no announcement), as an edit made outside the application."""
    ServicemanProfile.update(bio=bio).where(ServicemanProfile.user == serviceman.id).execute()


@pytest.mark.gen_test(timeout=60)
async def test_a_change_committed_here_reaches_the_page_kept_by_another_process(
    api, admin_user, category, serviceman, other_web_process
):
    # The other process keeps a page once its Redis feed is subscribed (its first request starts it).
    for attempt in range(50):
        before = (await bios(other_web_process, category))[serviceman.id]
        set_bio(serviceman, f"changed behind its back {attempt}")
        if (await bios(other_web_process, category))[serviceman.id] == before:
            break  # served from its cache: the edit behind its back does not show
        await asyncio.sleep(0.1)  # its feed is still subscribing; nothing here to await
    else:
        pytest.fail("the other web process never served the page from its cache")

    suspended = await api.post(
        f"/api/admin/servicemen/{serviceman.id}/suspend/", {"reason": "Complaints."}, user=admin_user
    )
    assert suspended.status == 200, suspended

    deadline = time.monotonic() + ANNOUNCEMENT_DEADLINE
    while serviceman.id in await bios(other_web_process, category):
        assert time.monotonic() < deadline, "the other process still lists a suspended serviceman"
        await asyncio.sleep(0.02)  # the announcement travels through Redis to another process
