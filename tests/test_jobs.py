"""Doing the job: start work, completion, confirmation, rating, and the serviceman's jobs and stats.

Requests are created directly in the state under test (assignment and pricing are other issues).
Given a request in some state, when an admin, the serviceman or the client acts on it, then it moves
exactly once and counters change exactly once, or the action is refused and nothing changes.
"""

import asyncio
import email
import email.policy
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from models import Notification, Rating, RequestStatus, ServicemanProfile, ServiceRequest
from models.actions import jobs
from models.foundation.errors import Conflict, InvalidTransition, PermissionDenied
from models.payouts import Payout, PayoutStatus

from .booking_support import events_of
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
RATING_FIELDS = {"id", "service_request_id", "serviceman_id", "rating", "review", "created_at"}


def job(status, **fields):
    """A request in `status` with a primary and a backup serviceman, as assignment leaves it."""
    defaults = {
        "status": status,
        "primary_serviceman": ServicemanFactory(),
        "backup_serviceman": ServicemanFactory(),
        "estimate_amount": Decimal("10000.00"),
        "final_cost": Decimal("12000.00"),
    }
    return ServiceRequestFactory(**{**defaults, **fields})


def status_of(request):
    return ServiceRequest.get_by_id(request.id).status


def profile_of(user_id):
    return ServicemanProfile.get(ServicemanProfile.user == user_id)


def others(*statuses):
    return [s for s in S.ALL if s not in statuses]


def race(*fns):
    """Run `fns` at the same moment on their own threads and connections; each answer or exception."""
    start = threading.Barrier(len(fns), timeout=20)

    def one(fn):
        from models.db import database

        with database.connection_context():
            start.wait()
            try:
                return fn()
            except Exception as exc:  # the loser's refusal is the result under test
                return exc

    with ThreadPoolExecutor(len(fns)) as pool:
        return list(pool.map(one, fns))


# --- start work ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_start_work_moves_a_paid_request_in_progress(api, admin_user):
    request = job(S.PAYMENT_CONFIRMED)

    response = await api.post(f"/api/admin/requests/{request.id}/start-work/", user=admin_user)

    assert response.status == 200, response
    assert response.data["status"] == S.IN_PROGRESS and response.data["id"] == request.id
    assert status_of(request) == S.IN_PROGRESS
    [event] = events_of(request, "work_started")
    assert (event.from_status, event.to_status, event.actor_id) == (S.PAYMENT_CONFIRMED, S.IN_PROGRESS, admin_user.id)


@pytest.mark.gen_test
@pytest.mark.parametrize("status", others(S.PAYMENT_CONFIRMED))
async def test_start_work_in_any_other_state_is_409_and_changes_nothing(api, admin_user, status):
    request = job(status)
    before = snapshot()

    response = await api.post(f"/api/admin/requests/{request.id}/start-work/", user=admin_user)

    error = assert_error(response, 409, "invalid_transition")
    assert status in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_admins_start_work_and_only_on_visible_requests(api, admin_user):
    request = job(S.PAYMENT_CONFIRMED)
    before = snapshot()
    for user in (request.client, request.primary_serviceman, request.backup_serviceman):
        assert_error(await api.post(f"/api/admin/requests/{request.id}/start-work/", user=user), 403)
    assert_error(await api.post("/api/admin/requests/999999/start-work/", user=admin_user), 404)
    ServiceRequest.update(is_deleted=True).where(ServiceRequest.id == request.id).execute()
    assert_error(await api.post(f"/api/admin/requests/{request.id}/start-work/", user=admin_user), 404)
    assert status_of(request) == S.PAYMENT_CONFIRMED
    assert not events_of(request, "work_started") and len(snapshot()["Event"]) == len(before["Event"])


# --- the serviceman marks the job done ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_primary_serviceman_marks_the_job_done(api):
    request = job(S.IN_PROGRESS)

    response = await api.post(f"/api/serviceman/requests/{request.id}/complete/", user=request.primary_serviceman)

    assert response.status == 200, response
    assert response.data["status"] == S.COMPLETED_BY_SERVICEMAN
    [event] = events_of(request, "job_completed")
    assert (event.from_status, event.actor_id) == (S.IN_PROGRESS, request.primary_serviceman_id)
    assert event.payload["serviceman_name"] == request.primary_serviceman.full_name


