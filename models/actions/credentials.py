"""Email verification, password reset and password change.

Links carry a random token (secrets.token_urlsafe); only its SHA-256 is stored (OneTimeToken), so
the table leaks no usable link. A token is claimed by a conditional UPDATE (`used_at IS NULL`), so
of two concurrent confirms only one wins. A new reset link supersedes older unused ones; older
verification links stay valid until they expire (they grant nothing but the verification).

Asking for a reset or a new verification link answers at once and the same for every address:
the request only queues a job (workers/account_email.py) that looks the address up, issues a
token and sends the email. The lookup is never in the request path, so timing tells nothing.
Jobs are named by dotted path (RQ resolves it in the worker, the embedded transport in-process): the
domain imports nothing of the pipeline, and a path once queued must stay importable (tests/test_job_paths.py).
"""

import hashlib
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from models.foundation import tokens
from models.foundation.clock import utcnow
from models.foundation.errors import ValidationFailed
from models.foundation.settings import Settings
from models.transport import Transport

from ..db import database, for_update
from ..users import OneTimeToken, User
from .passwords import require_acceptable_password
from .sessions import end_all_sessions

log = logging.getLogger("serviceman.credentials")

VERIFY_EMAIL, PASSWORD_RESET = OneTimeToken.VERIFY_EMAIL, OneTimeToken.PASSWORD_RESET
# Not a token purpose: the email to the owner of an address someone tried to register; it carries a
# PASSWORD_RESET link (workers/account_email.py).
ACCOUNT_EXISTS = "account_exists"
MAX_TOKEN_LENGTH = 128  # ours are 43 characters; anything far longer is not one of ours
# The account email jobs (workers/account_email.py), by the dotted paths RQ stores in Redis.
EMAIL_LINK_JOB = "workers.account_email.email_link_to_address"
VERIFICATION_LINK_JOB = "workers.account_email.email_verification_link"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def lifetime(settings: Settings, purpose: str) -> timedelta:
    if purpose == VERIFY_EMAIL:
        return timedelta(hours=settings.email_verification_hours)
    return timedelta(minutes=settings.password_reset_minutes)


def issue_token(settings: Settings, user_id: int, purpose: str) -> tuple[int, str]:
    """(row id, raw token) of a new one-time token; the raw token exists only in the email."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    with database.atomic():
        if purpose == PASSWORD_RESET:
            # The user's row lock orders concurrent requests, so the newest link is the only live one.
            for_update(User.select(User.id).where(User.id == user_id)).first()
            # Superseded links count as expired: only the newest reset email works.
            OneTimeToken.update(expires_at=now).where(
                OneTimeToken.user == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_null(),
                OneTimeToken.expires_at > now,
            ).execute()
        row = OneTimeToken.create(
            user=user_id, purpose=purpose, token_hash=token_hash(raw), expires_at=now + lifetime(settings, purpose)
        )
    return row.id, raw


def live_token(token_id: int, raw: str) -> OneTimeToken | None:
    """The token row if it is still usable and `raw` is its token (the email job checks before sending)."""
    row = OneTimeToken.get_or_none(OneTimeToken.id == token_id)
    if row is None or row.used_at is not None or row.expires_at <= utcnow() or row.token_hash != token_hash(raw):
        return None
    return row


def _refuse(code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"token": [message]}, code=code)


def _find(raw: object, purpose: str) -> OneTimeToken:
    """The unused, unexpired token row of this purpose, or 422 saying what is wrong with the link."""
    row = None
    if isinstance(raw, str) and 0 < len(raw) <= MAX_TOKEN_LENGTH:
        row = OneTimeToken.get_or_none(OneTimeToken.token_hash == token_hash(raw))
    if row is None or row.purpose != purpose:
        raise _refuse("token_invalid", "This link is not valid. Check that it was copied whole, or ask for a new one.")
    if row.used_at is not None:
        raise _refuse("token_used", "This link was already used. Ask for a new one if you still need it.")
    if row.expires_at <= utcnow():
        raise _refuse("token_expired", "This link has expired. Ask for a new one.")
    return row


def _claim(row: OneTimeToken) -> None:
    """Mark the token used, or refuse if another request claimed it (or it expired) meanwhile."""
    now = utcnow()
    won = (
        OneTimeToken.update(used_at=now)
        .where(OneTimeToken.id == row.id, OneTimeToken.used_at.is_null(), OneTimeToken.expires_at > now)
        .execute()
    )
    if not won:
        raise _refuse("token_used", "This link was already used. Ask for a new one if you still need it.")


# Email verification ------------------------------------------------------------------------------


def send_verification_email(transport: Transport | None, user: User) -> None:
    """Queue the verification email of a new account (registration). The job issues the token: no
    job argument, Redis key or log line ever holds it. Never fails the caller: if the queue is
    unreachable the user can ask for a new link."""
    if transport is None:
        log.warning("no pipeline configured: the verification email of user %s is not sent", user.id)
        return
    try:
        transport.enqueue(VERIFICATION_LINK_JOB, user.id, job_id=f"account-verify-{user.id}-{uuid.uuid4().hex}")
    except Exception:
        log.exception("could not queue the verification email of user %s", user.id)


def verify_email(raw: object) -> User:
    """Claim a verification token and mark its user's address verified."""
    row = _find(raw, VERIFY_EMAIL)
    with database.atomic():
        _claim(row)
        # The address verified is the one the link was sent to: the email never changes today.
        User.update(email_verified_at=utcnow()).where(
            User.id == row.user_id, User.email_verified_at.is_null()
        ).execute()
    return User.get_by_id(row.user_id)


