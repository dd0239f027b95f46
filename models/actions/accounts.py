"""Registration, login, refresh-token rotation, logout, profile updates, admin creation."""

import functools
import secrets
import uuid
from collections.abc import Collection, Iterable
from datetime import timedelta
from typing import Any

import peewee

from models.foundation import tokens
from models.foundation.clock import utcnow
from models.foundation.errors import Conflict, InvalidTransition, NotAuthenticated, NotFound, ValidationFailed
from models.foundation.settings import Settings
from models.transport import Transport

from ..catalog import Category
from ..db import database, for_update
from ..users import ApprovalStatus, RefreshToken, Role, ServicemanCategory, ServicemanProfile, User
from ..workflow import unit_of_work
from . import credentials, vetting
from .credentials import send_verification_email, tell_owner_of_registration_attempt
from .listing import listing_changed, refresh_listing
from .passwords import require_acceptable_password
from .sessions import end_all_sessions, session_user, start_web_session
from .standing import hold_for_vetting, refuse_if_suspended


@functools.cache
def dummy_password_hash(rounds: int) -> str:
    """A hash of a password nobody knows, at the cost real hashes have: checked against when the email
    is unknown, so that answer takes as long as a wrong password for a known one (no account oracle)."""
    return tokens.hash_password(secrets.token_urlsafe(16), rounds)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _check_categories(category_ids: Iterable[int]) -> list[int]:
    ids = set(category_ids)
    found = {c.id for c in Category.select(Category.id).where(Category.id.in_(ids), Category.is_active == True)}
    missing = sorted(ids - found)
    if missing:
        raise ValidationFailed.on("category_ids", f"Unknown or inactive categories: {missing}.")
    return sorted(ids)


def _set_categories(profile: ServicemanProfile, category_ids: Iterable[int]) -> None:
    ServicemanCategory.delete().where(ServicemanCategory.profile == profile).execute()
    ServicemanCategory.insert_many([{"profile": profile, "category": cid} for cid in category_ids]).execute()
    refresh_listing(profile.user_id)


class EmailTaken(ValidationFailed):
    """The address already has an account (the 422 the contract's 201-with-tokens answer implies)."""

    def __init__(self, email: str) -> None:
        super().__init__(fields={"email": [EMAIL_TAKEN]})
        self.email = email


EMAIL_TAKEN = (
    "An account with this email already exists. Sign in, or reset its password with the link we "
    "have just emailed to it."
)


def register(
    settings: Settings,
    transport: Transport | None,
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    phone: str,
    role: str,
    category_ids: Collection[int] = (),
    bio: str = "",
    years_of_experience: int = 0,
    verified: bool = False,
) -> User:
    """Create a client or serviceman account; a serviceman starts PENDING_APPROVAL. The address is
    sent a verification link (queued on `transport`), unless `verified` (demo accounts).

    An address that already has an account is refused (422), after the same bcrypt work as a new one,
    and its owner is emailed (a sign-in hint and a reset link): registering signs the new user in at
    once (201 with tokens, the contract), so its answer cannot be the same for a taken address (see the
    README's "Accounts"); the owner learns of every such attempt instead."""
    if role not in Role.SELF_REGISTERED:
        raise ValidationFailed.on("role", "Choose client or serviceman.")
    if role == Role.SERVICEMAN and not category_ids:
        raise ValidationFailed.on("category_ids", "A serviceman must choose at least one category.")
    require_acceptable_password(password, email)
    password_hash = tokens.hash_password(password, settings.bcrypt_rounds)  # paid for taken addresses too
    try:
        with unit_of_work():
            if role == Role.SERVICEMAN:
                category_ids = _check_categories(category_ids)
            user = _create_user(
                email=email,
                password_hash=password_hash,
                first_name=first_name,
                last_name=last_name,
                phone=phone,
                role=role,
                email_verified_at=utcnow() if verified else None,
            )
            if role == Role.SERVICEMAN:
                profile = ServicemanProfile.create(user=user, bio=bio, years_of_experience=years_of_experience)
                _set_categories(profile, category_ids)
                vetting.record_application(user, profile)
    except EmailTaken as taken:
        tell_owner_of_registration_attempt(transport, taken.email)
        raise
    if not verified:
        send_verification_email(transport, user)
    return user


def _create_user(**fields: Any) -> User:
    fields["email"] = normalize_email(fields["email"])
    if User.select().where(User.email == fields["email"]).exists():
        raise EmailTaken(fields["email"])
    try:
        with database.atomic():
            return User.create(**fields)
    except peewee.IntegrityError as exc:  # a concurrent registration won the race
        raise EmailTaken(fields["email"]) from exc