@pytest.mark.gen_test
@pytest.mark.parametrize("status", others(S.IN_PROGRESS))
async def test_marking_done_in_any_other_state_is_409(api, status):
    request = job(status)
    before = snapshot()

    response = await api.post(f"/api/serviceman/requests/{request.id}/complete/", user=request.primary_serviceman)

    error = assert_error(response, 409, "invalid_transition")
    assert status in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_the_backup_is_refused_403_and_a_stranger_404(api, admin_user):
    request = job(S.IN_PROGRESS)
    path = f"/api/serviceman/requests/{request.id}/complete/"
    stranger = ServicemanFactory()
    before = snapshot()

    assert_error(await api.post(path, user=request.backup_serviceman), 403, "permission_denied")
    assert_error(await api.post(path, user=stranger), 404, "not_found")
    assert_error(await api.post(path, user=request.client), 403)
    assert_error(await api.post(path, user=admin_user), 403)

    assert snapshot() == before


def test_a_primary_replaced_while_completing_is_refused_on_the_locked_row():
    """The decision is made on the row as it is inside the transaction, not as it was first read."""
    request = job(S.IN_PROGRESS)
    old_primary, new_primary = request.primary_serviceman, ServicemanFactory()
    ServiceRequest.update(primary_serviceman=new_primary, backup_serviceman=old_primary).where(
        ServiceRequest.id == request.id
    ).execute()

    with pytest.raises(PermissionDenied):
        jobs.mark_completed(old_primary, request.id)

    assert status_of(request) == S.IN_PROGRESS


# --- the admin confirms --------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_confirming_completes_the_request_and_counts_the_job_once(api, admin_user):
    request = job(S.COMPLETED_BY_SERVICEMAN)
    ServicemanProfile.update(jobs_completed=3).where(ServicemanProfile.user == request.primary_serviceman_id).execute()
    path = f"/api/admin/requests/{request.id}/confirm-completion/"

    response = await api.post(path, user=admin_user)
    again = await api.post(path, user=admin_user)

    assert response.status == 200 and response.data["status"] == S.COMPLETED, response
    assert_error(again, 409, "invalid_transition")
    assert profile_of(request.primary_serviceman_id).jobs_completed == 4
    assert profile_of(request.backup_serviceman_id).jobs_completed == 0
    [event] = events_of(request, "job_confirmed")
    assert (event.from_status, event.to_status) == (S.COMPLETED_BY_SERVICEMAN, S.COMPLETED)


@pytest.mark.gen_test
@pytest.mark.parametrize("status", others(S.COMPLETED_BY_SERVICEMAN))
async def test_confirming_in_any_other_state_is_409_and_counts_nothing(api, admin_user, status):
    request = job(status)
    before = snapshot()

    response = await api.post(f"/api/admin/requests/{request.id}/confirm-completion/", user=admin_user)

    error = assert_error(response, 409, "invalid_transition")
    assert status in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_admins_confirm(api):
    request = job(S.COMPLETED_BY_SERVICEMAN)
    other = ClientFactory()
    before = snapshot()
    for user in (request.client, request.primary_serviceman, other):
        assert_error(await api.post(f"/api/admin/requests/{request.id}/confirm-completion/", user=user), 403)
    assert snapshot() == before


def test_concurrent_confirms_complete_once_and_count_the_job_once():
    request = job(S.COMPLETED_BY_SERVICEMAN)
    admins = [AdminFactory(), AdminFactory(), AdminFactory()]

    results = race(*[lambda admin=admin: jobs.confirm_completion(admin, request.id) for admin in admins])

    assert sum(isinstance(r, ServiceRequest) for r in results) == 1, results
    assert sum(isinstance(r, InvalidTransition) for r in results) == 2, results
    assert profile_of(request.primary_serviceman_id).jobs_completed == 1
    assert len(events_of(request, "job_confirmed")) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_double_clicked_confirm_over_http_counts_once(api, admin_user):
    request = job(S.COMPLETED_BY_SERVICEMAN)
    path = f"/api/admin/requests/{request.id}/confirm-completion/"

    responses = await asyncio.gather(*[api.post(path, user=admin_user) for _ in range(4)])

    assert sorted(r.status for r in responses) == [200, 409, 409, 409], responses
    assert profile_of(request.primary_serviceman_id).jobs_completed == 1


