"""Assignment: the admins' queue of paid bookings, assigning a primary and a backup serviceman, and a
serviceman dropping out (declining, the backup promoted, reassignment).

Given a paid booking, when an admin assigns it, then two different approved, active servicemen of its
category are placed (another category only when confirmed), it moves to ASSIGNED exactly once however
many admins try at once, and both are told with the client's details; when one drops out, the backup
steps up and whoever is removed or placed is told.
"""

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from handlers.schemas.assignment import UnassignedRequestSchema
from handlers.schemas.common import paginate
from models import ApprovalStatus, Event, Notification, RequestStatus, ServicemanProfile, ServiceRequest, User
from models.actions import assignment
from models.db import database
from models.foundation.errors import PermissionDenied

from .booking_support import assign_path, awaiting_assignment, events_of, stored, team_body
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
NOW = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
QUEUE = "/api/admin/requests/unassigned/"
NOT_AWAITING_ASSIGNMENT = [s for s in S.ALL if s != S.PENDING_ADMIN_ASSIGNMENT]
AFTER_INSPECTION = [s for s in S.ACTIVE_FOR_SERVICEMAN if s != S.ASSIGNED] + [S.COMPLETED_BY_SERVICEMAN, S.COMPLETED]


def decline_path(request):
    return f"/api/serviceman/requests/{request.id}/decline/"


def servicemen(category, count=2, **profile):
    return [
        ServicemanFactory(profile__categories=[category], **{f"profile__{k}": v for k, v in profile.items()})
        for _ in range(count)
    ]


def assigned(category, status=S.ASSIGNED, **kwargs):
    primary, backup = servicemen(category)
    return ServiceRequestFactory(
        category=category, status=status, primary_serviceman=primary, backup_serviceman=backup, **kwargs
    )


def notes_of(user):
    return list(Notification.select().where(Notification.user == user.id).order_by(Notification.id))


