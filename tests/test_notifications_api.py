"""The notifications REST endpoints (own only, newest first, read state pushed as a new unread count)
and the notification emails of the embedded pipeline (no EMAIL_HOST: rendered, then logged)."""

import pytest

from models import Notification, RequestStatus
from models.foundation.naira import format_naira
from workers.email import build_message, render_email

from .booking_support import book
from .factories import ServicemanFactory, ServiceRequestFactory, notify
from .ws_support import assert_nothing_arrives, receive

SCRIPT = "<script>alert('owned')</script>"
NOTIFICATION_FIELDS = {
    "id",
    "notification_type",
    "title",
    "message",
    "service_request_id",
    "payload",
    "is_read",
    "sent_to_email",
    "email_sent_at",
    "created_at",
}


# --- helpers -----------------------------------------------------------------------------------


async def next_notification(ws):
    """The next pushed notification; the unread count pushed right after it is consumed too."""
    message = await receive(ws)
    assert message["type"] == "notification", message
    count = await receive(ws)
    assert count["type"] == "unread_count", count
    return message["notification"]


def several(user, count, read=()):
    """`count` notifications, oldest first (created a minute apart); indexes in `read` are read."""
    return [notify(user, f"n{i}", is_read=i in read, minutes_ago=count - i) for i in range(count)]


def ids(response):
    return [n["id"] for n in response.data["results"]]


# --- listing -----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_list_shows_only_own_notifications_newest_first(api, client_user, other_client):
    mine = several(client_user, 3)
    several(other_client, 2)

    response = await api.get("/api/notifications/", user=client_user)

    assert response.status == 200
    assert response.data["count"] == 3
    assert ids(response) == [n.id for n in reversed(mine)]
    first = response.data["results"][0]
    assert set(first) == NOTIFICATION_FIELDS
    assert first["title"] == "n2" and first["message"] == "n2: details"
    assert first["notification_type"] == "request_created"
    assert first["is_read"] is False and first["sent_to_email"] is False and first["email_sent_at"] is None
    assert first["payload"] == {"service_request_id": None, "is_emergency": False}


@pytest.mark.gen_test
async def test_newest_first_follows_created_at(api, client_user):
    older = notify(client_user, "older", minutes_ago=5)
    newer = notify(client_user, "newer", minutes_ago=1)
    oldest = notify(client_user, "oldest", minutes_ago=60)

    response = await api.get("/api/notifications/", user=client_user)

    assert ids(response) == [newer.id, older.id, oldest.id]


@pytest.mark.gen_test
async def test_list_carries_the_service_request(api, client_user):
    request = ServiceRequestFactory(client=client_user)
    notify(client_user, service_request=request, payload={"service_request_id": request.id, "is_emergency": False})

    item = (await api.get("/api/notifications/", user=client_user)).data["results"][0]

    assert item["service_request_id"] == request.id
    assert item["payload"]["service_request_id"] == request.id


@pytest.mark.gen_test
async def test_is_read_filter(api, client_user):
    rows = several(client_user, 4, read=(0, 2))

    unread = await api.get("/api/notifications/?is_read=false", user=client_user)
    read = await api.get("/api/notifications/?is_read=true", user=client_user)
    everything = await api.get("/api/notifications/", user=client_user)

    assert ids(unread) == [rows[3].id, rows[1].id] and unread.data["count"] == 2
    assert ids(read) == [rows[2].id, rows[0].id] and read.data["count"] == 2
    assert everything.data["count"] == 4


@pytest.mark.gen_test
async def test_is_read_filter_must_be_a_boolean(api, client_user):
    response = await api.get("/api/notifications/?is_read=maybe", user=client_user)
    assert response.status == 422
    assert "is_read" in response.data["error"]["fields"]


@pytest.mark.gen_test
async def test_list_is_paginated(api, base_url, client_user):
    rows = list(reversed(several(client_user, 5)))  # newest first

    first = await api.get("/api/notifications/?page_size=2", user=client_user)
    last = await api.get("/api/notifications/?page_size=2&page=3", user=client_user)

    assert first.data["count"] == 5 and ids(first) == [rows[0].id, rows[1].id]
    assert first.data["previous"] is None and "page=2" in first.data["next"]
    second = await api.get(first.data["next"][len(base_url) :], user=client_user)
    assert ids(second) == [rows[2].id, rows[3].id]
    assert ids(last) == [rows[4].id] and last.data["next"] is None and "page=2" in last.data["previous"]


@pytest.mark.gen_test
async def test_pagination_keeps_the_filter(api, base_url, client_user):
    rows = several(client_user, 5, read=(2,))
    first = await api.get("/api/notifications/?is_read=false&page_size=3", user=client_user)
    assert first.data["count"] == 4
    assert "is_read=false" in first.data["next"]
    second = await api.get(first.data["next"][len(base_url) :], user=client_user)
    assert ids(second) == [rows[0].id]


