"""Ending every session of a user at once, and checking that a token's session is still alive.

A token carries the user's `session_version` when it was issued (claim `sv`). end_all_sessions()
bumps the version and revokes every refresh token in one transaction, so every token already
issued is refused on its next use (REST 401 `session_ended`, refresh 401, websocket auth refused);
after the commit it tells every web process, through the same per-user push channel as
notifications, to close that user's open sockets (code 4003) at once.

A dashboard sign-in is one session of its own: a RefreshToken row that no token is ever issued for
(start_web_session), whose jti the signed cookie names beside the user and the version. Signing out
revokes that row (end_web_session), so a copy of the cookie is refused by the very next lookup, and
the web processes close the sockets that cookie opened; the user's other sessions are untouched.
"""

import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable
from datetime import timedelta
from typing import Any, cast

from models.foundation import tokens
from models.foundation.clock import utcnow
from models.foundation.errors import NotAuthenticated, NotFound
from models.foundation.settings import Settings
from models.transport import Transport

from ..db import database
from ..users import RefreshToken, User

log = logging.getLogger("serviceman.sessions")

SESSION_ENDED = "session_ended"  # the push message type the hub turns into closed sockets
# A dashboard session's id: the jti of its RefreshToken row, as the cookie carries it.
WEB_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
# (user id, session version, dashboard session id or None): what a token or a cookie says it is.
SessionKey = tuple[int, int, str | None]


def end_all_sessions(
    transport: Transport | None,
    user_id: int,
    reason: str,
    *,
    precondition: Callable[[], object] | None = None,
    and_then: Callable[[], object] | None = None,
    **user_changes: Any,
) -> int:
    """Bump the user's session version (with `user_changes`, e.g. a new password_hash or
    is_active=False, in the same UPDATE), revoke every refresh token, then close open sockets
    (told through `transport`; None: no pipeline, the tokens are refused all the same).

    `precondition()` runs first in the same transaction and may raise to change nothing (a reset
    token being claimed); `and_then()` runs after the UPDATE in it (what depends on the change).
    Returns the new session version."""
    if database.transaction_depth():
        # The sockets are told after the commit; inside a caller's transaction that would be too early.
        raise RuntimeError("end_all_sessions() commits by itself; call it outside a transaction")
    with database.atomic():
        if precondition is not None:
            precondition()
        updated = (
            User.update(session_version=User.session_version + 1, **user_changes).where(User.id == user_id).execute()
        )
        if not updated:
            raise NotFound("No such user.")
        RefreshToken.update(revoked_at=utcnow()).where(
            RefreshToken.user == user_id, RefreshToken.revoked_at.is_null()
        ).execute()
        if and_then is not None:
            and_then()
        version = User.select(User.session_version).where(User.id == user_id).scalar()
    _close_open_sockets(transport, user_id, {"session_version": version}, reason)
    return version


def start_web_session(settings: Settings, user: User) -> str:
    """A dashboard sign-in: its server-side row, live for the cookie's lifetime; returns its id."""
    session_id = secrets.token_hex(16)
    RefreshToken.create(
        jti=session_id,
        family=session_id,
        user=user.id,
        expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
    )
    return session_id


def end_web_session(transport: Transport | None, user_id: int, session_id: str) -> None:
    """Sign-out: revoke that one dashboard session, then close the sockets it opened (every web
    process). Whatever state the account is in, the session ends."""
    RefreshToken.update(revoked_at=utcnow()).where(
        RefreshToken.jti == session_id, RefreshToken.user == user_id, RefreshToken.revoked_at.is_null()
    ).execute()
    _close_open_sockets(transport, user_id, {"web_session": session_id}, "signed out")


def _close_open_sockets(transport: Transport | None, user_id: int, which: dict[str, Any], reason: str) -> None:
    """`which`: {"session_version": v} closes the sockets opened before v, {"web_session": id} the
    ones that dashboard session opened."""
    if transport is None:
        return
    try:
        transport.push(user_id, {"type": SESSION_ENDED, **which, "reason": reason})
    except Exception:
        # The tokens are refused already; a socket that stays open gets no replay (checked per
        # resume), no pushes while Redis is down, and is closed when its web process's push feed
        # resubscribes and looks every socket's session up again (handlers/web/hub.py).
        log.exception("could not tell the web processes to close user %s's sockets", user_id)


def session_user(claims: dict[str, Any]) -> User:
    """The active user a valid token names, if its session was not ended since it was issued."""
    return user_at_version(int(claims["sub"]), tokens.session_version(claims))


def user_at_version(user_id: int, version: int, web_session: str | None = None) -> User:
    """The active user, if `version` (a token's or the dashboard cookie's) is still their session
    and, for the dashboard, its session `web_session` was not signed out."""
    key = (user_id, version, web_session)
    answer = users_at_versions([key])[key]
    if isinstance(answer, NotAuthenticated):
        raise answer
    return answer


def users_at_versions(keys: Collection[SessionKey]) -> dict[SessionKey, User | NotAuthenticated]:
    """`user_at_version` for many (user id, version, web session or None) keys: {key: user or the
    NotAuthenticated it would raise}, in one query (two when dashboard sessions are among them;
    handlers/web/coalesce.py)."""
    users = {user.id: user for user in User.select().where(User.id.in_({key[0] for key in keys}))}
    live = live_web_sessions(keys)
    return {key: refusal_at_version(users.get(key[0]), key[1], key[2], live) or users[key[0]] for key in keys}


def live_web_sessions(keys: Iterable[SessionKey]) -> set[tuple[str, int]]:
    """{(session id, user id)} of the dashboard sessions named in `keys` that are neither signed out
    nor expired."""
    wanted = {key[2] for key in keys if key[2] is not None}
    if not wanted:
        return set()
    return set(
        cast(
            Iterable[tuple[str, int]],
            RefreshToken.select(RefreshToken.jti, RefreshToken.user)
            .where(RefreshToken.jti.in_(wanted), RefreshToken.revoked_at.is_null(), RefreshToken.expires_at > utcnow())
            .tuples(),
        )
    )


def refusal_at_version(
    user: User | None, version: int, web_session: str | None = None, live: Collection[tuple[str, int]] = ()
) -> NotAuthenticated | None:
    """Why `user` (None: no such row) may not act under session `version` (and dashboard session
    `web_session`, among the `live` ones), or None."""
    if user is None or not user.is_active:
        return NotAuthenticated("This account does not exist or is deactivated.")
    if version != user.session_version:
        return NotAuthenticated(
            "This session has ended (the password was changed or reset, or the account was suspended); sign in again.",
            code="session_ended",
        )
    if web_session is not None and (web_session, user.id) not in live:
        return NotAuthenticated("This session has ended (signed out, or expired); sign in again.", code="session_ended")
    return None