def email_text(message):
    """The plain and HTML parts of a delivered email, decoded."""
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    return "\n".join(part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text")


# --- the queue ---------------------------------------------------------------------------------------


def paid(request, at):
    Event.create(
        type="payment_received",
        service_request=request,
        created_at=at,
        from_status=S.PENDING_PAYMENT,
        to_status=S.PENDING_ADMIN_ASSIGNMENT,
        payload={"service_request_id": request.id, "is_emergency": request.is_emergency},
    )


@pytest.mark.gen_test
async def test_the_queue_lists_paid_bookings_emergencies_first_then_the_longest_waiting(api, admin_user, category):
    with time_machine.travel(NOW, tick=False):
        hours = lambda n: NOW - timedelta(hours=n)  # noqa: E731
        paid_late = awaiting_assignment(category, created_at=hours(10))
        paid(paid_late, hours(3))
        paid_early = awaiting_assignment(category, created_at=hours(8))
        paid(paid_early, hours(6))
        Event.create(type="request_updated", service_request=paid_early, created_at=hours(1))  # not a payment
        emergency_new = awaiting_assignment(category, created_at=hours(1), is_emergency=True)  # no payment event
        emergency_old = awaiting_assignment(
            category, created_at=hours(5), is_emergency=True, auto_flagged_emergency=True
        )
        paid(emergency_old, hours(4))
        for status in (S.PENDING_PAYMENT, S.ASSIGNED, S.CANCELLED):
            ServiceRequestFactory(category=category, status=status, created_at=hours(20))
        awaiting_assignment(category, created_at=hours(20), is_deleted=True)

        response = await api.get(QUEUE, user=admin_user)

    assert response.status == 200, response
    assert response.data["count"] == 4
    order = [item["id"] for item in response.data["results"]]
    assert order == [emergency_old.id, emergency_new.id, paid_early.id, paid_late.id]
    waited = {item["id"]: item["waiting_seconds"] for item in response.data["results"]}
    assert waited == {
        emergency_old.id: 4 * 3600,
        emergency_new.id: 3600,
        paid_early.id: 6 * 3600,
        paid_late.id: 3 * 3600,
    }
    first = response.data["results"][0]
    assert (first["is_emergency"], first["auto_flagged_emergency"]) == (True, True)
    assert first["waiting_since"] == hours(4).isoformat()
    assert first["status"] == S.PENDING_ADMIN_ASSIGNMENT


@pytest.mark.gen_test
async def test_each_queued_request_has_its_client_preferred_serviceman_and_category(api, admin_user, category):
    client = ClientFactory(first_name="Ada", last_name="Obi", phone="+2348031112222", email="ada@example.ng")
    preferred = ServicemanFactory(
        first_name="Chidi", last_name="Eze", profile__categories=[category], profile__is_available=False
    )
    ServiceRequestFactory(status=S.ASSIGNED, primary_serviceman=preferred)  # active as primary
    ServiceRequestFactory(status=S.IN_PROGRESS, backup_serviceman=preferred)  # active as backup
    ServiceRequestFactory(status=S.COMPLETED, primary_serviceman=preferred)  # finished: not counted
    with_preference = awaiting_assignment(category, client=client, preferred_serviceman=preferred)
    without = awaiting_assignment(category, client=client, created_at=with_preference.created_at + timedelta(1))

    response = await api.get(QUEUE, user=admin_user)

    by_id = {item["id"]: item for item in response.data["results"]}
    item = by_id[with_preference.id]
    assert item["client"] == {"id": client.id, "name": "Ada Obi", "phone": "+2348031112222", "email": "ada@example.ng"}
    assert item["preferred_serviceman"] == {
        "id": preferred.id,
        "name": "Chidi Eze",
        "is_available": False,
        "active_jobs": 2,
    }
    assert item["category"] == {"id": category.id, "name": category.name}
    assert item["booking_fee"] == "2000.00" and item["address"] == with_preference.address
    assert by_id[without.id]["preferred_serviceman"] is None


def count_queries(monkeypatch):
    executed = []
    real = database.obj.execute_sql
    monkeypatch.setattr(
        database.obj, "execute_sql", lambda sql, *args, **kw: executed.append(sql) or real(sql, *args, **kw)
    )
    return executed


def queue_page(admin, page_size):
    return paginate(
        assignment.unassigned_requests(admin),
        UnassignedRequestSchema(),
        {"page": 1, "page_size": page_size},
        lambda page: f"?page={page}",
        assignment.queue_details,
    )


def test_a_queue_page_costs_the_same_few_queries_for_5_or_25_rows(monkeypatch, admin_user, category):
    def fill(count):
        for _ in range(count):
            [preferred] = servicemen(category, 1)
            ServiceRequestFactory(status=S.ASSIGNED, backup_serviceman=preferred)
            paid(awaiting_assignment(category, preferred_serviceman=preferred), NOW)

    fill(5)
    executed = count_queries(monkeypatch)
    small = queue_page(admin_user, 5)  # full, as the later one: a short page needs no COUNT (see the next test)
    queries_for_5 = len(executed)
    fill(20)
    executed.clear()
    full = queue_page(admin_user, 25)

    assert len(small["results"]) == 5 and len(full["results"]) == 25
    assert all(item["preferred_serviceman"]["active_jobs"] == 1 for item in full["results"])
    assert len(executed) == queries_for_5 <= 5, executed  # count, page, profiles, primary and backup loads


def test_a_page_that_is_not_full_needs_no_count_query(monkeypatch, admin_user, category):
    for _ in range(3):
        awaiting_assignment(category, preferred_serviceman=servicemen(category, 1)[0])
    executed = count_queries(monkeypatch)
    short = queue_page(admin_user, 25)
    for_short = list(executed)
    executed.clear()
    full = queue_page(admin_user, 3)

    assert short["count"] == full["count"] == 3 and len(short["results"]) == len(full["results"]) == 3
    counts = [sql for sql in executed if sql.startswith("SELECT COUNT(")]
    assert len(counts) == 1, executed
    assert sorted(for_short) == sorted(sql for sql in executed if sql not in counts), (for_short, executed)


@pytest.mark.gen_test
async def test_the_queue_pages_25_rows(api, admin_user, category):
    for _ in range(30):
        awaiting_assignment(category, preferred_serviceman=servicemen(category, 1)[0])
    response = await api.get(QUEUE + "?page_size=25", user=admin_user)
    assert response.status == 200 and len(response.data["results"]) == 25 and response.data["count"] == 30
    assert response.data["next"] and response.data["previous"] is None


# --- assigning ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_assigning_places_both_servicemen_and_moves_the_request_once(api, admin_user, category):
    request = awaiting_assignment(category)
    primary, backup = servicemen(category)

    response = await api.post(assign_path(request), team_body(primary, backup), user=admin_user)

    assert response.status == 200, response
    assert response.data["status"] == S.ASSIGNED
    assert (response.data["primary_serviceman_id"], response.data["backup_serviceman_id"]) == (primary.id, backup.id)
    assert response.data["warnings"] == []
    row = stored(request)
    assert (row.status, row.primary_serviceman_id, row.backup_serviceman_id) == (S.ASSIGNED, primary.id, backup.id)
    [event] = events_of(request)
    assert (event.type, event.actor_id) == ("serviceman_assigned", admin_user.id)
    assert (event.from_status, event.to_status) == (S.PENDING_ADMIN_ASSIGNMENT, S.ASSIGNED)
    assert event.payload["serviceman_ids"] == [primary.id, backup.id]


def test_both_servicemen_are_told_with_the_client_details_and_the_emergency_highlighted(
    mail_pipeline, mailbox, category
):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    client = ClientFactory(first_name="Ngozi", last_name="Ade", phone="+2348098765432")
    request = awaiting_assignment(
        category,
        client=client,
        is_emergency=True,
        address="3 Adeola Odeku, VI",
        description="No power in the whole flat.",
    )
    primary, backup = servicemen(category)

    assignment.assign_servicemen(admin, request.id, primary_serviceman_id=primary.id, backup_serviceman_id=backup.id)
    pipeline.run()

    for serviceman in (primary, backup):
        [note] = notes_of(serviceman)
        assert note.notification_type == "serviceman_assigned" and note.title.startswith("[EMERGENCY]")
        for detail in (
            "Ngozi Ade",
            "+2348098765432",
            "3 Adeola Odeku, VI",
            "No power in the whole flat.",
            request.booking_date.isoformat(),
            primary.full_name,
            backup.full_name,
        ):
            assert detail in note.message, detail
        assert note.payload["is_emergency"] is True and note.sent_to_email
        [sent] = [m for m in mailbox.messages if serviceman.email in m.rcpt_tos]
        text = email_text(sent)
        assert "EMERGENCY" in text and "+2348098765432" in text and "treat it as a priority" in text
    assert not notes_of(client) and not notes_of(admin)


@pytest.mark.gen_test
async def test_the_admin_may_set_the_emergency_flag_while_assigning_and_the_paid_fee_stays(api, admin_user, category):
    request = awaiting_assignment(category)
    primary, backup = servicemen(category)

    response = await api.post(assign_path(request), team_body(primary, backup, is_emergency=True), user=admin_user)

    assert response.status == 200 and response.data["is_emergency"] is True, response
    assert response.data["booking_fee"] == "2000.00" and stored(request).booking_fee == Decimal("2000.00")
    assert [e.type for e in events_of(request)] == ["serviceman_assigned", "emergency_changed"]
    assert events_of(request, "emergency_changed")[0].payload == {
        "previous": False,
        "is_emergency": True,
        "service_request_id": request.id,
    }
    assert events_of(request, "serviceman_assigned")[0].payload["is_emergency"] is True


@pytest.mark.gen_test
@pytest.mark.parametrize("flag", [None, True])
async def test_an_unchanged_emergency_flag_records_no_change(api, admin_user, category, flag):
    request = awaiting_assignment(category, is_emergency=True)
    primary, backup = servicemen(category)
    body = team_body(primary, backup) if flag is None else team_body(primary, backup, is_emergency=flag)

    response = await api.post(assign_path(request), body, user=admin_user)

    assert response.status == 200 and response.data["is_emergency"] is True, response
    assert [e.type for e in events_of(request)] == ["serviceman_assigned"]


@pytest.mark.gen_test
async def test_the_admin_may_clear_the_emergency_flag_while_assigning(api, admin_user, category):
    request = awaiting_assignment(category, is_emergency=True, booking_fee=Decimal("5000.00"))
    primary, backup = servicemen(category)
    response = await api.post(assign_path(request), team_body(primary, backup, is_emergency=False), user=admin_user)
    assert response.status == 200 and response.data["is_emergency"] is False, response
    assert stored(request).booking_fee == Decimal("5000.00")
    assert events_of(request, "emergency_changed")[0].payload["previous"] is True


def _unassignable(category):
    """Refused servicemen by kind; each a user id."""
    other = CategoryFactory()
    inactive = ServicemanFactory(profile__categories=[category], is_active=False)
    return {
        "pending approval": ServicemanFactory(
            profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
        ).id,
        "rejected": ServicemanFactory(
            profile__categories=[category], profile__approval_status=ApprovalStatus.REJECTED
        ).id,
        "suspended": ServicemanFactory(
            profile__categories=[category], profile__approval_status=ApprovalStatus.SUSPENDED
        ).id,
        "inactive": inactive.id,
        "a client": ClientFactory().id,
        "an admin": AdminFactory().id,
        "nobody": 999999,
        "outside the category": ServicemanFactory(profile__categories=[other]).id,
    }


UNASSIGNABLE = [
    "pending approval",
    "rejected",
    "suspended",
    "inactive",
    "a client",
    "an admin",
    "nobody",
    "outside the category",
]
MESSAGES = {
    "pending approval": "PENDING_APPROVAL",
    "rejected": "REJECTED",
    "suspended": "SUSPENDED",
    "inactive": "deactivated",
    "a client": "No serviceman",
    "an admin": "No serviceman",
    "nobody": "No serviceman",
    "outside the category": "confirm_outside_category",
}


@pytest.mark.gen_test
@pytest.mark.parametrize("role", ["primary", "backup"])
@pytest.mark.parametrize("kind", UNASSIGNABLE)
async def test_a_serviceman_who_cannot_be_assigned_is_refused_by_field(api, admin_user, category, kind, role):
    request = awaiting_assignment(category)
    [good] = servicemen(category, 1)
    bad = _unassignable(category)[kind]
    body = {
        "primary_serviceman_id": bad if role == "primary" else good.id,
        "backup_serviceman_id": bad if role == "backup" else good.id,
    }
    before = snapshot()

    response = await api.post(assign_path(request), body, user=admin_user)

    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {f"{role}_serviceman_id"}, response
    assert MESSAGES[kind] in error["fields"][f"{role}_serviceman_id"][0]
    assert MESSAGES[kind] in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_the_same_serviceman_cannot_be_primary_and_backup(api, admin_user, category):
    request = awaiting_assignment(category)
    [serviceman] = servicemen(category, 1)
    before = snapshot()
    response = await api.post(assign_path(request), team_body(serviceman, serviceman), user=admin_user)
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"backup_serviceman_id"} and "different" in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_both_refused_servicemen_are_named_at_once(api, admin_user, category):
    request = awaiting_assignment(category)
    refused = _unassignable(category)
    body = {"primary_serviceman_id": refused["suspended"], "backup_serviceman_id": refused["a client"]}
    error = assert_error(await api.post(assign_path(request), body, user=admin_user), 422)
    assert set(error["fields"]) == {"primary_serviceman_id", "backup_serviceman_id"}


