"""Accounts: users, serviceman profiles and their categories, refresh tokens."""

from typing import TYPE_CHECKING

import peewee

from models.foundation.clock import utcnow

from .base import BaseModel, MoneyField, TimestampedModel, UTCDateTimeField
from .catalog import Category


class Role:
    CLIENT = "client"
    SERVICEMAN = "serviceman"
    ADMIN = "admin"
    ALL = (CLIENT, SERVICEMAN, ADMIN)
    SELF_REGISTERED = (CLIENT, SERVICEMAN)


class ApprovalStatus:
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SUSPENDED = "SUSPENDED"
    ALL = (PENDING_APPROVAL, APPROVED, REJECTED, SUSPENDED)


class User(BaseModel):
    email = peewee.CharField(max_length=254, unique=True)
    password_hash = peewee.CharField(max_length=128)
    first_name = peewee.CharField(max_length=100)
    last_name = peewee.CharField(max_length=100)
    phone = peewee.CharField(max_length=32, default="")
    role = peewee.CharField(max_length=16, index=True)
    is_active = peewee.BooleanField(default=True)
    email_verified_at = UTCDateTimeField(null=True)
    date_joined = UTCDateTimeField(default=utcnow)
    # In every token as `sv`; bumped to end all sessions at once (models/actions/sessions.py).
    session_version = peewee.IntegerField(default=0)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ServicemanProfile(BaseModel):
    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key, and the backref of ServicemanCategory
        user_id: int
        category_links: "peewee.ModelSelect[ServicemanCategory]"

    user = peewee.ForeignKeyField(User, backref="serviceman_profiles", unique=True, on_delete="CASCADE")
    bio = peewee.TextField(default="")
    years_of_experience = peewee.IntegerField(default=0)
    rating = MoneyField(max_digits=3, default=0)  # running average, two places
    rating_count = peewee.IntegerField(default=0)
    jobs_completed = peewee.IntegerField(default=0)
    is_available = peewee.BooleanField(default=True)
    approval_status = peewee.CharField(max_length=20, default=ApprovalStatus.PENDING_APPROVAL, index=True)
    status_reason = peewee.TextField(default="")

    @property
    def category_ids(self) -> list[int]:
        return sorted(link.category_id for link in self.category_links)


class ServicemanCategory(BaseModel):
    """A serviceman's trade. It also carries a copy of what the public servicemen page filters and
    sorts by, so that page's count and cards are index range scans of this table alone (joining
    profiles and users for 10,000 servicemen cost 7 ms a query: bench/README.md). The copy is kept
    by the transactions that change the originals (models/actions/listing.py)."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        profile_id: int
        category_id: int

    profile = peewee.ForeignKeyField(ServicemanProfile, backref="category_links", on_delete="CASCADE")
    category = peewee.ForeignKeyField(Category, backref="serviceman_links", on_delete="CASCADE")
    listed = peewee.BooleanField(default=False)  # approved and the account active
    rating = MoneyField(max_digits=3, default=0)
    rating_count = peewee.IntegerField(default=0)
    jobs_completed = peewee.IntegerField(default=0)

    class Meta:
        indexes = (
            (("profile", "category"), True),
            (("category", "listed", "rating", "rating_count", "profile"), False),
            (("category", "listed", "jobs_completed", "profile"), False),
        )


class RefreshToken(TimestampedModel):
    """One row per issued refresh token; a family is one login's chain of rotations. A dashboard
    sign-in is a row too, for which no token is ever issued: its session cookie names the jti, and
    signing out revokes it (models/actions/sessions.py)."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        user_id: int

    jti = peewee.CharField(max_length=64, unique=True)
    family = peewee.CharField(max_length=64, index=True)
    user = peewee.ForeignKeyField(User, backref="refresh_tokens", on_delete="CASCADE")
    expires_at = UTCDateTimeField(index=True)  # retention (migration 017)
    revoked_at = UTCDateTimeField(null=True)


class OneTimeToken(TimestampedModel):
    """Email verification and password reset tokens (stored hashed, single use)."""

    if TYPE_CHECKING:  # the id accessors peewee adds for each foreign key
        user_id: int

    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"

    user = peewee.ForeignKeyField(User, backref="one_time_tokens", on_delete="CASCADE")
    purpose = peewee.CharField(max_length=20)
    token_hash = peewee.CharField(max_length=64, unique=True)
    expires_at = UTCDateTimeField(index=True)  # retention (migration 017)
    used_at = UTCDateTimeField(null=True)


__all__ = [
    "Role",
    "ApprovalStatus",
    "User",
    "ServicemanProfile",
    "ServicemanCategory",
    "RefreshToken",
    "OneTimeToken",
    "MoneyField",
]