# --- the whole job over HTTP, down to the public profile ------------------------------------------------


@pytest.mark.gen_test
async def test_start_finish_confirm_and_rate_then_the_profile_shows_it(api, admin_user):
    request = job(S.PAYMENT_CONFIRMED)
    primary = request.primary_serviceman

    assert (await api.post(f"/api/admin/requests/{request.id}/start-work/", user=admin_user)).status == 200
    assert (await api.post(f"/api/serviceman/requests/{request.id}/complete/", user=primary)).status == 200
    assert (await api.post(f"/api/admin/requests/{request.id}/confirm-completion/", user=admin_user)).status == 200
    rated = await api.post(
        f"/api/requests/{request.id}/rating/", {"rating": 4, "review": "Tidy work."}, user=request.client
    )

    assert rated.status == 201, rated
    profile = await api.get(f"/api/servicemen/{primary.id}/")
    assert (profile.data["rating"], profile.data["rating_count"], profile.data["jobs_completed"]) == ("4.00", 1, 1)
    reviews = await api.get(f"/api/servicemen/{primary.id}/ratings/")
    assert reviews.data["count"] == 1
    assert reviews.data["results"][0] == rated.data
    timeline = await api.get(f"/api/requests/{request.id}/events/", user=request.client)
    assert [e["type"] for e in timeline.data["results"]] == [
        "work_started",
        "job_completed",
        "job_confirmed",
        "rating_received",
    ]


# --- rating --------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_client_rates_the_primary_serviceman(api):
    request = job(S.COMPLETED)

    response = await api.post(
        f"/api/requests/{request.id}/rating/", {"rating": 5, "review": "Excellent."}, user=request.client
    )

    assert response.status == 201, response
    assert set(response.data) == RATING_FIELDS
    assert (response.data["service_request_id"], response.data["serviceman_id"]) == (
        request.id,
        request.primary_serviceman_id,
    )
    assert (response.data["rating"], response.data["review"]) == (5, "Excellent.")
    profile = profile_of(request.primary_serviceman_id)
    assert (profile.rating, profile.rating_count) == (Decimal("5.00"), 1)
    assert profile_of(request.backup_serviceman_id).rating_count == 0
    [event] = events_of(request, "rating_received")
    assert event.payload["serviceman_id"] == request.primary_serviceman_id and event.payload["rating"] == 5