@pytest.mark.gen_test
async def test_a_serviceman_outside_the_category_is_assigned_once_confirmed(api, admin_user, category):
    request = awaiting_assignment(category)
    outsider = ServicemanFactory(profile__categories=[CategoryFactory()])
    [backup] = servicemen(category, 1)

    response = await api.post(
        assign_path(request), team_body(outsider, backup, confirm_outside_category=True), user=admin_user
    )

    assert response.status == 200, response
    assert stored(request).primary_serviceman_id == outsider.id
    # Confirming does not let an unapproved one through.
    other = awaiting_assignment(category)
    suspended = ServicemanFactory(
        profile__categories=[CategoryFactory()], profile__approval_status=ApprovalStatus.SUSPENDED
    )
    response = await api.post(
        assign_path(other), team_body(suspended, backup, confirm_outside_category=True), user=admin_user
    )
    assert_error(response, 422)


@pytest.mark.gen_test
@pytest.mark.parametrize("status", NOT_AWAITING_ASSIGNMENT)
async def test_assigning_in_any_other_state_is_409_and_says_the_state(api, admin_user, category, status):
    request = ServiceRequestFactory(category=category, status=status)
    primary, backup = servicemen(category)
    before = snapshot()
    response = await api.post(assign_path(request), team_body(primary, backup), user=admin_user)
    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_only_admins_assign_and_a_deleted_or_missing_request_is_404(api, category, client_user):
    request = awaiting_assignment(category, client=client_user)
    deleted = awaiting_assignment(category, is_deleted=True)
    primary, backup = servicemen(category)
    admin = AdminFactory()
    before = snapshot()
    for user in (client_user, primary):
        assert_error(
            await api.post(assign_path(request), team_body(primary, backup), user=user), 403, "permission_denied"
        )
    for path in (assign_path(deleted), "/api/admin/requests/999999/assign/"):
        assert_error(await api.post(path, team_body(primary, backup), user=admin), 404)
    assert snapshot() == before


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_assignments_of_one_request_have_exactly_one_winner(api, admin_user, category):
    request = awaiting_assignment(category)
    teams = [servicemen(category) for _ in range(6)]
    admins = [admin_user] + [AdminFactory() for _ in range(5)]

    responses = await asyncio.gather(
        *(
            api.post(assign_path(request), team_body(*team), user=admin)
            for team, admin in zip(teams, admins, strict=True)
        )
    )

    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 5, responses
    [winner] = [team for team, r in zip(teams, responses, strict=True) if r.status == 200]
    row = stored(request)
    assert (row.status, row.primary_serviceman_id, row.backup_serviceman_id) == (S.ASSIGNED, winner[0].id, winner[1].id)
    assert len(events_of(request, "serviceman_assigned")) == 1