@pytest.mark.gen_test
async def test_empty_list(api, client_user):
    response = await api.get("/api/notifications/", user=client_user)
    assert response.data == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/notifications/"),
        ("GET", "/api/notifications/unread-count/"),
        ("POST", "/api/notifications/read-all/"),
        ("POST", "/api/notifications/1/read/"),
    ],
)
async def test_notifications_need_a_signed_in_user(api, method, path):
    response = await api.call(method, path)
    assert response.status == 401


# --- unread count and read state -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_unread_count_counts_own_unread_only(api, client_user, other_client):
    several(client_user, 4, read=(1,))
    several(other_client, 2)

    response = await api.get("/api/notifications/unread-count/", user=client_user)

    assert response.status == 200 and response.data == {"count": 3}


@pytest.mark.gen_test
async def test_mark_one_read(api, client_user):
    rows = several(client_user, 3)

    response = await api.post(f"/api/notifications/{rows[1].id}/read/", user=client_user)

    assert response.status == 200
    assert response.data["id"] == rows[1].id and response.data["is_read"] is True
    assert set(response.data) == NOTIFICATION_FIELDS
    assert Notification.get_by_id(rows[1].id).is_read is True
    assert (await api.get("/api/notifications/unread-count/", user=client_user)).data == {"count": 2}
    unread = await api.get("/api/notifications/?is_read=false", user=client_user)
    assert ids(unread) == [rows[2].id, rows[0].id]


@pytest.mark.gen_test
async def test_marking_a_read_notification_again_is_harmless(api, client_user):
    row = notify(client_user, is_read=True)
    response = await api.post(f"/api/notifications/{row.id}/read/", user=client_user)
    assert response.status == 200 and response.data["is_read"] is True
    assert (await api.get("/api/notifications/unread-count/", user=client_user)).data == {"count": 0}


@pytest.mark.gen_test
async def test_another_users_notification_is_404_and_stays_unread(api, client_user, other_client):
    theirs = notify(other_client)

    response = await api.post(f"/api/notifications/{theirs.id}/read/", user=client_user)

    assert response.status == 404 and response.error_code == "not_found"
    assert Notification.get_by_id(theirs.id).is_read is False


@pytest.mark.gen_test
async def test_a_missing_notification_is_404(api, client_user):
    response = await api.post("/api/notifications/999999/read/", user=client_user)
    assert response.status == 404 and response.error_code == "not_found"


@pytest.mark.gen_test
async def test_read_all_marks_every_own_notification(api, client_user, other_client):
    several(client_user, 3, read=(0,))
    theirs = several(other_client, 2)

    response = await api.post("/api/notifications/read-all/", user=client_user)

    assert response.status == 200 and response.data == {"updated": 2, "count": 0}
    assert (await api.get("/api/notifications/unread-count/", user=client_user)).data == {"count": 0}
    assert (await api.get("/api/notifications/?is_read=false", user=client_user)).data["count"] == 0
    assert not any(Notification.get_by_id(n.id).is_read for n in theirs)
    assert (await api.get("/api/notifications/unread-count/", user=other_client)).data == {"count": 2}


@pytest.mark.gen_test
async def test_read_all_with_nothing_unread(api, client_user):
    response = await api.post("/api/notifications/read-all/", user=client_user)
    assert response.status == 200 and response.data == {"updated": 0, "count": 0}


# --- read changes are pushed -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_marking_one_read_pushes_the_new_count_to_every_socket(api, sockets, client_user, other_client):
    rows = several(client_user, 3)
    first = await sockets.authenticated(api.token(client_user))
    second = await sockets.authenticated(api.token(client_user))
    bystander = await sockets.authenticated(api.token(other_client))

    await api.post(f"/api/notifications/{rows[0].id}/read/", user=client_user)

    for ws in (first, second):
        assert await receive(ws) == {"type": "unread_count", "count": 2}
    await api.post(f"/api/notifications/{rows[2].id}/read/", user=client_user)
    for ws in (first, second):
        assert await receive(ws) == {"type": "unread_count", "count": 1}
    await assert_nothing_arrives(bystander)


@pytest.mark.gen_test
async def test_read_all_pushes_zero(api, sockets, client_user, other_client):
    several(client_user, 3)
    several(other_client, 1)
    ws = await sockets.authenticated(api.token(client_user))
    bystander = await sockets.authenticated(api.token(other_client))

    await api.post("/api/notifications/read-all/", user=client_user)

    assert await receive(ws) == {"type": "unread_count", "count": 0}
    await assert_nothing_arrives(bystander)