def tell_owner_of_registration_attempt(transport: Transport | None, email: str) -> None:
    """Someone tried to register `email`, which has an account: queue an email to its owner (how to sign
    in, and a reset link). Like a reset request, the job looks the address up. Never fails the caller."""
    try:
        _queue_lookup(transport, ACCOUNT_EXISTS, email)
    except Exception:
        log.exception("could not queue the registration-attempt email")


def request_verification_email(transport: Transport | None, email: str) -> None:
    """Queue a new verification link for `email` if it names an active, unverified account."""
    _queue_lookup(transport, VERIFY_EMAIL, email)


# Password reset and change -----------------------------------------------------------------------


def request_password_reset(transport: Transport | None, email: str) -> None:
    """Queue a reset link for `email` if it names an active account."""
    _queue_lookup(transport, PASSWORD_RESET, email)


def _queue_lookup(transport: Transport | None, purpose: str, email: str) -> None:
    if transport is None:
        log.warning("no pipeline configured: the %s email for a request is not sent", purpose)
        return
    # The same work for every address: the lookup happens in the job, not here.
    transport.enqueue(EMAIL_LINK_JOB, purpose, email, job_id=f"account-{uuid.uuid4().hex}")


def confirm_password_reset(settings: Settings, transport: Transport | None, raw: object, password: str) -> User:
    """Set a new password with a reset token; every session of the user ends."""
    row = _find(raw, PASSWORD_RESET)
    # The schema checked the rule but not "not your own email": that needs the token's user.
    require_acceptable_password(password, User.get_by_id(row.user_id).email)
    password_hash = tokens.hash_password(password, settings.bcrypt_rounds)
    # Following the link proves the address too.
    end_all_sessions(
        transport,
        row.user_id,
        "password reset",
        precondition=lambda: _claim(row),
        password_hash=password_hash,
        email_verified_at=_verified_at(row.user_id),
    )
    return User.get_by_id(row.user_id)


def _verified_at(user_id: int) -> datetime:
    user = User.get_by_id(user_id)
    return user.email_verified_at or utcnow()


def change_password(
    settings: Settings, transport: Transport | None, user: User, current_password: str, new_password: str
) -> User:
    """Check the current password, set the new one and end every session (this one included);
    returns the user, reloaded with its new session version, for a fresh token pair."""
    if not tokens.check_password(current_password, user.password_hash):
        # 422, not 401: the caller's session is fine, and a 401 makes clients sign out.
        message = "The current password is incorrect."
        raise ValidationFailed(message, fields={"current_password": [message]}, code="invalid_current_password")
    if tokens.check_password(new_password, user.password_hash):
        raise ValidationFailed.on("new_password", "The new password must differ from the current one.")
    require_acceptable_password(new_password, user.email, field="new_password")
    end_all_sessions(
        transport, user.id, "password changed", password_hash=tokens.hash_password(new_password, settings.bcrypt_rounds)
    )
    return User.get_by_id(user.id)
