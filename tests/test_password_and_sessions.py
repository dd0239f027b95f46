"""Password reset and change, and sessions that end at once.

Given a signed-in user with a refresh token and an open websocket, when the password is reset or
changed, or the account is deactivated or suspended, then every token issued before is refused on
its next use (REST 401 `session_ended`, refresh 401) and the open socket is closed with 4003 and
gets nothing more: not a push, not a replay. Reset links are single use, expire, work only for
their own account and purpose, and asking for one answers the same, as fast, for any address.
"""

import asyncio
import logging
import threading
from datetime import timedelta

import pytest

from handlers.web.executor import call_with_connection
from models import Notification, OneTimeToken, RefreshToken, User
from models.actions import credentials
from models.actions.credentials import PASSWORD_RESET, VERIFY_EMAIL, issue_token
from models.foundation.clock import utcnow
from models.foundation.errors import ValidationFailed
from workers import runtime

from .account_support import RESET, account_email, assert_same_timing, links, path_of, sign_in, token_of
from .conftest import make_settings, serve_app
from .contract_support import assert_error
from .factories import PASSWORD, AdminFactory, ClientFactory, ServicemanFactory
from .ws_support import assert_closed_for_session_end, receive, send

NEW_PASSWORD = "Ajah-Heater-2027"
CONFIRM, CHANGE = "/api/auth/password-reset/confirm/", "/api/auth/change-password/"


@pytest.fixture
def mail_settings(mailbox):
    return make_settings(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailbox.port),
        EMAIL_USE_TLS="false",
        PUBLIC_BASE_URL="https://api.serviceman.example",
    )


@pytest.fixture
def app(database, mail_settings):
    yield from serve_app(mail_settings)


async def assert_session_ended(api, pair):
    assert_error(await api.get("/api/auth/me/", token=pair["access"]), 401, "session_ended")
    assert_error(await api.post("/api/auth/refresh/", {"refresh": pair["refresh"]}), 401, "session_ended")


def reset_token(user):
    return issue_token(make_settings(), user.id, PASSWORD_RESET)[1]


# --- reset ----------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_a_reset_link_sets_the_password_and_ends_every_session(api, app, mailbox, sockets):
    user = ClientFactory()
    pair = await sign_in(api, user)
    ws, _ready = await sockets.signed_in(pair["access"])

    asked = await api.post(RESET, {"email": user.email})
    assert asked.status == 202
    found = links(await account_email(mailbox, user.email, "reset"))
    assert found["text"] == found["html"]
    assert found["text"].startswith("https://api.serviceman.example/reset-password/?token=")
    token = token_of(found["text"])

    confirmed = await api.post(CONFIRM, {"token": token, "password": NEW_PASSWORD})
    assert confirmed.status == 204, confirmed

    await assert_closed_for_session_end(ws)
    await assert_session_ended(api, pair)
    assert not RefreshToken.select().where(RefreshToken.user == user.id, RefreshToken.revoked_at.is_null()).exists()
    assert_error(await api.post("/api/auth/login/", {"email": user.email, "password": PASSWORD}), 401)
    fresh = await sign_in(api, user, NEW_PASSWORD)
    assert (await api.get("/api/auth/me/", token=fresh["access"])).status == 200
    assert_error(await api.post(CONFIRM, {"token": token, "password": "Another-Pass-2028"}), 422, "token_used")


