"""`GET /ws/` with the embedded pipeline: authentication (first message or dashboard cookie), live
pushes to every socket of the recipient, resume after a reconnect, and emergency highlighting."""

import asyncio
from datetime import timedelta

import pytest
import time_machine

import handlers.websocket
from handlers.web import sessions
from models import Notification, User
from models.foundation.clock import utcnow
from models.foundation.naira import format_naira
from models.foundation.tokens import REFRESH, encode
from server.app import make_app
from workers import runtime

from .booking_support import book
from .conftest import make_settings, session_cookie
from .factories import notify
from .ws_support import assert_nothing_arrives, receive, send

DASHBOARD = "http://dash.example"
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


async def assert_closed_with(ws, code):
    message = await receive(ws)
    assert message is None, f"expected the socket to close with {code}, got {message}"
    assert ws.close_code == code
    assert ws.close_reason  # a human-readable reason accompanies every refusal
    return ws.close_reason


async def assert_no_more_messages(ws):
    """Event-based: messages are handled in order, so a pong right away means nothing else was queued."""
    await send(ws, {"type": "ping"})
    assert await receive(ws) == {"type": "pong"}


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_valid_token_gets_ready_with_the_unread_count(api, sockets, client_user, other_client):
    notify(client_user), notify(client_user), notify(client_user, is_read=True)
    notify(other_client)

    _, ready = await sockets.signed_in(api.token(client_user))

    assert ready == {"type": "ready", "unread_count": 2}


@pytest.mark.gen_test
async def test_ready_unread_count_is_zero_for_a_new_user(api, sockets, client_user):
    _, ready = await sockets.signed_in(api.token(client_user))
    assert ready == {"type": "ready", "unread_count": 0}


def _wrong_secret_token(settings, user):
    other = make_settings(SECRET_KEY="another-secret-key-0123456789abcdef01234567")
    return encode(other, user_id=user.id, role=user.role, kind="access", lifetime=timedelta(minutes=15))[0]


def _refresh_token(settings, user):
    return encode(settings, user_id=user.id, role=user.role, kind=REFRESH, lifetime=timedelta(days=7))[0]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "make_token",
    [
        lambda settings, user: "not-a-jwt",
        lambda settings, user: "",
        lambda settings, user: 12345,
        _wrong_secret_token,
        _refresh_token,
    ],
    ids=["garbage", "empty", "not-a-string", "wrong-secret", "refresh-token"],
)
async def test_bad_token_is_closed_with_4001(api, app, sockets, settings, client_user, make_token):
    ws = await sockets.open()
    await send(ws, {"type": "auth", "token": make_token(settings, client_user)})

    await assert_closed_with(ws, 4001)
    assert app.settings["hub"].connected(client_user.id) == 0


@pytest.mark.gen_test
async def test_expired_token_is_closed_with_4001(api, sockets, client_user):
    with time_machine.travel(utcnow() - timedelta(minutes=16), tick=False):
        token = api.token(client_user)  # access tokens live 15 minutes
    ws = await sockets.open()
    await send(ws, {"type": "auth", "token": token})

    reason = await assert_closed_with(ws, 4001)
    assert "expired" in reason


@pytest.mark.gen_test
async def test_token_still_inside_its_lifetime_is_accepted(api, sockets, client_user):
    with time_machine.travel(utcnow() - timedelta(minutes=14), tick=False):
        token = api.token(client_user)
    _, ready = await sockets.signed_in(token)
    assert ready["type"] == "ready"


@pytest.mark.gen_test
async def test_deactivated_users_token_is_closed_with_4001(api, app, sockets, client_user):
    token = api.token(client_user)
    User.update(is_active=False).where(User.id == client_user.id).execute()
    ws = await sockets.open()
    await send(ws, {"type": "auth", "token": token})

    await assert_closed_with(ws, 4001)
    assert app.settings["hub"].connected(client_user.id) == 0


@pytest.mark.gen_test
async def test_deleted_users_token_is_closed_with_4001(api, sockets, client_user):
    token = api.token(client_user)
    User.delete().where(User.id == client_user.id).execute()
    ws = await sockets.open()
    await send(ws, {"type": "auth", "token": token})

    await assert_closed_with(ws, 4001)