# --- availability and load: warnings, never refusals -------------------------------------------------


@pytest.mark.gen_test
async def test_booking_a_busy_or_unavailable_serviceman_is_allowed_with_warnings(api, client_user, category):
    unavailable = ServicemanFactory(profile__categories=[category], profile__is_available=False)
    busy = ServicemanFactory(profile__categories=[category])
    ServiceRequestFactory(status=S.NEGOTIATING, backup_serviceman=busy)  # busy as a backup counts too
    ServiceRequestFactory(status=S.ASSIGNED, primary_serviceman=busy)
    [idle] = servicemen(category, 1)
    ServiceRequestFactory(status=S.COMPLETED, primary_serviceman=idle)
    day = (NOW + timedelta(days=10)).date()

    def body(serviceman=None):
        extra = {"serviceman_id": serviceman.id} if serviceman else {}
        return {
            "category_id": category.id,
            "booking_date": str(day),
            "address": "1 Marina, Lagos",
            "description": "Leaking tap.",
            **extra,
        }

    with time_machine.travel(NOW, tick=False):
        responses = {
            name: await api.post("/api/requests/", body(serviceman), user=client_user)
            for name, serviceman in [("unavailable", unavailable), ("busy", busy), ("idle", idle), ("none", None)]
        }

    assert {name: r.status for name, r in responses.items()} == dict.fromkeys(responses, 201)
    assert responses["unavailable"].data["warnings"] == ["The preferred serviceman is not available at the moment."]
    assert responses["busy"].data["warnings"] == ["The preferred serviceman already has 2 active jobs."]
    assert responses["idle"].data["warnings"] == [] and responses["none"].data["warnings"] == []
    assert responses["busy"].data["preferred_serviceman_id"] == busy.id