@pytest.mark.gen_test(timeout=30)
async def test_the_reset_link_opens_a_page_that_sets_the_password(api, app, mailbox, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    user = ClientFactory()
    await api.post(RESET, {"email": user.email})
    link = links(await account_email(mailbox, user.email, "reset"))["text"]

    page = await api.get(path_of(link))
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    token = token_of(link)
    from urllib.parse import urlencode

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    mismatch = await api.call(
        "POST",
        "/reset-password/",
        raw=urlencode({"token": token, "password": NEW_PASSWORD, "password_again": "something-else-1"}),
        headers=form,
    )
    assert mismatch.status == 422
    done = await api.call(
        "POST",
        "/reset-password/",
        raw=urlencode({"token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}),
        headers=form,
    )
    assert done.status == 200
    await sign_in(api, user, NEW_PASSWORD)
    used = await api.call(
        "POST",
        "/reset-password/",
        raw=urlencode({"token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}),
        headers=form,
    )
    assert used.status == 422
    assert token not in caplog.text  # the access log leaves the link's query out


@pytest.mark.gen_test(timeout=30)
async def test_expired_tampered_superseded_and_wrong_purpose_tokens_change_nothing(api, app):
    user = ClientFactory()
    pair = await sign_in(api, user)
    older, newer = reset_token(user), reset_token(user)
    _, verify_token = issue_token(make_settings(), user.id, VERIFY_EMAIL)
    tampered = newer[:-2] + ("xx" if not newer.endswith("xx") else "yy")

    cases = [
        (older, "token_expired"),  # a newer reset link makes older ones expire
        (tampered, "token_invalid"),
        (verify_token, "token_invalid"),
        ("", None),
        ("x" * 500, None),
    ]
    for token, code in cases:
        assert_error(await api.post(CONFIRM, {"token": token, "password": NEW_PASSWORD}), 422, code)
    OneTimeToken.update(expires_at=utcnow() - timedelta(seconds=1)).where(
        OneTimeToken.token_hash == credentials.token_hash(newer)
    ).execute()
    assert_error(await api.post(CONFIRM, {"token": newer, "password": NEW_PASSWORD}), 422, "token_expired")

    assert (await api.get("/api/auth/me/", token=pair["access"])).status == 200  # the session lives on
    await sign_in(api, user)  # and the password is the old one


@pytest.mark.gen_test(timeout=30)
async def test_a_reset_token_changes_its_own_account_only(api, app):
    ada, bayo = ClientFactory(), ClientFactory()
    bayo_pair = await sign_in(api, bayo)
    assert (await api.post(CONFIRM, {"token": reset_token(ada), "password": NEW_PASSWORD})).status == 204
    await sign_in(api, ada, NEW_PASSWORD)
    await sign_in(api, bayo)
    assert (await api.get("/api/auth/me/", token=bayo_pair["access"])).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_weak_new_password_is_refused_and_the_link_still_works(api, app):
    user = ClientFactory()
    token = reset_token(user)
    refused = await api.post(CONFIRM, {"token": token, "password": "short"})
    assert_error(refused, 422, "validation_error")
    assert "password" in refused.data["error"]["fields"]
    assert (await api.post(CONFIRM, {"token": token, "password": NEW_PASSWORD})).status == 204


def test_of_two_concurrent_confirms_with_one_token_exactly_one_wins(app):
    user = ClientFactory()
    token = reset_token(user)
    barrier, outcomes = threading.Barrier(2), []

    def confirm(password):
        barrier.wait()
        try:
            call_with_connection(
                credentials.confirm_password_reset, make_settings(), runtime.transport(), token, password
            )
            outcomes.append(("won", password))
        except ValidationFailed as exc:
            outcomes.append((exc.code, password))

    threads = [threading.Thread(target=confirm, args=(p,)) for p in ("First-Choice-2027", "Second-Choice-2027")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(o[0] for o in outcomes) == ["token_used", "won"]
    winner = next(p for kind, p in outcomes if kind == "won")
    from models.foundation.tokens import check_password

    assert check_password(winner, User.get_by_id(user.id).password_hash)
    assert User.get_by_id(user.id).session_version == 1  # one session end, not two


@pytest.mark.gen_test(timeout=30)
async def test_reset_answers_the_same_for_any_address_and_mails_known_active_ones_only(api, app, mailbox):
    known, inactive = ClientFactory(), ClientFactory(is_active=False)
    answers = [
        await api.post(RESET, {"email": address})
        for address in (known.email, inactive.email, "nobody@example.ng", known.email.upper())
    ]
    assert len({(a.status, a.headers.get("Content-Length"), str(a.data)) for a in answers}) == 1
    assert answers[0].status == 202

    # The lookups run after the answers: wait for both links to the known address.
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, mailbox.wait_for, lambda m: len(mailbox.messages) >= 2) is not None
    assert [m.rcpt_tos for m in mailbox.messages] == [[known.email]] * 2
    # However the two requests raced, only the newest link works.
    assert OneTimeToken.select().where(OneTimeToken.user == known.id, OneTimeToken.expires_at > utcnow()).count() == 1


def test_the_reset_job_mails_only_active_accounts(mailbox):
    from workers.account_email import email_link_to_address

    runtime.configure(make_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false"), None)
    try:
        known, inactive = ClientFactory(), ClientFactory(is_active=False)
        for address in (inactive.email, "nobody@example.ng"):
            assert email_link_to_address(PASSWORD_RESET, address) is None
        assert email_link_to_address(PASSWORD_RESET, known.email) is not None
        assert [m.rcpt_tos for m in mailbox.messages] == [[known.email]]
    finally:
        runtime.reset()


# --- change ---------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_changing_the_password_ends_every_session_and_keeps_the_caller_signed_in(api, app, sockets):
    user = ClientFactory()
    this_device, other_device = await sign_in(api, user), await sign_in(api, user)
    old_socket, _ = await sockets.signed_in(other_device["access"])

    changed = await api.post(
        CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, token=this_device["access"]
    )
    assert changed.status == 200 and set(changed.data) == {"access", "refresh"}

    await assert_closed_for_session_end(old_socket)
    for pair in (this_device, other_device):
        await assert_session_ended(api, pair)
    assert (await api.get("/api/auth/me/", token=changed.data["access"])).status == 200
    new_socket, _ = await sockets.signed_in(changed.data["access"])
    await send(new_socket, {"type": "ping"})
    assert await receive(new_socket) == {"type": "pong"}
    rotated = await api.post("/api/auth/refresh/", {"refresh": changed.data["refresh"]})
    assert rotated.status == 200
    await sign_in(api, user, NEW_PASSWORD)


@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_current_password_changes_nothing(api, app):
    user = ClientFactory()
    pair = await sign_in(api, user)
    for body, code, field in (
        (
            {"current_password": "not-my-password", "new_password": NEW_PASSWORD},
            "invalid_current_password",
            "current_password",
        ),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "validation_error", "new_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "validation_error", "new_password"),
    ):
        refused = await api.post(CHANGE, body, token=pair["access"])
        assert_error(refused, 422, code)
        assert field in refused.data["error"]["fields"]
    assert_error(await api.post(CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}), 401)
    assert (await api.get("/api/auth/me/", token=pair["access"])).status == 200
    await sign_in(api, user)


# --- deactivation and suspension ------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_a_deactivated_users_open_socket_is_closed_and_gets_nothing_more(api, app, sockets):
    from workers.delivery import notification_message

    user, admin = ClientFactory(), AdminFactory()
    pair = await sign_in(api, user)
    ws, _ = await sockets.signed_in(pair["access"])

    assert (await api.post(f"/api/admin/users/{user.id}/deactivate/", {}, user=admin)).status == 200
    note = Notification.create(user=user.id, notification_type="request_created", title="Late", message="Late")
    runtime.transport().push(user.id, notification_message(note))

    await assert_closed_for_session_end(ws)
    assert app.settings["hub"].connected(user.id) == 0
    assert_error(await api.get("/api/auth/me/", token=pair["access"]), 401)
    assert_error(await api.post("/api/auth/refresh/", {"refresh": pair["refresh"]}), 401)
    again = await sockets.open()
    await send(again, {"type": "auth", "token": pair["access"]})
    assert await receive(again) is None and again.close_code == 4001


@pytest.mark.gen_test(timeout=30)
async def test_a_suspended_servicemans_sessions_end(api, app, sockets):
    serviceman, admin = ServicemanFactory(), AdminFactory()
    pair = await sign_in(api, serviceman)
    ws, _ = await sockets.signed_in(pair["access"])
    suspended = await api.post(
        f"/api/admin/servicemen/{serviceman.id}/suspend/", {"reason": "Complaints under review"}, user=admin
    )
    assert suspended.status == 200, suspended
    await assert_closed_for_session_end(ws, may_first_receive=("serviceman_suspended",))
    await assert_session_ended(api, pair)
    # A suspended serviceman may still sign in (to read why); the new session works.
    assert (await api.get("/api/auth/me/", token=(await sign_in(api, serviceman))["access"])).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_socket_whose_session_ended_gets_no_replay_even_if_the_close_was_lost(api, app, sockets, monkeypatch):
    user = ClientFactory()
    pair = await sign_in(api, user)
    ws, _ = await sockets.signed_in(pair["access"])
    Notification.create(user=user.id, notification_type="request_created", title="Missed", message="Missed")
    monkeypatch.setattr(runtime.transport(), "push", lambda user_id, message: None)  # the close never arrives

    changed = await api.post(CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, token=pair["access"])
    assert changed.status == 200
    await send(ws, {"type": "resume", "since": 0})
    await assert_closed_for_session_end(ws)


@pytest.mark.gen_test(timeout=30)
async def test_a_token_issued_before_the_end_cannot_open_a_socket(api, app, sockets):
    user = ClientFactory()
    old = api.token(user)
    await api.post(CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, token=old)
    ws = await sockets.open()
    await send(ws, {"type": "auth", "token": old})
    await assert_closed_for_session_end(ws)


# --- no account oracle by timing ------------------------------------------------------------------


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("path", [RESET, "/api/auth/resend-verification/"])
async def test_reset_and_resend_take_the_same_time_for_known_and_unknown_addresses(api, app, path):
    known = ClientFactory(email_verified_at=None)
    await assert_same_timing(api, path, known.email)


# --- the edges of end_all_sessions and the reset page ---------------------------------------------


def test_end_all_sessions_refuses_to_run_inside_a_transaction_and_names_unknown_users(database):
    from models.actions.sessions import end_all_sessions
    from models.foundation.errors import NotFound

    user = ClientFactory()
    with pytest.raises(RuntimeError), database.atomic():
        end_all_sessions(runtime.transport(), user.id, "test")
    with pytest.raises(NotFound):
        end_all_sessions(runtime.transport(), 2**31 - 1, "test")
    assert User.get_by_id(user.id).session_version == 0


def test_a_lost_close_message_is_logged_and_the_tokens_are_refused_anyway(app, caplog):
    from models.actions.sessions import end_all_sessions

    user = ClientFactory()

    def unreachable(user_id, message):
        raise ConnectionError("Redis is down")

    runtime.transport().push = unreachable
    assert end_all_sessions(runtime.transport(), user.id, "test") == 1
    assert "could not tell the web processes" in caplog.text


@pytest.mark.gen_test(timeout=30)
async def test_the_reset_page_explains_bad_input_without_changing_anything(api, app):
    from urllib.parse import urlencode

    user = ClientFactory()
    token = reset_token(user)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    async def post(**fields):
        return await api.call("POST", "/reset-password/", raw=urlencode(fields), headers=form)

    no_token = await api.get("/reset-password/")
    assert no_token.status == 200
    assert (await post(token=token, password="short", password_again="short")).status == 422
    assert (await post(token=token, password="nul\x00-password", password_again="nul\x00-password")).status == 422
    assert (await post(token="not-a-token", password=NEW_PASSWORD, password_again=NEW_PASSWORD)).status == 422
    assert (await api.call("PUT", "/reset-password/", raw="")).status == 405
    not_utf8 = await api.call(
        "POST", "/reset-password/", raw=b"token=%FF&password=%FF&password_again=%FF", headers=form
    )
    assert not_utf8.status == 422
    await sign_in(api, user)  # the password is unchanged
    assert (await post(token=token, password=NEW_PASSWORD, password_again=NEW_PASSWORD)).status == 200
