"""One booking from registration to rating through the HTTP API, as the three parties live it.

Given a client, two servicemen who applied and an admin, each with a dashboard socket open, when the
booking goes through every step (fee through Paystack, assignment, estimate, markup, a negotiation,
the final payment, work, completion, rating), then every party was told of exactly the steps that
concern them on both channels: notification rows, live socket pushes, and emails in the SMTP server.
"""

from collections import Counter
from datetime import timedelta

import pytest

from models import Notification, RequestStatus, ServicemanProfile, ServiceRequest
from models.foundation.clock import platform_today
from workers import runtime

from .account_support import account_email, links, path_of, register
from .booking_support import assigned_estimated_and_priced, book
from .conftest import make_settings, serve_app
from .contract_support import ok
from .factories import AdminFactory, CategoryFactory
from .paystack_support import pay
from .ws_support import receive

# What each party must have been told, by notification type, once each.
EXPECTED = {
    "client": {"request_created", "payment_receipt", "final_cost_set", "negotiation_message", "job_confirmed"},
    "admin": {"payment_received", "estimate_submitted", "negotiation_message", "payment_confirmed", "job_completed"},
    "primary": {"serviceman_assigned", "payment_confirmed", "work_started", "rating_received"},
    "backup": {"serviceman_assigned"},
}
# Before the booking: the servicemen's applications and approvals (account notifications, no request).
VETTING = {"admin": {"serviceman_applied"}, "primary": {"serviceman_approved"}, "backup": {"serviceman_approved"}}
VETTING_TYPES = {"serviceman_applied", "serviceman_approved"}