@pytest.mark.gen_test
async def test_assigning_busy_or_unavailable_servicemen_is_allowed_with_warnings(api, admin_user, category):
    request = awaiting_assignment(category)
    busy = ServicemanFactory(profile__categories=[category])
    ServiceRequestFactory(status=S.IN_PROGRESS, primary_serviceman=busy)
    unavailable = ServicemanFactory(profile__categories=[category], profile__is_available=False)

    response = await api.post(assign_path(request), team_body(busy, unavailable), user=admin_user)

    assert response.status == 200, response
    assert response.data["warnings"] == [
        "The primary serviceman already has 1 active job.",
        "The backup serviceman is not available at the moment.",
    ]
    assert stored(request).status == S.ASSIGNED


# --- a serviceman declines ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_primary_declining_promotes_the_backup_at_once(api, category):
    request = assigned(category)
    primary, backup = request.primary_serviceman, request.backup_serviceman

    response = await api.post(decline_path(request), {"reason": "My van broke down."}, user=primary)

    assert response.status == 200, response
    row = stored(request)
    assert (row.status, row.primary_serviceman_id, row.backup_serviceman_id) == (S.ASSIGNED, backup.id, None)
    [event] = events_of(request)
    assert (event.type, event.actor_id, event.from_status, event.to_status) == (
        "assignment_declined",
        primary.id,
        None,
        None,
    )
    assert event.payload["declined_as"] == "primary" and event.payload["reason"] == "My van broke down."
    assert event.payload["promoted_serviceman_id"] == backup.id
    # The one who declined no longer sees the job.
    assert_error(await api.get(f"/api/requests/{request.id}/", user=primary), 404)


