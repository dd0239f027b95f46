"""The public servicemen page is kept per web process (handlers/web/listing_cache.py): served again until
the listing changes or LISTING_CACHE_SECONDS pass, and never served once a change this process
committed could make it wrong.

Given a page that was built, when nothing changes, then it is served without the database (a change
made behind the process's back, as another web process would, shows only after the TTL); when a
booking step, a vetting decision, a profile edit, a deactivation or a category change commits here,
then the very next request shows it.
"""

import asyncio

import pytest

from handlers.web.listing_cache import ListingCache
from models import ServicemanProfile
from models.actions import listing
from workers.transport import listing_channel, user_channel

from .booking_support import assign_path, awaiting_assignment, team_body
from .factories import ServicemanFactory, ServiceRequestFactory


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def page_path(category, **query):
    args = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/categories/{category.id}/servicemen/" + (f"?{args}" if args else "")


def cards(response):
    assert response.status == 200, response
    return {card["id"]: card for card in response.data["results"]}


@pytest.fixture
def clock(app):
    """The app's listing cache on a clock the test moves."""
    clock = Clock()
    app.settings["listing_cache"].clock = clock
    return clock


# --- the cache itself -----------------------------------------------------------------------------------


def make_cache(seconds=1.0, **kwargs):
    generation = {"now": 0}
    clock = Clock()
    cache = ListingCache(seconds, clock=clock, generation=lambda: generation["now"], **kwargs)
    return cache, clock, generation


def test_a_kept_body_is_served_until_it_expires():
    cache, clock, _ = make_cache(seconds=1.0)
    cache.put("k", 0, b"body")

    assert cache.get("k") == b"body"
    clock.now += 0.99
    assert cache.get("k") == b"body"
    clock.now += 0.01
    assert cache.get("k") is None
    assert cache.size == 0


def test_a_change_after_the_body_was_built_makes_it_a_miss():
    cache, _, generation = make_cache()
    cache.put("k", 0, b"old")
    generation["now"] = 1

    assert cache.get("k") is None


def test_a_body_built_from_what_was_read_before_a_change_is_not_kept():
    cache, _, generation = make_cache()
    read_at = generation["now"]
    generation["now"] = 1  # the change commits while the body is being built

    cache.put("k", read_at, b"stale")

    assert cache.get("k") is None


def test_zero_seconds_keeps_nothing():
    cache, _, _ = make_cache(seconds=0)
    cache.put("k", 0, b"body")

    assert cache.get("k") is None


def test_the_cache_is_bounded_by_size_oldest_first():
    cache, _, _ = make_cache(max_bytes=10)
    cache.put("a", 0, b"1234")
    cache.put("b", 0, b"5678")
    cache.put("a", 0, b"abcd")  # stored again: now the newest
    cache.put("c", 0, b"wxyz")
    cache.put("huge", 0, b"x" * 11)

    assert (cache.get("a"), cache.get("b"), cache.get("c"), cache.get("huge")) == (b"abcd", None, b"wxyz", None)
    assert cache.size == 8


