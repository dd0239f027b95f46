"""Password hashing and JWTs. The algorithm is pinned on decode; every token carries a jti and the
user's session version `sv` (a token issued before the user's sessions were ended is refused)."""
import uuid
from datetime import timedelta

import bcrypt
import jwt

from models.foundation.clock import utcnow

ALGORITHM = "HS256"
ACCESS, REFRESH = "access", "refresh"


def hash_password(password, rounds):
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def check_password(password, password_hash):
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def encode(settings, *, user_id, role, kind, lifetime, jti=None, family=None, session_version=0):
    now = utcnow()
    claims = {
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


def access_token(settings, user):
    token, _ = encode(settings, user_id=user.id, role=user.role, kind=ACCESS,
                      lifetime=timedelta(minutes=settings.access_token_minutes),
                      session_version=user.session_version)
    return token


def decode(settings, token, kind):
    """The claims of a valid token of this kind, or None (expired, tampered, wrong kind)."""
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "jti", "sub", "role"]})
    except jwt.PyJWTError:
        return None
    if claims.get("type") != kind or not _is_user_id(claims["sub"]):
        return None
    return claims


def session_version(claims):
    """The `sv` a token was issued under; tokens from before sessions were versioned count as 0."""
    sv = claims.get("sv", 0)
    return sv if isinstance(sv, int) and not isinstance(sv, bool) else -1


def _is_user_id(sub):
    # A correctly signed token still only names a user by a decimal id; anything else is refused
    # here rather than failing later as a database or conversion error.
    return isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 10 and int(sub) < 2 ** 31