@pytest.mark.gen_test
async def test_the_review_is_optional(api):
    request = job(S.COMPLETED)
    response = await api.post(f"/api/requests/{request.id}/rating/", {"rating": 3}, user=request.client)
    assert response.status == 201 and response.data["review"] == "", response


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": -1},
        {"rating": 4.5},
        {"rating": "5"},
        {"rating": None},
        {"rating": True},
        {"review": "No stars given."},
        {"rating": 2**40},
    ],
)
async def test_a_rating_outside_1_to_5_is_422_and_changes_nothing(api, body):
    request = job(S.COMPLETED)
    before = snapshot()

    response = await api.post(f"/api/requests/{request.id}/rating/", body, user=request.client)

    error = assert_error(response, 422, "validation_error")
    assert "rating" in error["fields"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_a_review_longer_than_2000_characters_is_422(api):
    request = job(S.COMPLETED)
    response = await api.post(
        f"/api/requests/{request.id}/rating/", {"rating": 4, "review": "x" * 2001}, user=request.client
    )
    assert "review" in assert_error(response, 422)["fields"]
    assert not Rating.select().exists()


@pytest.mark.gen_test
@pytest.mark.parametrize("status", others(S.COMPLETED))
async def test_rating_a_job_that_is_not_completed_is_409(api, status):
    request = job(status)
    before = snapshot()

    response = await api.post(f"/api/requests/{request.id}/rating/", {"rating": 5}, user=request.client)

    error = assert_error(response, 409, "invalid_transition")
    assert status in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_the_owning_client_rates(api, other_client, admin_user):
    request = job(S.COMPLETED)
    path = f"/api/requests/{request.id}/rating/"
    before = snapshot()

    assert_error(await api.post(path, {"rating": 1}, user=other_client), 404, "not_found")
    assert_error(await api.post("/api/requests/999999/rating/", {"rating": 1}, user=other_client), 404)
    for user in (admin_user, request.primary_serviceman, request.backup_serviceman):
        assert_error(await api.post(path, {"rating": 5}, user=user), 403, "permission_denied")

    assert snapshot() == before


@pytest.mark.gen_test
async def test_a_job_is_rated_once(api):
    request = job(S.COMPLETED)
    path = f"/api/requests/{request.id}/rating/"
    assert (await api.post(path, {"rating": 5}, user=request.client)).status == 201

    response = await api.post(path, {"rating": 1, "review": "Changed my mind."}, user=request.client)

    assert_error(response, 409, "already_rated")
    [rating] = Rating.select()
    assert rating.rating == 5
    profile = profile_of(request.primary_serviceman_id)
    assert (profile.rating, profile.rating_count) == (Decimal("5.00"), 1)
    assert len(events_of(request, "rating_received")) == 1


def test_two_ratings_of_one_job_at_the_same_moment_leave_one_row_and_one_conflict():
    request = job(S.COMPLETED)
    client = request.client

    results = race(lambda: jobs.rate_job(client, request.id, 5), lambda: jobs.rate_job(client, request.id, 1))

    assert sum(isinstance(r, Rating) for r in results) == 1, results
    [conflict] = [r for r in results if isinstance(r, Conflict)]
    assert conflict.code == "already_rated"
    assert Rating.select().count() == 1
    assert profile_of(request.primary_serviceman_id).rating_count == 1
    assert len(events_of(request, "rating_received")) == 1


def test_clients_rating_one_serviceman_at_the_same_moment_all_count():
    serviceman = ServicemanFactory()
    earlier = job(S.COMPLETED, primary_serviceman=serviceman)
    jobs.rate_job(earlier.client, earlier.id, 4)

    for _ in range(3):  # three rounds of three simultaneous ratings: a lost update shows in the count
        requests = [job(S.COMPLETED, primary_serviceman=serviceman) for _ in range(3)]
        results = race(
            *[
                lambda r=r, stars=stars: jobs.rate_job(r.client, r.id, stars)
                for r, stars in zip(requests, (5, 2, 3), strict=True)
            ]
        )
        assert all(isinstance(r, Rating) for r in results), results

    profile = profile_of(serviceman.id)
    assert profile.rating_count == 10
    assert profile.rating == Decimal("3.40")  # (4 + 3 × (5 + 2 + 3)) / 10


def test_the_average_is_exact_and_rounded_half_up():
    serviceman = ServicemanFactory()
    for stars in (5, 5, 5, 5, 5, 4, 2, 2):  # 33 / 8 = 4.125
        request = job(S.COMPLETED, primary_serviceman=serviceman)
        jobs.rate_job(request.client, request.id, stars)

    profile = profile_of(serviceman.id)
    assert (profile.rating, profile.rating_count) == (Decimal("4.13"), 8)


# --- the serviceman's jobs -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_job_list_shows_the_callers_jobs_with_their_role_newest_first(api):
    me, colleague = ServicemanFactory(), ServicemanFactory()
    as_primary = job(S.ASSIGNED, primary_serviceman=me, backup_serviceman=colleague)
    as_backup = job(S.IN_PROGRESS, primary_serviceman=colleague, backup_serviceman=me, is_emergency=True)
    job(S.ASSIGNED, primary_serviceman=colleague)  # not mine
    job(S.COMPLETED, primary_serviceman=me, is_deleted=True)  # deleted: hidden

    response = await api.get("/api/serviceman/jobs/", user=me)

    assert response.status == 200, response
    assert response.data["count"] == 2
    results = response.data["results"]
    assert [(j["id"], j["role"], j["is_emergency"]) for j in results] == [
        (as_backup.id, "backup", True),
        (as_primary.id, "primary", False),
    ]
    assert results[0]["status"] == S.IN_PROGRESS and results[0]["booking_date"]
    colleague_view = await api.get("/api/serviceman/jobs/", user=colleague)
    assert {(j["id"], j["role"]) for j in colleague_view.data["results"]} >= {
        (as_primary.id, "backup"),
        (as_backup.id, "primary"),
    }


@pytest.mark.gen_test
async def test_the_job_list_filters_by_status_and_emergency(api):
    me = ServicemanFactory()
    assigned = job(S.ASSIGNED, primary_serviceman=me)
    urgent = job(S.IN_PROGRESS, primary_serviceman=me, is_emergency=True)
    done = job(S.COMPLETED, backup_serviceman=me)

    by_status = await api.get(f"/api/serviceman/jobs/?status={S.COMPLETED}", user=me)
    emergencies = await api.get("/api/serviceman/jobs/?is_emergency=true", user=me)
    routine = await api.get("/api/serviceman/jobs/?is_emergency=false&page_size=1", user=me)

    assert [(j["id"], j["role"]) for j in by_status.data["results"]] == [(done.id, "backup")]
    assert [j["id"] for j in emergencies.data["results"]] == [urgent.id]
    assert routine.data["count"] == 2 and routine.data["next"] and len(routine.data["results"]) == 1
    assert {assigned.id, done.id} >= {j["id"] for j in routine.data["results"]}
    assert_error(await api.get("/api/serviceman/jobs/?status=FINISHED", user=me), 422)


@pytest.mark.gen_test
async def test_only_servicemen_have_a_job_list(api, client_user, admin_user):
    assert_error(await api.get("/api/serviceman/jobs/", user=client_user), 403)
    assert_error(await api.get("/api/serviceman/jobs/", user=admin_user), 403)
    empty = await api.get("/api/serviceman/jobs/", user=ServicemanFactory())
    assert empty.status == 200 and empty.data["count"] == 0


# --- the serviceman's stats -------------------------------------------------------------------------------

# 15 July 2026, 13:00 in Lagos. 1 July 00:30 in Lagos is still 30 June in UTC.
NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
JULY_IN_LAGOS_JUNE_IN_UTC = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)
JUNE_IN_LAGOS = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)