@pytest.mark.gen_test
async def test_the_backup_declining_leaves_the_primary_and_no_backup(api, category):
    request = assigned(category)
    response = await api.post(decline_path(request), {"reason": "Travelling."}, user=request.backup_serviceman)
    assert response.status == 200, response
    row = stored(request)
    assert (row.primary_serviceman_id, row.backup_serviceman_id) == (request.primary_serviceman_id, None)
    [event] = events_of(request, "assignment_declined")
    assert event.payload["declined_as"] == "backup" and event.payload["promoted_serviceman_id"] is None


def test_a_decline_tells_the_admins_and_the_promoted_backup(mail_pipeline, mailbox, category):
    settings, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    request = assigned(category)
    primary, backup = request.primary_serviceman, request.backup_serviceman

    assignment.decline_assignment(primary, request.id, "Family emergency.")
    pipeline.run()

    for user in (*admins, backup):
        [note] = notes_of(user)
        assert note.notification_type == "assignment_declined"
        assert primary.full_name in note.message and "Family emergency." in note.message
        assert f"{backup.full_name}, the backup, is now the primary serviceman" in note.message
        assert "name a new backup" in note.message
        assert [m for m in mailbox.messages if user.email in m.rcpt_tos]
    assert not notes_of(primary) and not notes_of(request.client)


def test_a_backup_declining_tells_only_the_admins(mail_pipeline, category):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = assigned(category)
    assignment.decline_assignment(request.backup_serviceman, request.id, "Overbooked.")
    pipeline.run()
    [note] = notes_of(admin)
    assert "no backup now" in note.message
    assert not notes_of(request.primary_serviceman) and not notes_of(request.backup_serviceman)


def test_the_primary_declining_with_no_backup_leaves_nobody_and_says_so(category):
    [primary] = servicemen(category, 1)
    request = ServiceRequestFactory(category=category, status=S.ASSIGNED, primary_serviceman=primary)
    assignment.decline_assignment(primary, request.id, "Ill.")
    row = stored(request)
    assert (row.status, row.primary_serviceman_id, row.backup_serviceman_id) == (S.ASSIGNED, None, None)
    assert "Nobody is assigned now" in events_of(request, "assignment_declined")[0].payload["outcome"]


@pytest.mark.gen_test
async def test_a_serviceman_not_on_the_job_gets_404_and_other_roles_403(api, category, admin_user):
    request = assigned(category)
    [stranger] = servicemen(category, 1)
    preferred_only = ServicemanFactory(profile__categories=[category])
    ServiceRequest.update(preferred_serviceman=preferred_only).where(ServiceRequest.id == request.id).execute()
    before = snapshot()
    for user in (stranger, preferred_only):
        assert_error(await api.post(decline_path(request), {"reason": "x"}, user=user), 404)
    assert_error(await api.post("/api/serviceman/requests/999999/decline/", {"reason": "x"}, user=stranger), 404)
    for user in (admin_user, request.client):
        assert_error(await api.post(decline_path(request), {"reason": "x"}, user=user), 403)
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("status", AFTER_INSPECTION)
async def test_declining_after_the_inspection_is_409(api, category, status):
    request = assigned(category)
    ServiceRequest.update(status=status).where(ServiceRequest.id == request.id).execute()
    before = snapshot()
    response = await api.post(decline_path(request), {"reason": "Too far."}, user=request.primary_serviceman)
    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_a_decline_needs_a_reason(api, category):
    request = assigned(category)
    for body in ({}, {"reason": ""}, {"reason": "x" * 2001}):
        error = assert_error(await api.post(decline_path(request), body, user=request.backup_serviceman), 422)
        assert set(error["fields"]) == {"reason"}
    assert stored(request).backup_serviceman_id == request.backup_serviceman_id


# --- promote the backup, reassign -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_promoting_the_backup_removes_the_old_primary(api, admin_user, category):
    request = assigned(category)
    primary, backup = request.primary_serviceman, request.backup_serviceman

    response = await api.post(f"/api/admin/requests/{request.id}/promote-backup/", user=admin_user)

    assert response.status == 200, response
    assert (response.data["primary_serviceman_id"], response.data["backup_serviceman_id"]) == (backup.id, None)
    assert stored(request).status == S.ASSIGNED
    removed, placed = events_of(request)
    assert (removed.type, removed.payload["serviceman_id"], removed.payload["role"]) == (
        "assignment_removed",
        primary.id,
        "primary",
    )
    assert (placed.type, placed.payload["serviceman_ids"]) == ("serviceman_assigned", [backup.id])