@pytest.mark.gen_test
async def test_requests_that_miss_together_share_one_build():
    cache, _, _ = make_cache()
    calls, release = [], asyncio.Event()

    async def build():
        calls.append(1)
        await release.wait()
        return b"built"

    waiting = [asyncio.ensure_future(cache.fetch("k", build)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()

    assert await asyncio.gather(*waiting) == [b"built"] * 5
    assert len(calls) == 1
    assert await cache.fetch("k", build) == b"built" and len(calls) == 1


@pytest.mark.gen_test
async def test_a_change_during_a_build_starts_a_new_one_and_keeps_neither_stale_answer():
    cache, _, generation = make_cache()
    release, started = asyncio.Event(), asyncio.Event()
    builds = []

    async def build():
        read_at = generation["now"]
        builds.append(read_at)
        started.set()
        await release.wait()
        return f"built at {read_at}".encode()

    before = asyncio.ensure_future(cache.fetch("k", build))
    await started.wait()
    generation["now"] = 1
    after = asyncio.ensure_future(cache.fetch("k", build))
    await asyncio.sleep(0)
    release.set()

    assert (await before, await after) == (b"built at 0", b"built at 1")
    assert cache.get("k") == b"built at 1" and builds == [0, 1]


@pytest.mark.gen_test
async def test_a_failed_build_fails_its_waiters_and_is_not_kept():
    cache, _, _ = make_cache()

    async def fail():
        raise LookupError("no such category")

    results = await asyncio.gather(cache.fetch("k", fail), cache.fetch("k", fail), return_exceptions=True)

    assert all(isinstance(r, LookupError) for r in results)
    assert cache.get("k") is None and cache.size == 0


# --- the page, served by the app ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_page_is_served_again_without_the_database_until_it_expires(api, clock, category, serviceman):
    first = cards(await api.get(page_path(category)))
    # Behind the process's back, as another web process would: no commit hook runs here.
    ServicemanProfile.update(bio="Changed elsewhere").where(ServicemanProfile.user == serviceman.id).execute()

    again = cards(await api.get(page_path(category)))
    clock.now += api.settings.listing_cache_seconds
    expired = cards(await api.get(page_path(category)))

    assert again == first
    assert expired[serviceman.id]["bio"] == "Changed elsewhere"


@pytest.mark.gen_test
async def test_each_page_and_ordering_is_kept_apart(api, clock, category):
    servicemen = [ServicemanFactory(profile__categories=[category], profile__rating=r) for r in (3, 4, 5)]

    first = await api.get(page_path(category, page_size=2))
    second = await api.get(page_path(category, page_size=2, page=2))
    extra = await api.get(page_path(category, page_size=2, utm="x"))

    assert list(cards(first)) == [servicemen[2].id, servicemen[1].id]
    assert list(cards(second)) == [servicemen[0].id]
    # an unknown parameter is refused (issue 24), never served from (or into) the cache
    assert (extra.status, extra.data["error"]["fields"]) == (422, {"utm": ["Unknown field."]})
    assert "utm" not in first.data["next"]


@pytest.mark.gen_test
async def test_a_suspension_is_seen_by_the_next_request(api, clock, admin_user, category, serviceman):
    assert serviceman.id in cards(await api.get(page_path(category)))

    suspended = await api.post(
        f"/api/admin/servicemen/{serviceman.id}/suspend/", {"reason": "Complaints."}, user=admin_user
    )

    assert suspended.status == 200, suspended
    assert serviceman.id not in cards(await api.get(page_path(category)))


@pytest.mark.gen_test
async def test_an_assignment_updates_active_jobs_at_once(api, clock, admin_user, category):
    primary, backup = (ServicemanFactory(profile__categories=[category]) for _ in range(2))
    request = awaiting_assignment(category)
    before = cards(await api.get(page_path(category)))

    assigned = await api.post(assign_path(request), team_body(primary, backup), user=admin_user)

    after = cards(await api.get(page_path(category)))
    assert assigned.status == 200, assigned
    assert (before[primary.id]["active_jobs"], before[backup.id]["active_jobs"]) == (0, 0)
    assert (after[primary.id]["active_jobs"], after[backup.id]["active_jobs"]) == (1, 1)


@pytest.mark.gen_test
async def test_a_serviceman_editing_their_profile_is_seen_at_once(api, clock, category, serviceman):
    assert cards(await api.get(page_path(category)))[serviceman.id]["is_available"] is True

    edited = await api.patch("/api/auth/me/", {"is_available": False, "bio": "Back on Monday."}, user=serviceman)

    card = cards(await api.get(page_path(category)))[serviceman.id]
    assert edited.status == 200, edited
    assert (card["is_available"], card["bio"]) == (False, "Back on Monday.")


@pytest.mark.gen_test
async def test_a_deactivated_serviceman_is_gone_at_once(api, clock, admin_user, category, serviceman):
    assert serviceman.id in cards(await api.get(page_path(category)))

    deactivated = await api.post(f"/api/admin/users/{serviceman.id}/deactivate/", {}, user=admin_user)

    assert deactivated.status == 200, deactivated
    assert serviceman.id not in cards(await api.get(page_path(category)))


@pytest.mark.gen_test
async def test_a_deactivated_category_is_a_404_at_once(api, clock, admin_user, category, serviceman):
    assert serviceman.id in cards(await api.get(page_path(category)))

    deactivated = await api.delete(f"/api/categories/{category.id}/", user=admin_user)

    assert deactivated.status == 200, deactivated
    assert (await api.get(page_path(category))).status == 404


def test_every_committed_event_moves_the_listing_generation(category):
    before = listing.listing_generation()

    ServiceRequestFactory(category=category)  # no event: written behind the actions' back
    unchanged = listing.listing_generation()
    from models.workflow import record_event, unit_of_work

    with unit_of_work():
        record_event(ServiceRequestFactory(category=category), "request_created", None)

    assert unchanged == before
    assert listing.listing_generation() > before


def test_an_announcement_that_fails_does_not_fail_the_change(caplog):
    class RedisDown:
        def announce_listing_changed(self):
            raise ConnectionError("Redis is down")

    before = listing.listing_generation()

    listing.listing_changed(RedisDown())

    assert listing.listing_generation() > before  # this process's own pages are forgotten all the same
    assert "could not tell the other web processes" in caplog.text


def test_channels_are_kept_apart_by_the_redis_database_number():
    assert user_channel("redis://127.0.0.1:6379/3", 7) == "serviceman:3:user:7"
    assert user_channel("redis://127.0.0.1:6379", 7) == "serviceman:0:user:7"
    assert listing_channel("redis://127.0.0.1:6379/3") != listing_channel("redis://127.0.0.1:6379/4")
