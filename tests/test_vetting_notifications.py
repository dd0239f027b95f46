"""Vetting notifications: admins hear of each application; the serviceman hears each decision (with the
reason); a suspension flags the serviceman's open jobs to the admins. Account events have no request:
the pipeline, the REST list and the websocket carry them with service_request_id null."""

import email
import email.policy

import pytest

from models import ApprovalStatus, Event, Notification, RequestStatus, ServicemanProfile
from models.actions import accounts
from models.actions.vetting import DECISION_EVENTS
from models.foundation.errors import InvalidTransition

from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory
from .ws_support import receive, send

S = RequestStatus


def notes_of(user, kind=None):
    query = Notification.select().where(Notification.user == user.id)
    if kind:
        query = query.where(Notification.notification_type == kind)
    return list(query.order_by(Notification.id))


def email_to(mailbox, user):
    [message] = [m for m in mailbox.messages if user.email in m.rcpt_tos]
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    return parsed["Subject"], "\n".join(
        part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text"
    )


def assert_account_notification(note):
    assert note.service_request_id is None
    assert note.payload["service_request_id"] is None and note.payload["is_emergency"] is False
    assert note.sent_to_email and note.email_sent_at is not None


def test_admins_are_told_of_each_application(mail_pipeline, mailbox, category):
    settings, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    retired = AdminFactory(is_active=False)
    client = ClientFactory()

    applicant = accounts.register(
        settings,
        pipeline.transport,
        email="emeka@example.ng",
        password="Lekki-Pipes-2026",
        first_name="Emeka",
        last_name="Okonkwo",
        phone="+2348055550178",
        role="serviceman",
        category_ids=[category.id],
        years_of_experience=9,
    )
    pipeline.run()

    for admin in admins:
        [note] = notes_of(admin)
        assert note.notification_type == "serviceman_applied"
        assert note.title == "New serviceman application: Emeka Okonkwo"
        for detail in ("emeka@example.ng", "+2348055550178", category.name, "9 years"):
            assert detail in note.message, detail
        assert note.payload["serviceman_id"] == applicant.id
        assert_account_notification(note)
        subject, text = email_to(mailbox, admin)
        assert subject == note.title and "emeka@example.ng" in text
        assert "about your account" in text and "booking #" not in text
    assert not notes_of(retired) and not notes_of(client) and not notes_of(applicant)


def test_a_client_registering_tells_no_one(mail_pipeline, mailbox):
    settings, pipeline = mail_pipeline
    AdminFactory()
    accounts.register(
        settings,
        pipeline.transport,
        email="ada@example.ng",
        password="Lekki-Pipes-2026",
        first_name="Ada",
        last_name="Obi",
        phone="+2348012345678",
        role="client",
    )
    pipeline.run()
    assert Notification.select().count() == 0 and Event.select().count() == 0


DECISIONS = [  # (from status, action, reason, words the serviceman reads)
    (ApprovalStatus.PENDING_APPROVAL, "approve", "", "application is approved"),
    (ApprovalStatus.PENDING_APPROVAL, "reject", "The trade certificate is unreadable.", "not approve"),
    (ApprovalStatus.APPROVED, "suspend", "Two no-shows this month.", "suspended"),
    (ApprovalStatus.SUSPENDED, "reinstate", "", "suspension is lifted"),
]


@pytest.mark.parametrize("start,action,reason,words", DECISIONS)
def test_the_serviceman_is_told_each_decision_with_its_reason(
    mail_pipeline, mailbox, category, start, action, reason, words
):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    serviceman = ServicemanFactory(profile__categories=[category], profile__approval_status=start)

    accounts.set_approval(pipeline.transport, serviceman.id, action, reason, actor=admin)
    pipeline.run()

    [note] = notes_of(serviceman)
    assert note.notification_type == DECISION_EVENTS[action]
    assert words in note.message and reason in note.message
    assert note.payload["reason"] == reason and note.payload["serviceman_id"] == serviceman.id
    assert_account_notification(note)
    subject, text = email_to(mailbox, serviceman)
    assert subject == note.title and words in text and reason in text
    [event] = Event.select().where(Event.type == DECISION_EVENTS[action])
    assert event.actor_id == admin.id and event.service_request_id is None
    assert not notes_of(admin)  # no open jobs: nothing for the admins