def test_promotion_tells_the_removed_primary_and_the_new_one(mail_pipeline, category):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = assigned(category)
    primary, backup = request.primary_serviceman, request.backup_serviceman

    assignment.promote_backup(admin, request.id)
    pipeline.run()

    [removed] = notes_of(primary)
    assert removed.notification_type == "assignment_removed" and "no longer" in removed.title
    [placed] = notes_of(backup)
    assert placed.notification_type == "serviceman_assigned"
    assert f"Primary: {backup.full_name}; backup: nobody yet" in placed.message
    assert not notes_of(admin)


@pytest.mark.gen_test
async def test_promoting_without_a_backup_or_in_another_state_is_409(api, admin_user, category):
    [primary] = servicemen(category, 1)
    lone = ServiceRequestFactory(category=category, status=S.ASSIGNED, primary_serviceman=primary)
    inspected = assigned(category, status=S.SERVICEMAN_INSPECTED)
    waiting = awaiting_assignment(category)
    before = snapshot()
    assert (
        "no backup"
        in assert_error(await api.post(f"/api/admin/requests/{lone.id}/promote-backup/", user=admin_user), 409)[
            "message"
        ]
    )
    for request in (inspected, waiting):
        response = await api.post(f"/api/admin/requests/{request.id}/promote-backup/", user=admin_user)
        assert request.status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_a_suspended_backup_is_not_promoted(api, admin_user, category):
    request = assigned(category)
    ServicemanProfile.update(approval_status=ApprovalStatus.SUSPENDED).where(
        ServicemanProfile.user == request.backup_serviceman_id
    ).execute()
    response = await api.post(f"/api/admin/requests/{request.id}/promote-backup/", user=admin_user)
    assert "SUSPENDED" in assert_error(response, 409)["message"]
    assert stored(request).primary_serviceman_id == request.primary_serviceman_id


def reassign_path(request):
    return f"/api/admin/requests/{request.id}/reassign/"


@pytest.mark.gen_test
async def test_reassigning_the_primary_removes_only_the_old_primary(api, admin_user, category):
    request = assigned(category)
    old_primary, backup = request.primary_serviceman, request.backup_serviceman
    [newcomer] = servicemen(category, 1)

    response = await api.post(reassign_path(request), {"primary_serviceman_id": newcomer.id}, user=admin_user)

    assert response.status == 200, response
    assert response.data["warnings"] == []
    row = stored(request)
    assert (row.status, row.primary_serviceman_id, row.backup_serviceman_id) == (S.ASSIGNED, newcomer.id, backup.id)
    removed, placed = events_of(request)
    assert (removed.type, removed.payload["serviceman_id"]) == ("assignment_removed", old_primary.id)
    assert (placed.type, placed.payload["serviceman_ids"]) == ("serviceman_assigned", [newcomer.id])


def test_reassignment_tells_the_removed_and_the_newcomer_but_not_the_one_who_stays(mail_pipeline, mailbox, category):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = assigned(category)
    old_primary, backup = request.primary_serviceman, request.backup_serviceman
    [newcomer] = servicemen(category, 1)

    assignment.reassign(admin, request.id, primary_serviceman_id=newcomer.id)
    pipeline.run()

    [removed] = notes_of(old_primary)
    assert removed.notification_type == "assignment_removed" and removed.sent_to_email
    assert request.address in removed.message
    [placed] = notes_of(newcomer)
    assert placed.notification_type == "serviceman_assigned" and request.client.phone in placed.message
    assert not notes_of(backup)
    assert {tuple(m.rcpt_tos) for m in mailbox.messages} == {(old_primary.email,), (newcomer.email,)}


@pytest.mark.gen_test
async def test_reassigning_both_or_swapping_them(api, admin_user, category):
    request = assigned(category)
    primary, backup = request.primary_serviceman, request.backup_serviceman

    swapped = await api.post(reassign_path(request), team_body(backup, primary), user=admin_user)

    assert swapped.status == 200, swapped
    assert [e.type for e in events_of(request)] == ["serviceman_assigned"]  # nobody removed, both in new roles
    assert events_of(request)[0].payload["serviceman_ids"] == [backup.id, primary.id]
    new_primary, new_backup = servicemen(category)
    response = await api.post(reassign_path(request), team_body(new_primary, new_backup), user=admin_user)
    assert response.status == 200, response
    removed = {e.payload["serviceman_id"] for e in events_of(request, "assignment_removed")}
    assert removed == {primary.id, backup.id}