@pytest.fixture
def app(database, mailbox):
    yield from serve_app(make_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false"))


async def pushes_until(ws, wanted, seen):
    """Read the socket until every notification type in `wanted` has arrived (or fail on a timeout)."""
    while not wanted <= set(seen):
        message = await receive(ws)
        assert message is not None, f"socket closed; still waiting for {wanted - set(seen)}"
        if message["type"] == "notification":
            seen[message["notification"]["notification_type"]] += 1
    return seen


@pytest.mark.gen_test(timeout=60)
async def test_a_booking_from_registration_to_rating(api, app, settings, paystack, mailbox, sockets):
    category = CategoryFactory(name="Plumbing")
    admin = AdminFactory()
    client, _ = await register(api, "ada@example.ng", "client")
    # Paying needs a confirmed address: the client opens the link in the verification email.
    verification = await account_email(mailbox, client.email, "confirm your email")
    await ok(await api.get(path_of(links(verification)["text"])))
    primary, _ = await register(api, "emeka@example.ng", "serviceman", category_ids=[category.id], bio="Plumber")
    backup, _ = await register(api, "tunde@example.ng", "serviceman", category_ids=[category.id])
    for serviceman in (primary, backup):
        await ok(await api.post(f"/api/admin/servicemen/{serviceman.id}/approve/", {}, user=admin))
    parties = {"client": client, "admin": admin, "primary": primary, "backup": backup}
    sockets_of = {name: (await sockets.signed_in(api.token(user)))[0] for name, user in parties.items()}

    # The client browses, quotes and books the primary as the preferred serviceman.
    listed = await ok(await api.get(f"/api/categories/{category.id}/servicemen/"))
    assert {s["id"] for s in listed["results"]} == {primary.id, backup.id}
    day = str(platform_today(settings.zone) + timedelta(days=7))
    quote = await ok(await api.get(f"/api/requests/quote/?booking_date={day}", user=client))
    assert quote["booking_fee"] == "2000.00" and quote["is_emergency"] is False
    request_id = (await book(api, client, category, days_ahead=7, serviceman_id=primary.id))["id"]

    # The booking fee through Paystack's checkout and signed webhook.
    await pay(api, paystack, client, request_id, "BOOKING_FEE")
    queue = await ok(await api.get("/api/admin/requests/unassigned/", user=admin))
    assert [r["id"] for r in queue["results"]] == [request_id]

    # Assignment, estimate, markup.
    priced = await assigned_estimated_and_priced(api, admin, request_id, primary, backup)
    assert priced["final_cost"] == "23000.00"

    # The client negotiates; the admin counters; the client accepts the counter.
    proposal = await ok(
        await api.post(
            f"/api/requests/{request_id}/negotiations/",
            {"proposed_amount": "21000.00", "message": "Can you do 21k?"},
            user=client,
        ),
        201,
    )
    counter = await ok(
        await api.post(
            f"/api/negotiations/{proposal['id']}/counter/",
            {"proposed_amount": "22000.00", "message": "22k, final"},
            user=admin,
        ),
        201,
    )
    await ok(await api.post(f"/api/negotiations/{counter['id']}/accept/", {}, user=client))
    agreed = ServiceRequest.get_by_id(request_id)
    assert agreed.status == RequestStatus.AWAITING_PAYMENT and str(agreed.final_cost) == "22000.00"

    # The final payment, the work, completion, and the rating.
    checkout = await pay(api, paystack, client, request_id, "FINAL_PAYMENT")
    assert checkout["amount"] == "22000.00"
    await ok(await api.post(f"/api/admin/requests/{request_id}/start-work/", {}, user=admin))
    await ok(await api.post(f"/api/serviceman/requests/{request_id}/complete/", {}, user=primary))
    await ok(await api.post(f"/api/admin/requests/{request_id}/confirm-completion/", {}, user=admin))
    await ok(
        await api.post(f"/api/requests/{request_id}/rating/", {"rating": 5, "review": "Quick and tidy"}, user=client),
        201,
    )

    final = ServiceRequest.get_by_id(request_id)
    assert final.status == RequestStatus.COMPLETED
    profile = ServicemanProfile.get(ServicemanProfile.user == primary.id)
    assert (profile.jobs_completed, str(profile.rating), profile.rating_count) == (1, "5.00", 1)
    timeline = await ok(await api.get(f"/api/requests/{request_id}/events/", user=client))
    assert [e["to_status"] for e in timeline["results"] if e["to_status"]] == [
        RequestStatus.PENDING_PAYMENT,
        RequestStatus.PENDING_ADMIN_ASSIGNMENT,
        RequestStatus.ASSIGNED,
        RequestStatus.SERVICEMAN_INSPECTED,
        RequestStatus.AWAITING_CLIENT_APPROVAL,
        RequestStatus.NEGOTIATING,
        RequestStatus.NEGOTIATING,
        RequestStatus.AWAITING_PAYMENT,
        RequestStatus.PAYMENT_CONFIRMED,
        RequestStatus.IN_PROGRESS,
        RequestStatus.COMPLETED_BY_SERVICEMAN,
        RequestStatus.COMPLETED,
    ]

    # Channel 1: notification rows, through the REST list.
    for name, user in parties.items():
        listed = await ok(await api.get("/api/notifications/?page_size=100", user=user))
        kinds = Counter(n["notification_type"] for n in listed["results"])
        assert set(kinds) == EXPECTED[name] | VETTING.get(name, set()), (name, kinds)
        assert all(
            n["service_request_id"] == (None if n["notification_type"] in VETTING_TYPES else request_id)
            for n in listed["results"]
        )
    client_kinds = Counter(n.notification_type for n in Notification.select().where(Notification.user == client.id))
    assert client_kinds["payment_receipt"] == 2  # the fee and the final payment
    assert all(
        count == 1 for kind, count in client_kinds.items() if kind not in ("payment_receipt", "negotiation_message")
    )

    # Channel 2: live pushes on each party's socket, the same types.
    for name, ws in sockets_of.items():
        seen = await pushes_until(ws, EXPECTED[name], Counter())
        assert set(seen) - VETTING_TYPES == EXPECTED[name], (name, seen)  # approvals may precede the socket

    # Channel 3: one email per notification, in the SMTP server.
    runtime.transport().shutdown()  # wait for the email jobs still running
    for name, user in parties.items():
        rows = Notification.select().where(Notification.user == user.id).count()
        emails = [m for m in mailbox.messages if user.email in m.rcpt_tos and b"<notification-" in m.content]
        assert len(emails) == rows, (name, len(emails), rows)
        assert all(n.sent_to_email for n in Notification.select().where(Notification.user == user.id))