@pytest.mark.gen_test
@pytest.mark.parametrize("first", [{"type": "resume", "since": 0}, {"type": "ping"}, {"type": "hello"}])
async def test_a_first_message_other_than_auth_is_closed_with_4001(api, sockets, first):
    ws = await sockets.open()
    await send(ws, first)
    await assert_closed_with(ws, 4001)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "raw",
    [
        "not json{",
        "[1, 2]",
        '"auth"',
        "42",
        '{"token": "x"}',
        "null",
        "[" * 1000 + "]" * 1000,
        '{"type": NaN}',
        '{"type": "auth", "token": {"a": 1}}',
    ],
    ids=["broken", "array", "string", "number", "no-type", "null", "deep", "nan", "token-not-text"],
)
async def test_a_message_that_is_not_a_json_object_with_a_type_is_closed_with_4400(api, sockets, raw):
    ws = await sockets.open()
    await send(ws, raw)
    await assert_closed_with(ws, 4001 if "token" in raw and "type" in raw else 4400)


@pytest.mark.gen_test
async def test_invalid_json_after_auth_is_closed_with_4400(api, sockets, client_user):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await send(ws, "{oops")
    await assert_closed_with(ws, 4400)


@pytest.mark.gen_test
async def test_no_auth_before_the_deadline_is_closed_with_4008(api, app, sockets, monkeypatch):
    monkeypatch.setattr(handlers.websocket, "AUTH_DEADLINE_SECONDS", 0.2)
    ws = await sockets.open()
    reason = await assert_closed_with(ws, 4008)
    assert "authentication" in reason


@pytest.mark.gen_test
async def test_auth_in_time_cancels_the_deadline(api, sockets, client_user, monkeypatch):
    monkeypatch.setattr(handlers.websocket, "AUTH_DEADLINE_SECONDS", 0.2)
    ws, _ = await sockets.signed_in(api.token(client_user))
    await assert_nothing_arrives(ws)  # longer than the deadline: not closed
    assert ws.close_code is None
    await assert_no_more_messages(ws)


@pytest.mark.gen_test
async def test_a_closed_socket_leaves_the_hub(api, app, sockets, client_user):
    hub = app.settings["hub"]
    first, _ = await sockets.signed_in(api.token(client_user))
    second, _ = await sockets.signed_in(api.token(client_user))
    assert hub.connected(client_user.id) == 2
    first.close()
    for _ in range(250):  # the server's on_close has no event a client can await; bounded poll
        if hub.connected(client_user.id) == 1:
            break
        await asyncio.sleep(0.02)
    assert hub.connected(client_user.id) == 1
    await assert_no_more_messages(second)


# --- live pushes -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_socket_of_the_recipient_gets_the_notification_and_the_count(
    api, sockets, client_user, other_client, category
):
    first, _ = await sockets.signed_in(api.token(client_user))
    second, _ = await sockets.signed_in(api.token(client_user))
    bystander, _ = await sockets.signed_in(api.token(other_client))

    request = await book(api, client_user, category)

    pushed = []
    for ws in (first, second):
        message = await receive(ws)
        assert message["type"] == "notification"
        pushed.append(message["notification"])
        assert await receive(ws) == {"type": "unread_count", "count": 1}
    assert pushed[0] == pushed[1]
    notification = pushed[0]
    assert set(notification) == NOTIFICATION_FIELDS
    assert notification["notification_type"] == "request_created"
    assert notification["service_request_id"] == request["id"]
    assert notification["title"] == f"Booking #{request['id']} received"
    assert format_naira(request["booking_fee"]) in notification["message"]  # ₦2,000.00: as people read it
    assert notification["payload"]["service_request_id"] == request["id"]
    assert notification["payload"]["is_emergency"] is False
    assert notification["is_read"] is False
    assert notification["sent_to_email"] is False and notification["email_sent_at"] is None
    assert notification["created_at"]

    row = Notification.get_by_id(notification["id"])
    assert row.user_id == client_user.id
    listed = (await api.get("/api/notifications/", user=client_user)).data["results"]
    assert [n["id"] for n in listed] == [notification["id"]]
    assert set(listed[0]) == NOTIFICATION_FIELDS
    same = {k: v for k, v in listed[0].items() if k not in ("sent_to_email", "email_sent_at")}
    assert same == {k: v for k, v in notification.items() if k not in ("sent_to_email", "email_sent_at")}

    await assert_nothing_arrives(bystander)
    await assert_no_more_messages(first)