def create_admin(
    settings: Settings, *, email: str, password: str, first_name: str = "Admin", last_name: str = "", phone: str = ""
) -> User:
    require_acceptable_password(password, email)
    # Created by someone who already holds the platform (an admin or the server's shell): verified.
    return _create_user(
        email=email,
        password_hash=tokens.hash_password(password, settings.bcrypt_rounds),
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        role=Role.ADMIN,
        email_verified_at=utcnow(),
    )


def authenticate(email: str, password: str, *, rounds: int) -> User:
    """The active user with this email and password. `rounds` is settings.bcrypt_rounds: an unknown
    email is checked against a hash of that cost, so both failures take the same time."""
    user = User.get_or_none(User.email == normalize_email(email))
    if not tokens.check_password(password, user.password_hash if user else dummy_password_hash(rounds)) or user is None:
        raise NotAuthenticated("Email or password is incorrect.", code="invalid_credentials")
    if not user.is_active:
        raise NotAuthenticated("This account is deactivated.", code="account_inactive")
    return user


def issue_token_pair(settings: Settings, user: User, family: str | None = None) -> dict[str, str]:
    """A new access token and a refresh token recorded in its rotation family."""
    family = family or uuid.uuid4().hex
    lifetime = timedelta(days=settings.refresh_token_days)
    refresh, claims = tokens.encode(
        settings,
        user_id=user.id,
        role=user.role,
        kind=tokens.REFRESH,
        lifetime=lifetime,
        family=family,
        session_version=user.session_version,
    )
    RefreshToken.create(jti=claims["jti"], family=family, user=user, expires_at=claims["exp"])
    return {"access": tokens.access_token(settings, user), "refresh": refresh}


def login(settings: Settings, email: str, password: str) -> tuple[User, dict[str, str]]:
    """Sign in with email and password: (user, token pair)."""
    user = authenticate(email, password, rounds=settings.bcrypt_rounds)
    return user, issue_token_pair(settings, user)


def login_web(settings: Settings, email: str, password: str) -> tuple[User, str]:
    """A dashboard sign-in: the same check as `login`, then a server-side web session (for the
    cookie) instead of tokens: (user, web session id)."""
    user = authenticate(email, password, rounds=settings.bcrypt_rounds)
    return user, start_web_session(settings, user)


def sign_up(settings: Settings, transport: Transport | None, **fields: Any) -> tuple[User, dict[str, str]]:
    """Register and sign in at once (the contract: 201 with tokens): (user, token pair)."""
    user = register(settings, transport, **fields)
    return user, issue_token_pair(settings, user)


def change_password(
    settings: Settings, transport: Transport | None, user: User, current_password: str, new_password: str
) -> dict[str, str]:
    """Change the password (every session ends, this one included), then sign in again: a fresh token
    pair, so the client that changed it stays signed in."""
    user = credentials.change_password(settings, transport, user, current_password, new_password)
    return issue_token_pair(settings, user)


def _revoke_family(family: str) -> None:
    RefreshToken.update(revoked_at=utcnow()).where(
        RefreshToken.family == family, RefreshToken.revoked_at.is_null()
    ).execute()


def rotate_refresh(settings: Settings, refresh_token: str) -> dict[str, str]:
    """Swap a refresh token for a new pair. Reusing a revoked token revokes its whole family."""
    claims = tokens.decode(settings, refresh_token, tokens.REFRESH)
    if claims is None:
        raise NotAuthenticated("The refresh token is invalid or expired.", code="token_invalid")
    with database.atomic():
        row = RefreshToken.get_or_none(RefreshToken.jti == claims["jti"])
        if row is None:
            raise NotAuthenticated("The refresh token is invalid or expired.", code="token_invalid")
        user = session_user(claims)  # before the reuse check: an ended session says so, not "reused"
        # Conditional update: of two concurrent refreshes with one token, only one wins.
        won = (
            RefreshToken.update(revoked_at=utcnow())
            .where(RefreshToken.id == row.id, RefreshToken.revoked_at.is_null())
            .execute()
        )
        if won:
            return issue_token_pair(settings, user, family=row.family)
        _revoke_family(row.family)
    # Raised after the commit, so the family stays revoked.
    raise NotAuthenticated(
        "This refresh token was already used; every session of this login has been signed out.", code="token_reused"
    )


def logout(settings: Settings, user: User, refresh_token: str) -> None:
    claims = tokens.decode(settings, refresh_token, tokens.REFRESH)
    if claims is None or claims["sub"] != str(user.id):
        raise ValidationFailed.on("refresh", "This is not a valid refresh token of yours.")
    RefreshToken.update(revoked_at=utcnow()).where(
        RefreshToken.jti == claims["jti"], RefreshToken.revoked_at.is_null()
    ).execute()


def serviceman_profile(user_id: int) -> ServicemanProfile:
    profile = ServicemanProfile.get_or_none(ServicemanProfile.user == user_id)
    if profile is None:
        raise NotFound("No such serviceman.")
    return profile


