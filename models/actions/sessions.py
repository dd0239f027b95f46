"""Ending every session of a user at once, and checking that a token's session is still alive.

A token carries the user's `session_version` when it was issued (claim `sv`). end_all_sessions()
bumps the version and revokes every refresh token in one transaction, so every token already
issued is refused on its next use (REST 401 `session_ended`, refresh 401, websocket auth refused);
after the commit it tells every web process, through the same per-user push channel as
notifications, to close that user's open sockets (code 4003) at once.
"""
import logging

from server import tokens
from server.clock import utcnow
from server.errors import NotAuthenticated, NotFound

from ..db import database
from ..users import RefreshToken, User

log = logging.getLogger("serviceman.sessions")

SESSION_ENDED = "session_ended"  # the push message type the hub turns into closed sockets


def end_all_sessions(user_id, reason, *, precondition=None, and_then=None, **user_changes):
    """Bump the user's session version (with `user_changes`, e.g. a new password_hash or
    is_active=False, in the same UPDATE), revoke every refresh token, then close open sockets.

    `precondition()` runs first in the same transaction and may raise to change nothing (a reset
    token being claimed); `and_then()` runs after the UPDATE in it (what depends on the change).
    Returns the new session version."""
    if database.transaction_depth():
        # The sockets are told after the commit; inside a caller's transaction that would be too early.
        raise RuntimeError("end_all_sessions() commits by itself; call it outside a transaction")
    with database.atomic():
        if precondition is not None:
            precondition()
        updated = User.update(session_version=User.session_version + 1, **user_changes).where(
            User.id == user_id).execute()
        if not updated:
            raise NotFound("No such user.")
        RefreshToken.update(revoked_at=utcnow()).where(
            RefreshToken.user == user_id, RefreshToken.revoked_at.is_null()).execute()
        if and_then is not None:
            and_then()
        version = User.select(User.session_version).where(User.id == user_id).scalar()
    _close_open_sockets(user_id, version, reason)
    return version


def _close_open_sockets(user_id, version, reason):
    from workers import runtime

    transport = runtime.transport()
    if transport is None:
        return
    try:
        transport.push(user_id, {"type": SESSION_ENDED, "session_version": version, "reason": reason})
    except Exception:
        # The tokens are refused already; a socket that stays open gets no replay (checked per
        # resume) and Redis being down means it gets no pushes either.
        log.exception("could not tell the web processes to close user %s's sockets", user_id)


def session_user(claims):
    """The active user a valid token names, if its session was not ended since it was issued."""
    return user_at_version(int(claims["sub"]), tokens.session_version(claims))


def user_at_version(user_id, version):
    """The active user, if `version` (a token's or the dashboard cookie's) is still their session."""
    user = User.get_or_none(User.id == user_id)
    refusal = refusal_at_version(user, version)
    if refusal is not None:
        raise refusal
    return user


def users_at_versions(keys):
    """`user_at_version` for many (user id, version) pairs in one query: {key: user or the
    NotAuthenticated it would raise} (server/coalesce.py)."""
    users = {user.id: user for user in User.select().where(User.id.in_({user_id for user_id, _ in keys}))}
    return {key: refusal_at_version(users.get(key[0]), key[1]) or users[key[0]] for key in keys}


def refusal_at_version(user, version):
    """Why `user` (None: no such row) may not act under session `version`, or None."""
    if user is None or not user.is_active:
        return NotAuthenticated("This account does not exist or is deactivated.")
    if version != user.session_version:
        return NotAuthenticated("This session has ended (the password was changed or reset, or the account "
                                "was suspended); sign in again.", code="session_ended")
    return None