@pytest.mark.gen_test
async def test_the_unread_count_pushed_counts_earlier_unread_notifications(api, sockets, client_user, category):
    notify(client_user), notify(client_user), notify(client_user, is_read=True)
    ws, ready = await sockets.signed_in(api.token(client_user))
    assert ready["unread_count"] == 2

    await book(api, client_user, category)

    assert (await receive(ws))["type"] == "notification"
    assert await receive(ws) == {"type": "unread_count", "count": 3}


@pytest.mark.gen_test
async def test_the_embedded_pipeline_sends_the_email_to_the_log(api, sockets, client_user, category, caplog):
    caplog.set_level("INFO", logger="serviceman.email")
    ws, _ = await sockets.signed_in(api.token(client_user))
    request = await book(api, client_user, category)
    notification_id = (await receive(ws))["notification"]["id"]

    for _ in range(250):  # the email job runs after the push and announces nothing; bounded poll
        row = Notification.get_by_id(notification_id)
        if row.sent_to_email:
            break
        await asyncio.sleep(0.02)
    assert row.sent_to_email is True and row.email_sent_at is not None
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "serviceman.email")
    assert f"Subject: Booking #{request['id']} received" in logged
    assert client_user.email in logged


@pytest.mark.gen_test
async def test_a_socket_signed_in_after_the_event_gets_no_live_push_but_the_count(api, sockets, client_user, category):
    watcher, _ = await sockets.signed_in(api.token(client_user))
    await book(api, client_user, category)
    assert (await receive(watcher))["type"] == "notification"

    late, ready = await sockets.signed_in(api.token(client_user))
    assert ready["unread_count"] == 1
    await assert_no_more_messages(late)


# --- emergencies -------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("days_ahead", [0, 1])
async def test_a_booking_less_than_two_days_ahead_is_highlighted(api, sockets, client_user, category, days_ahead):
    ws, _ = await sockets.signed_in(api.token(client_user))
    request = await book(api, client_user, category, days_ahead=days_ahead)
    assert request["is_emergency"] is True

    notification = (await receive(ws))["notification"]

    assert notification["title"].startswith("[EMERGENCY]")
    assert notification["title"] == f"[EMERGENCY] Booking #{request['id']} received"
    assert notification["payload"]["is_emergency"] is True


@pytest.mark.gen_test
async def test_a_booking_two_days_ahead_is_not_highlighted(api, sockets, client_user, category):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await book(api, client_user, category, days_ahead=2)

    notification = (await receive(ws))["notification"]

    assert not notification["title"].startswith("[EMERGENCY]")
    assert notification["payload"]["is_emergency"] is False


@pytest.mark.gen_test
async def test_an_emergency_the_client_asked_for_is_highlighted(api, sockets, client_user, category):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await book(api, client_user, category, days_ahead=10, is_emergency=True)

    notification = (await receive(ws))["notification"]

    assert notification["title"].startswith("[EMERGENCY]")
    assert notification["payload"]["is_emergency"] is True


# --- resume ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_resume_replays_exactly_the_notifications_after_since_oldest_first(
    api, sockets, client_user, other_client
):
    seen = notify(client_user, "first")
    missed = [notify(client_user, "second")]
    notify(other_client, "not yours")
    missed += [notify(client_user, "third", is_read=True), notify(client_user, "fourth")]
    ws, ready = await sockets.signed_in(api.token(client_user))
    assert ready["unread_count"] == 3

    await send(ws, {"type": "resume", "since": seen.id})

    replayed = [await receive(ws) for _ in missed]
    assert all(m["type"] == "notification" for m in replayed)
    assert [m["notification"]["id"] for m in replayed] == [n.id for n in missed]
    assert [m["notification"]["title"] for m in replayed] == ["second", "third", "fourth"]
    assert replayed[1]["notification"]["is_read"] is True
    assert all(set(m["notification"]) == NOTIFICATION_FIELDS for m in replayed)
    await assert_no_more_messages(ws)