def update_me(transport: Transport | None, user: User, **changes: Any) -> User:
    """Users edit their names and phone; servicemen also their profile fields."""
    profile_fields = {"bio", "years_of_experience", "is_available", "category_ids"}
    profile_changes = {k: changes.pop(k) for k in list(changes) if k in profile_fields}
    if profile_changes and user.role != Role.SERVICEMAN:
        raise ValidationFailed(
            "Only servicemen have these fields.",
            fields={k: ["Only servicemen have this field."] for k in profile_changes},
        )
    with database.atomic():
        # What the listing and the admins see of a suspended serviceman stays as it was suspended.
        refuse_if_suspended(user, "change your profile")
        if changes:
            User.update(**changes).where(User.id == user.id).execute()
        if profile_changes:
            profile = serviceman_profile(user.id)
            category_ids = profile_changes.pop("category_ids", None)
            if category_ids is not None:
                if not category_ids:
                    raise ValidationFailed.on("category_ids", "Choose at least one category.")
                _set_categories(profile, _check_categories(category_ids))
            if profile_changes:
                ServicemanProfile.update(**profile_changes).where(ServicemanProfile.id == profile.id).execute()
    if user.role == Role.SERVICEMAN:  # a name, a bio, availability or categories: all on the public card
        listing_changed(transport)
    return User.get_by_id(user.id)


def deactivate_user(transport: Transport | None, actor: User, user_id: int) -> User:
    """An admin deactivates a user. Never itself, and never the last active admin, so the platform
    always keeps someone who can run it."""
    if user_id == actor.id:
        raise Conflict("You cannot deactivate your own account; ask another admin.", code="cannot_deactivate_self")
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("No such user.")

    def keep_an_admin() -> None:
        if user.role == Role.ADMIN:
            # Every active admin's row, locked in id order: two admins deactivating each other take turns
            # (never deadlock), and the second sees the first's change before it counts.
            active = [
                u.id
                for u in for_update(
                    User.select(User.id).where(User.role == Role.ADMIN, User.is_active == True).order_by(User.id)
                )
            ]
            if active == [user_id]:
                raise Conflict(
                    "This is the last active admin; create or reactivate another admin first.", code="last_admin"
                )

    # In end_all_sessions' own transaction: the check, the deactivation and the listing commit together.
    end_all_sessions(
        transport,
        user_id,
        "account deactivated",
        precondition=keep_an_admin,
        and_then=lambda: refresh_listing(user_id),
        is_active=False,
    )
    listing_changed(transport)
    return User.get_by_id(user_id)


# action -> (approval statuses it may start from, the status it leads to)
APPROVAL_MOVES = {
    "approve": ({ApprovalStatus.PENDING_APPROVAL, ApprovalStatus.REJECTED}, ApprovalStatus.APPROVED),
    "reject": ({ApprovalStatus.PENDING_APPROVAL}, ApprovalStatus.REJECTED),
    "suspend": ({ApprovalStatus.APPROVED}, ApprovalStatus.SUSPENDED),
    "reinstate": ({ApprovalStatus.SUSPENDED}, ApprovalStatus.APPROVED),
}


APPROVAL_PAST = {"approve": "approved", "reject": "rejected", "suspend": "suspended", "reinstate": "reinstated"}


def set_approval(
    transport: Transport | None,
    user_id: int,
    action: str,
    reason: str = "",
    category_ids: Iterable[int] | None = None,
    actor: User | None = None,
) -> ServicemanProfile:
    """Admin vetting of servicemen; only APPROVED ones are listed and assignable. The serviceman is
    told the decision; a suspension also flags their open jobs to the admins."""
    profile = serviceman_profile(user_id)
    allowed_from, target = APPROVAL_MOVES[action]
    if profile.approval_status not in allowed_from:
        raise InvalidTransition(f"A serviceman who is {profile.approval_status} cannot be {APPROVAL_PAST[action]}.")
    with unit_of_work():
        hold_for_vetting(user_id)  # the serviceman's actions in flight commit first; later ones see this
        # Conditional: of two admins deciding at once, one wins and only one decision is announced.
        moved = (
            ServicemanProfile.update(approval_status=target, status_reason=reason)
            .where(ServicemanProfile.id == profile.id, ServicemanProfile.approval_status == profile.approval_status)
            .execute()
        )
        if not moved:
            raise InvalidTransition("The serviceman's status changed while this action ran; reload and retry.")
        if category_ids:
            _set_categories(profile, _check_categories(category_ids))
        refresh_listing(user_id)
        vetting.record_decision(actor, profile, action, reason)
    if action == "suspend":  # after the commit: end_all_sessions tells the sockets once it has committed
        end_all_sessions(transport, user_id, "account suspended")
    return serviceman_profile(user_id)