@pytest.fixture
def july():
    with time_machine.travel(NOW, tick=False):
        yield


def completed_job(serviceman, estimate, confirmed_at, payout_status=PayoutStatus.OWED, **fields):
    """A confirmed job and the payout the ledger recorded for it then (the estimate: no markup)."""
    request = job(
        S.COMPLETED,
        primary_serviceman=serviceman,
        estimate_amount=Decimal(estimate),
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        updated_at=confirmed_at,
        **fields,
    )
    Payout.create(
        serviceman=serviceman.id,
        service_request=request.id,
        amount=Decimal(estimate),
        platform_share=0,
        status=payout_status,
        transfer_reference=f"smpo-{request.id}-test",
        created_at=confirmed_at,
    )
    return request


def rate(request, stars, at):
    return Rating.create(
        service_request=request.id,
        serviceman=request.primary_serviceman_id,
        client=request.client_id,
        rating=stars,
        created_at=at,
    )


@pytest.mark.gen_test
async def test_stats_count_the_callers_primary_jobs_this_month_and_all_time(api, july):
    me, colleague = ServicemanFactory(), ServicemanFactory()
    this_month = completed_job(me, "10000.00", datetime(2026, 7, 13, 9, 0, tzinfo=UTC))
    first_night = completed_job(me, "2500.50", JULY_IN_LAGOS_JUNE_IN_UTC, PayoutStatus.IN_TRANSIT)
    last_month = completed_job(me, "7000.00", JUNE_IN_LAGOS, PayoutStatus.PAID)
    completed_job(colleague, "99999.00", NOW, backup_serviceman=me)  # my backup job: not my work
    job(S.CANCELLED, primary_serviceman=me)
    job(S.CANCELLED, backup_serviceman=me)
    for status in (S.ASSIGNED, S.IN_PROGRESS, S.COMPLETED_BY_SERVICEMAN):
        job(status, primary_serviceman=me, estimate_amount=Decimal("50000.00"))
    rate(this_month, 5, NOW)
    rate(first_night, 4, JULY_IN_LAGOS_JUNE_IN_UTC)
    rate(last_month, 2, JUNE_IN_LAGOS)

    response = await api.get("/api/serviceman/stats/", user=me)

    assert response.status == 200, response
    assert response.data == {
        "currency": "NGN",
        "completion_rate": "75.00",  # 3 completed of 4 ended (3 completed + 1 cancelled)
        "cancelled_jobs": 1,
        "active_jobs": 3,
        "earnings_owed": "10000.00",
        "earnings_in_transit": "2500.50",
        "earnings_paid": "7000.00",
        "all_time": {"jobs_completed": 3, "earnings": "19500.50", "average_rating": "3.67", "rating_count": 3},
        "this_month": {
            "month": "2026-07",
            "jobs_completed": 2,
            "earnings": "12500.50",
            "average_rating": "4.50",
            "rating_count": 2,
        },
    }