@pytest.mark.gen_test
async def test_reassigning_the_same_team_changes_nothing(api, admin_user, category):
    request = assigned(category)
    before = snapshot()
    response = await api.post(
        reassign_path(request), team_body(request.primary_serviceman, request.backup_serviceman), user=admin_user
    )
    assert response.status == 200 and snapshot() == before


@pytest.mark.gen_test
async def test_reassigning_fills_an_empty_backup_after_a_decline(api, admin_user, category):
    request = assigned(category)
    await api.post(decline_path(request), {"reason": "Busy."}, user=request.backup_serviceman)
    [newcomer] = servicemen(category, 1)
    response = await api.post(reassign_path(request), {"backup_serviceman_id": newcomer.id}, user=admin_user)
    assert response.status == 200, response
    assert stored(request).backup_serviceman_id == newcomer.id
    assert events_of(request, "serviceman_assigned")[-1].payload["serviceman_ids"] == [newcomer.id]


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", UNASSIGNABLE)
async def test_reassigning_checks_the_servicemen_like_assigning(api, admin_user, category, kind):
    request = assigned(category)
    bad = _unassignable(category)[kind]
    before = snapshot()
    response = await api.post(reassign_path(request), {"backup_serviceman_id": bad}, user=admin_user)
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"backup_serviceman_id"} and MESSAGES[kind] in error["message"]
    assert snapshot() == before


@pytest.mark.gen_test
async def test_reassign_refusals(api, admin_user, category):
    request = assigned(category)
    lone = ServiceRequestFactory(category=category, status=S.ASSIGNED)
    outsider = ServicemanFactory(profile__categories=[CategoryFactory()])
    before = snapshot()
    cases = [
        ({}, "primary_serviceman_id"),  # nobody named
        ({"primary_serviceman_id": request.backup_serviceman_id}, "primary_serviceman_id"),  # same as the backup
        ({"backup_serviceman_id": request.primary_serviceman_id}, "backup_serviceman_id"),  # same as the primary
    ]
    for body, field in cases:
        error = assert_error(await api.post(reassign_path(request), body, user=admin_user), 422)
        assert set(error["fields"]) == {field}, (body, error)
    error = assert_error(
        await api.post(reassign_path(lone), {"backup_serviceman_id": outsider.id}, user=admin_user), 422
    )
    assert set(error["fields"]) == {"primary_serviceman_id"}  # no primary to keep: one must be named
    assert snapshot() == before
    response = await api.post(
        reassign_path(request), {"backup_serviceman_id": outsider.id, "confirm_outside_category": True}, user=admin_user
    )
    assert response.status == 200 and stored(request).backup_serviceman_id == outsider.id


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [s for s in S.ALL if s != S.ASSIGNED])
async def test_reassigning_outside_assigned_is_409(api, admin_user, category, status):
    request = assigned(category, status=status)
    [newcomer] = servicemen(category, 1)
    before = snapshot()
    response = await api.post(reassign_path(request), {"primary_serviceman_id": newcomer.id}, user=admin_user)
    assert status in assert_error(response, 409, "invalid_transition")["message"]
    assert snapshot() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("action", ["promote-backup", "reassign"])
async def test_only_admins_change_the_team(api, category, action):
    request = assigned(category)
    [newcomer] = servicemen(category, 1)
    before = snapshot()
    for user in (request.client, request.primary_serviceman):
        response = await api.post(
            f"/api/admin/requests/{request.id}/{action}/",
            {"primary_serviceman_id": newcomer.id} if action == "reassign" else None,
            user=user,
        )
        assert_error(response, 403, "permission_denied")
    assert snapshot() == before


def test_domain_functions_refuse_the_wrong_role_too(category):
    request = awaiting_assignment(category)
    primary, backup = servicemen(category)
    with pytest.raises(PermissionDenied):
        assignment.assign_servicemen(
            primary, request.id, primary_serviceman_id=primary.id, backup_serviceman_id=backup.id
        )
    with pytest.raises(PermissionDenied):
        assignment.unassigned_requests(request.client)
    with pytest.raises(PermissionDenied):
        assignment.decline_assignment(User.get_by_id(request.client_id), request.id, "x")