def test_a_suspension_flags_each_open_job_to_the_admins(mail_pipeline, mailbox, category):
    settings, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    suspended, other = (ServicemanFactory(profile__categories=[category]) for _ in range(2))
    as_primary = ServiceRequestFactory(
        category=category, status=S.ASSIGNED, primary_serviceman=suspended, backup_serviceman=other, is_emergency=True
    )
    as_backup = ServiceRequestFactory(
        category=category, status=S.IN_PROGRESS, primary_serviceman=other, backup_serviceman=suspended
    )
    untouched = [
        ServiceRequestFactory(
            category=category, status=S.COMPLETED, primary_serviceman=suspended, backup_serviceman=other
        ),
        ServiceRequestFactory(category=category, status=S.PENDING_ADMIN_ASSIGNMENT, preferred_serviceman=suspended),
        ServiceRequestFactory(
            category=category, status=S.ASSIGNED, primary_serviceman=other, is_deleted=True, backup_serviceman=suspended
        ),
    ]

    accounts.set_approval(pipeline.transport, suspended.id, "suspend", "Two no-shows this month.", actor=admins[0])
    pipeline.run()

    for admin in admins:  # the one who suspended too: they now have jobs to reassign
        flags = notes_of(admin, "assigned_serviceman_suspended")
        assert [(n.service_request_id, n.payload["assigned_as"]) for n in flags] == [
            (as_primary.id, "primary"),
            (as_backup.id, "backup"),
        ]
        assert flags[0].title.startswith("[EMERGENCY]") and flags[0].payload["is_emergency"] is True
        for note in flags:
            assert suspended.full_name in note.message and "Two no-shows this month." in note.message
            assert note.sent_to_email
    # On each job's own timeline too, and on no other job's.
    flagged = Event.select().where(Event.type == "assigned_serviceman_suspended")
    assert sorted(e.service_request_id for e in flagged) == [as_primary.id, as_backup.id]
    assert all(not notes_of(u, "assigned_serviceman_suspended") for u in (suspended, other))
    assert {r.id for r in untouched}.isdisjoint(e.service_request_id for e in flagged)


def test_a_decision_raced_by_another_admin_is_announced_once(category, monkeypatch):
    admin = AdminFactory()
    serviceman = ServicemanFactory(
        profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
    )
    # A second admin's request read the profile before the first decision committed.
    stale = accounts.serviceman_profile(serviceman.id)
    accounts.set_approval(None, serviceman.id, "approve", actor=admin)
    monkeypatch.setattr(accounts, "serviceman_profile", lambda user_id: stale)

    with pytest.raises(InvalidTransition):
        accounts.set_approval(None, serviceman.id, "reject", "late", actor=admin)

    assert ServicemanProfile.get_by_id(stale.id).approval_status == ApprovalStatus.APPROVED
    assert [e.type for e in Event.select()] == ["serviceman_approved"]


@pytest.mark.gen_test
async def test_account_notifications_reach_the_rest_list_and_the_socket(api, app, sockets, admin_user, category):
    serviceman = ServicemanFactory(
        profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
    )
    ws, _ = await sockets.signed_in(api.token(serviceman))

    response = await api.post(f"/api/admin/servicemen/{serviceman.id}/approve/", {}, user=admin_user)
    assert response.status == 200, response

    pushed = await receive(ws)
    while pushed["type"] != "notification":
        pushed = await receive(ws)
    assert pushed["notification"]["notification_type"] == "serviceman_approved"
    assert pushed["notification"]["service_request_id"] is None
    assert pushed["notification"]["payload"]["is_emergency"] is False
    listed = await api.get("/api/notifications/", user=serviceman)
    assert listed.status == 200 and listed.data["count"] == 1
    [item] = listed.data["results"]
    assert (item["notification_type"], item["service_request_id"]) == ("serviceman_approved", None)
    assert (await api.get("/api/notifications/unread-count/", user=serviceman)).data["count"] == 1
    # A resumed socket replays it too.
    again, _ = await sockets.signed_in(api.token(serviceman))
    await send(again, {"type": "resume", "since": 0})
    replayed = await receive(again)
    assert replayed["type"] == "notification" and replayed["notification"]["id"] == item["id"]