@pytest.mark.gen_test
async def test_a_refused_read_pushes_nothing(api, sockets, client_user, other_client):
    theirs = notify(other_client)
    owner = await sockets.authenticated(api.token(other_client))
    caller = await sockets.authenticated(api.token(client_user))

    assert (await api.post(f"/api/notifications/{theirs.id}/read/", user=client_user)).status == 404

    await assert_nothing_arrives(owner)
    await assert_nothing_arrives(caller)


@pytest.mark.gen_test
async def test_a_delivered_notification_can_be_read_through_the_api(api, sockets, client_user, category):
    ws = await sockets.authenticated(api.token(client_user))
    await book(api, client_user, category)
    pushed = await next_notification(ws)

    response = await api.post(f"/api/notifications/{pushed['id']}/read/", user=client_user)

    assert response.status == 200 and response.data["is_read"] is True
    assert await receive(ws) == {"type": "unread_count", "count": 0}


# --- emails ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_email_subject_is_the_title_and_bodies_carry_the_message(api, sockets, client_user, category):
    ws = await sockets.authenticated(api.token(client_user))
    request = await book(api, client_user, category)
    notification = Notification.get_by_id((await next_notification(ws))["id"])

    subject, text, html = render_email(notification)

    assert subject == notification.title == f"Booking #{request['id']} received"
    assert notification.message in text
    assert notification.message in html
    assert format_naira(request["booking_fee"]) in html and request["booking_fee"] == "2000.00"
    assert client_user.first_name in text and client_user.first_name in html
    assert "EMERGENCY" not in text and "EMERGENCY" not in html
    message = build_message(api.settings, notification)
    assert message["Subject"] == subject and message["To"] == client_user.email
    assert message["X-Priority"] is None


@pytest.mark.gen_test
async def test_user_text_is_escaped_in_the_html_email(api, sockets, client_user, admin_user, category):
    ws = await sockets.authenticated(api.token(client_user))
    request = await book(api, client_user, category, address=f"{SCRIPT} 3 Marina", description=f"{SCRIPT} Leak")
    await next_notification(ws)  # request_created
    response = await api.post(
        f"/api/requests/{request['id']}/cancel/", {"reason": f"Duplicate {SCRIPT}"}, user=admin_user
    )
    assert response.status == 200 and response.data["status"] == RequestStatus.CANCELLED

    pushed = await next_notification(ws)
    assert pushed["notification_type"] == "request_cancelled"
    notification = Notification.get_by_id(pushed["id"])
    assert SCRIPT in notification.message  # stored and pushed as the plain text it is
    subject, text, html = render_email(notification)

    assert subject == notification.title
    assert notification.message in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in html


@pytest.mark.gen_test
async def test_address_is_escaped_and_the_emergency_banner_shown_to_assigned_servicemen(
    api, sockets, admin_user, category
):
    primary = ServicemanFactory(profile__categories=[category])
    backup = ServicemanFactory(profile__categories=[category])
    request = ServiceRequestFactory(
        category=category,
        status=RequestStatus.ASSIGNED,
        primary_serviceman=primary,
        backup_serviceman=backup,
        address=f"{SCRIPT} 7 Admiralty Way",
    )
    primary_ws = await sockets.authenticated(api.token(primary))
    backup_ws = await sockets.authenticated(api.token(backup))

    response = await api.post(f"/api/admin/requests/{request.id}/emergency/", {"is_emergency": True}, user=admin_user)
    assert response.status == 200 and response.data["is_emergency"] is True

    pushed = [await next_notification(ws) for ws in (primary_ws, backup_ws)]
    assert {p["notification_type"] for p in pushed} == {"emergency_changed"}
    assert all(p["title"].startswith("[EMERGENCY]") and p["payload"]["is_emergency"] is True for p in pushed)
    notification = Notification.get_by_id(pushed[0]["id"])
    subject, text, html = render_email(notification)

    assert subject.startswith("[EMERGENCY]")
    assert "EMERGENCY BOOKING" in html and "EMERGENCY BOOKING" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert notification.message in text
    assert build_message(api.settings, notification)["X-Priority"] == "1"


@pytest.mark.gen_test
async def test_an_emergency_booking_email_has_the_banner(api, sockets, client_user, category):
    ws = await sockets.authenticated(api.token(client_user))
    await book(api, client_user, category, days_ahead=1)
    notification = Notification.get_by_id((await next_notification(ws))["id"])

    subject, text, html = render_email(notification)

    assert subject.startswith("[EMERGENCY] ")
    assert "EMERGENCY BOOKING" in html
    assert "*** EMERGENCY BOOKING ***" in text
    assert notification.message in text and notification.message in html
