"""Sign-ins looked up together (handlers/web/identity.py) are refused one by one exactly as alone: given
active, deactivated, deleted and ended-session accounts signing in at the same moment, each socket
and each request gets its own answer, and a change is seen by the very next sign-in (no cache)."""

import asyncio

import pytest

from handlers.web import identity
from models import Notification, User
from models.foundation.errors import NotAuthenticated

from .conftest import session_cookie
from .contract_support import assert_error
from .ws_support import receive, send

ME = "/api/auth/me/"


@pytest.fixture
def accounts(client_user, other_client, admin_user, serviceman):
    """active, deactivated, ended (its session version moved on), deleted; tokens issued before."""
    from .factories import ClientFactory

    deleted = ClientFactory()
    return {
        "active": client_user,
        "deactivated": other_client,
        "ended": admin_user,
        "deleted": deleted,
        "serviceman": serviceman,
    }


def spoil(accounts):
    User.update(is_active=False).where(User.id == accounts["deactivated"].id).execute()
    User.update(session_version=User.session_version + 1).where(User.id == accounts["ended"].id).execute()
    User.delete().where(User.id == accounts["deleted"].id).execute()


@pytest.fixture
def batch_calls(monkeypatch):
    """The keys of every batch the socket and user loaders send to the database."""
    calls = []
    for loader in (identity._users, identity._sockets):

        def recording(keys, fn=loader.batch_fn):
            calls.append(sorted(keys))
            return fn(keys)

        monkeypatch.setattr(loader, "batch_fn", recording)
    return calls


@pytest.mark.gen_test
async def test_concurrent_socket_sign_ins_are_each_refused_or_ready_as_alone(api, sockets, accounts, batch_calls):
    Notification.create(
        user=accounts["active"],
        notification_type="request_created",
        title="t",
        message="m",
        payload={"service_request_id": None, "is_emergency": False},
    )
    tokens = {name: api.token(user) for name, user in accounts.items()}
    spoil(accounts)
    opened = {name: await sockets.open() for name in [*tokens, "active2"]}
    tokens["active2"] = tokens["active"]

    await asyncio.gather(*(send(ws, {"type": "auth", "token": tokens[name]}) for name, ws in opened.items()))
    answers = dict(zip(opened, await asyncio.gather(*(receive(ws) for ws in opened.values())), strict=True))

    assert answers["active"] == answers["active2"] == {"type": "ready", "unread_count": 1}
    assert answers["serviceman"] == {"type": "ready", "unread_count": 0}
    for name, code in (("deactivated", 4001), ("deleted", 4001), ("ended", 4003)):
        assert answers[name] is None and opened[name].close_code == code, (name, opened[name].close_code)
    assert sum(len(keys) for keys in batch_calls) <= len(opened)  # never more lookups than sockets


@pytest.mark.gen_test
async def test_concurrent_requests_are_each_refused_or_answered_as_alone(api, settings, accounts):
    tokens = {name: api.token(user) for name, user in accounts.items()}
    cookies = {name: session_cookie(settings, user) for name, user in accounts.items()}
    spoil(accounts)

    calls = [api.get(ME, token=token) for token in tokens.values()]
    calls += [api.get(ME, headers={"Cookie": f"serviceman_session={cookie}"}) for cookie in cookies.values()]
    responses = await asyncio.gather(*calls)
    by_token = dict(zip(tokens, responses[: len(tokens)], strict=True))
    by_cookie = dict(zip(cookies, responses[len(tokens) :], strict=True))

    for answers in (by_token, by_cookie):
        assert answers["active"].status == 200 and answers["active"].data["id"] == accounts["active"].id
        assert answers["serviceman"].status == 200 and answers["serviceman"].data["id"] == accounts["serviceman"].id
        assert_error(answers["deactivated"], 401, "not_authenticated")
        assert_error(answers["deleted"], 401, "not_authenticated")
        assert_error(answers["ended"], 401, "session_ended")


@pytest.mark.gen_test
async def test_a_deactivation_or_an_ended_session_is_seen_by_the_next_request(api, client_user, other_client):
    first, second = api.token(client_user), api.token(other_client)
    assert (await api.get(ME, token=first)).status == 200
    assert (await api.get(ME, token=second)).status == 200

    User.update(is_active=False).where(User.id == client_user.id).execute()
    User.update(session_version=User.session_version + 1).where(User.id == other_client.id).execute()

    assert_error(await api.get(ME, token=first), 401, "not_authenticated")
    assert_error(await api.get(ME, token=second), 401, "session_ended")


@pytest.mark.gen_test
async def test_one_batch_answers_many_callers_and_each_gets_a_user_of_its_own(client_user, other_client, batch_calls):
    version = client_user.session_version
    first, second, other, refused = await asyncio.gather(
        identity.user_at_version(client_user.id, version),
        identity.user_at_version(client_user.id, version),
        identity.user_at_version(other_client.id, other_client.session_version),
        identity.user_at_version(other_client.id, other_client.session_version + 1),
        return_exceptions=True,
    )

    assert len(batch_calls) == 1 and len(batch_calls[0]) == 3  # the repeated key is looked up once
    assert first.id == second.id == client_user.id and other.id == other_client.id
    assert first is not second  # a handler may change and save its user: no other request sees it
    first.first_name = "Changed"
    assert second.first_name == client_user.first_name and not second.is_dirty()
    assert isinstance(refused, NotAuthenticated) and refused.code == "session_ended"


@pytest.mark.gen_test
async def test_one_socket_batch_answers_unread_counts_per_user(client_user, other_client, batch_calls):
    Notification.create(
        user=client_user,
        notification_type="request_created",
        title="t",
        message="m",
        payload={"service_request_id": None, "is_emergency": False},
    )
    (mine, mine_unread), (theirs, theirs_unread) = await asyncio.gather(
        identity.socket_user(client_user.id, client_user.session_version),
        identity.socket_user(other_client.id, other_client.session_version),
    )

    assert (mine.id, mine_unread, theirs.id, theirs_unread) == (client_user.id, 1, other_client.id, 0)
    assert len(batch_calls) == 1