@pytest.mark.gen_test
async def test_stats_of_a_new_serviceman_are_zero_without_inventing_rates(api, july):
    response = await api.get("/api/serviceman/stats/", user=ServicemanFactory())

    assert response.status == 200, response
    assert response.data["completion_rate"] is None
    assert response.data["all_time"] == {
        "jobs_completed": 0,
        "earnings": "0.00",
        "average_rating": None,
        "rating_count": 0,
    }
    assert response.data["this_month"]["earnings"] == "0.00" and response.data["this_month"]["month"] == "2026-07"


@pytest.mark.gen_test
async def test_only_servicemen_have_stats(api, client_user, admin_user):
    assert_error(await api.get("/api/serviceman/stats/", user=client_user), 403)
    assert_error(await api.get("/api/serviceman/stats/", user=admin_user), 403)


def test_a_job_confirmed_through_the_workflow_counts_in_this_months_stats(settings, july):
    me = ServicemanFactory()
    request = job(S.COMPLETED_BY_SERVICEMAN, primary_serviceman=me, estimate_amount=Decimal("8000.00"))

    jobs.confirm_completion(AdminFactory(), request.id)

    stats = jobs.serviceman_stats(me, settings.zone)
    assert stats["this_month"]["jobs_completed"] == 1 and stats["this_month"]["earnings"] == Decimal("8000.00")
    assert stats["all_time"]["jobs_completed"] == profile_of(me.id).jobs_completed == 1


# --- notifications through the real pipeline ---------------------------------------------------------------


def parsed(envelope):
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def notes_of(user):
    return [(n.notification_type, n.sent_to_email) for n in Notification.select().where(Notification.user == user.id)]


def test_each_step_notifies_its_party_once_by_dashboard_and_email(mail_pipeline, mailbox):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = job(S.PAYMENT_CONFIRMED)
    primary, backup, client = request.primary_serviceman, request.backup_serviceman, request.client

    jobs.start_work(admin, request.id)
    jobs.mark_completed(primary, request.id)
    jobs.confirm_completion(admin, request.id)
    jobs.rate_job(client, request.id, 5, "Quick & clean <b>work</b>.")
    pipeline.run()
    pipeline.run()  # a replay creates nothing twice

    assert sorted(notes_of(primary)) == [("rating_received", True), ("work_started", True)]
    assert notes_of(admin) == [("job_completed", True)]
    assert notes_of(client) == [("job_confirmed", True)]
    assert notes_of(backup) == []
    [rated] = Notification.select().where(Notification.notification_type == "rating_received")
    assert "5/5" in rated.title and "Quick & clean" in rated.message
    [done] = Notification.select().where(Notification.notification_type == "job_completed")
    assert primary.full_name in done.message
    to = [address for message in mailbox.messages for address in message.rcpt_tos]
    assert sorted(to) == sorted([primary.email, primary.email, admin.email, client.email])
    [rating_email] = [m for m in map(parsed, mailbox.messages) if "5/5" in m["Subject"]]
    assert rating_email["To"] == primary.email
    html = rating_email.get_body(("html",)).get_content()
    assert "Quick &amp; clean &lt;b&gt;work&lt;/b&gt;." in html  # a client's words are escaped in the HTML