@pytest.mark.gen_test
async def test_resume_from_zero_replays_everything_and_from_the_last_id_nothing(api, sockets, client_user):
    rows = [notify(client_user, f"n{i}") for i in range(3)]
    ws, _ = await sockets.signed_in(api.token(client_user))

    await send(ws, {"type": "resume", "since": 0})
    assert [(await receive(ws))["notification"]["id"] for _ in rows] == [r.id for r in rows]
    await assert_no_more_messages(ws)

    await send(ws, {"type": "resume", "since": rows[-1].id})
    await assert_no_more_messages(ws)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "since",
    ["5", -1, 1.5, True, None, [1], 2**63, 10**40],
    ids=["string", "negative", "float", "bool", "null", "list", "2^63", "huge"],
)
async def test_resume_with_a_bad_since_is_closed_with_4400(api, sockets, client_user, since):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await send(ws, {"type": "resume", "since": since})
    await assert_closed_with(ws, 4400)


@pytest.mark.gen_test
async def test_resume_without_since_is_closed_with_4400(api, sockets, client_user):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await send(ws, {"type": "resume"})
    await assert_closed_with(ws, 4400)


# --- the dashboard's session cookie ------------------------------------------------------------


class TestSessionCookie:
    """The signed session cookie of /app/ signs a socket in, from our own origin or an allowed one."""

    @pytest.fixture
    def app(self, database):
        application = make_app(make_settings(CORS_ALLOWED_ORIGINS=DASHBOARD), bind_database=False)
        yield application
        transport = runtime.transport()
        if hasattr(transport, "shutdown"):
            transport.shutdown()
        runtime.reset()

    @staticmethod
    def cookie(value, origin=DASHBOARD):
        headers = {"Cookie": f"{sessions.SESSION_COOKIE}={value}"}
        if origin is not None:
            headers["Origin"] = origin
        return headers

    @pytest.mark.gen_test
    async def test_cookie_from_an_allowed_origin_signs_in_without_an_auth_message(
        self, api, app, sockets, client_user, category
    ):
        notify(client_user)
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user)))

        assert await receive(ws) == {"type": "ready", "unread_count": 1}
        assert app.settings["hub"].connected(client_user.id) == 1

        await book(api, client_user, category)  # and it gets live pushes like any socket
        assert (await receive(ws))["type"] == "notification"
        assert await receive(ws) == {"type": "unread_count", "count": 2}

    @pytest.mark.gen_test
    async def test_cookie_from_the_servers_own_origin_signs_in(self, api, sockets, client_user):
        origin = f"http://localhost:{sockets.port}"  # the dashboard's pages are served here
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user), origin=origin))
        assert await receive(ws) == {"type": "ready", "unread_count": 0}

    @pytest.mark.gen_test
    async def test_cookie_session_is_not_subject_to_the_auth_deadline(self, api, sockets, client_user, monkeypatch):
        monkeypatch.setattr(handlers.websocket, "AUTH_DEADLINE_SECONDS", 0.2)
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user)))
        assert (await receive(ws))["type"] == "ready"
        await assert_nothing_arrives(ws)
        assert ws.close_code is None

    @pytest.mark.gen_test
    async def test_cookie_session_can_resume(self, api, sockets, client_user):
        rows = [notify(client_user, "a"), notify(client_user, "b")]
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user)))
        assert (await receive(ws))["type"] == "ready"
        await send(ws, {"type": "resume", "since": rows[0].id})
        assert (await receive(ws))["notification"]["id"] == rows[1].id
        await assert_no_more_messages(ws)

    @pytest.mark.gen_test
    @pytest.mark.parametrize(
        "value",
        ["not-signed", "2|1:0|10:1700000000|17:serviceman_session|4:MTow|deadbeef"],
        ids=["unsigned", "bad-signature"],
    )
    async def test_an_invalid_cookie_from_an_allowed_origin_is_closed_with_4001(self, api, sockets, value):
        ws = await sockets.open(headers=self.cookie(value))
        await assert_closed_with(ws, 4001)

    @pytest.mark.gen_test
    async def test_an_access_token_is_no_session_cookie(self, api, sockets, client_user):
        ws = await sockets.open(headers=self.cookie(api.token(client_user)))
        await assert_closed_with(ws, 4001)

    @pytest.mark.gen_test
    async def test_an_expired_cookie_is_closed_with_4001(self, api, sockets, client_user):
        days = api.settings.refresh_token_days + 1
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user, age_days=days)))
        await assert_closed_with(ws, 4001)

    @pytest.mark.gen_test
    async def test_a_session_of_an_older_session_version_is_closed_with_4003(self, api, sockets, client_user):
        # A password change or reset bumps the user's session_version: older cookies stop working, and
        # the close code says the session ended (as for a token of an ended session).
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user, version=7)))
        await assert_closed_with(ws, 4003)

    @pytest.mark.gen_test
    async def test_a_deactivated_users_session_is_closed_with_4001(self, api, sockets, client_user):
        User.update(is_active=False).where(User.id == client_user.id).execute()
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user)))
        await assert_closed_with(ws, 4001)

    @pytest.mark.gen_test
    @pytest.mark.parametrize(
        "origin",
        ["http://evil.example", "https://dash.example", None],
        ids=["other-origin", "other-scheme", "no-origin"],
    )
    async def test_cookie_from_another_origin_is_ignored(self, api, app, sockets, client_user, monkeypatch, origin):
        monkeypatch.setattr(handlers.websocket, "AUTH_DEADLINE_SECONDS", 0.2)
        ws = await sockets.open(headers=self.cookie(session_cookie(api.settings, client_user), origin=origin))

        await assert_closed_with(ws, 4008)  # never signed in: the deadline closed it
        assert app.settings["hub"].connected(client_user.id) == 0

    @pytest.mark.gen_test
    async def test_cookie_from_another_origin_still_needs_the_auth_message(self, api, sockets, client_user):
        ws = await sockets.open(
            headers=self.cookie(session_cookie(api.settings, client_user), origin="http://evil.example")
        )
        await send(ws, {"type": "resume", "since": 0})
        await assert_closed_with(ws, 4001)

    @pytest.mark.gen_test
    async def test_another_origin_may_sign_in_with_the_auth_message(self, api, sockets, client_user):
        ws = await sockets.open(headers=self.cookie("not-signed", origin="http://evil.example"))
        await send(ws, {"type": "auth", "token": api.token(client_user)})
        assert (await receive(ws)) == {"type": "ready", "unread_count": 0}


@pytest.mark.gen_test
async def test_a_message_over_the_size_limit_closes_the_socket_with_1009(api, sockets, client_user):
    ws, _ = await sockets.signed_in(api.token(client_user))
    await send(ws, {"type": "ping", "padding": "x" * handlers.websocket.MAX_MESSAGE_BYTES})
    assert await receive(ws) is None
    assert ws.close_code == 1009


@pytest.mark.gen_test
async def test_past_the_cap_a_new_socket_closes_the_users_oldest_with_4029(
    api, app, sockets, settings, client_user, other_client
):
    token = api.token(client_user)
    opened = [(await sockets.signed_in(token))[0] for _ in range(settings.ws_max_sockets_per_user)]
    other, _ = await sockets.signed_in(api.token(other_client))

    newest, _ = await sockets.signed_in(token)

    reason = await assert_closed_with(opened[0], 4029)
    assert "oldest" in reason
    hub = app.settings["hub"]
    assert hub.connected(client_user.id) == settings.ws_max_sockets_per_user
    for ws in [*opened[1:], newest, other]:
        await send(ws, {"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
