"""Password hashing and JWTs. The algorithm is pinned on decode; every token carries a jti and the
user's session version `sv` (a token issued before the user's sessions were ended is refused)."""

import threading
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import bcrypt
import jwt

from models.foundation.clock import utcnow

if TYPE_CHECKING:
    from models.foundation.settings import Settings

ALGORITHM = "HS256"
ACCESS, REFRESH = "access", "refresh"
# Tokens whose signature and claims were verified, by (key, token): a phone polling every few seconds
# presents the same token each time, and HS256 verification was an eighth of a "nothing new" poll's
# CPU. A signature checked once is as good the next time; only `exp` moves, so it is checked again on
# every use (as PyJWT does, no leeway). Failures are never kept: a token refused for a time-dependent
# reason (issued a moment in the future by a skewed clock) may pass later.
VERIFIED_REMEMBERED = 4096
_verified: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_verified_lock = threading.Lock()  # decode runs on the event loop and in the thread pool (refresh)


class TokenSubject(Protocol):
    """Whom an access token names (a models.User; the foundation does not import the domain)."""

    id: int
    role: str
    session_version: int


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def encode(
    settings: "Settings",
    *,
    user_id: int,
    role: str,
    kind: str,
    lifetime: timedelta,
    jti: str | None = None,
    family: str | None = None,
    session_version: int = 0,
) -> tuple[str, dict[str, Any]]:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "type": kind,
        "sv": session_version,
        "jti": jti or uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime,
    }
    if family:
        claims["fam"] = family
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM), claims


def access_token(settings: "Settings", user: TokenSubject) -> str:
    token, _ = encode(
        settings,
        user_id=user.id,
        role=user.role,
        kind=ACCESS,
        lifetime=timedelta(minutes=settings.access_token_minutes),
        session_version=user.session_version,
    )
    return token


def decode(settings: "Settings", token: str, kind: str) -> dict[str, Any] | None:
    """The claims of a valid token of this kind, or None (expired, tampered, wrong kind)."""
    claims = _verified_claims(settings.secret_key, token)
    if claims is None or claims.get("type") != kind or not _is_user_id(claims["sub"]):
        return None
    return dict(claims)  # the caller's own copy: the remembered one is never changed


def _verified_claims(secret_key: str, token: str) -> dict[str, Any] | None:
    key = (secret_key, token)
    with _verified_lock:
        claims = _verified.get(key)
        if claims is not None:
            if claims["exp"] > utcnow().timestamp():
                _verified.move_to_end(key)
                return claims
            del _verified[key]
            return None
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "jti", "sub", "role"]},
        )
    except jwt.PyJWTError:
        return None
    with _verified_lock:  # (PyJWT required `exp` and checked it is a number)
        _verified[key] = claims
        while len(_verified) > VERIFIED_REMEMBERED:
            _verified.popitem(last=False)
    return claims


def session_version(claims: dict[str, Any]) -> int:
    """The `sv` a token was issued under; tokens from before sessions were versioned count as 0."""
    sv = claims.get("sv", 0)
    return sv if isinstance(sv, int) and not isinstance(sv, bool) else -1


def _is_user_id(sub: object) -> bool:
    # A correctly signed token still only names a user by a decimal id; anything else is refused
    # here rather than failing later as a database or conversion error.
    return isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 10 and int(sub) < 2**31
