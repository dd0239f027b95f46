"""factory_boy factories for the models; passwords hashed at the (low) test bcrypt cost. `notify` makes
a notification row as delivery would have."""

from datetime import timedelta

import factory

from models import (
    ApprovalStatus,
    Category,
    Notification,
    Role,
    ServicemanCategory,
    ServicemanProfile,
    ServiceRequest,
    User,
)
from models.actions.listing import refresh_listing
from models.foundation.clock import platform_today, utcnow
from models.foundation.tokens import hash_password


class PeeweeFactory(factory.Factory):
    """factory_boy 3 has no Peewee integration; creating is one Model.create call."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.create(**kwargs)


PASSWORD = "correct-horse-battery"
_HASH = hash_password(PASSWORD, 4)


class UserFactory(PeeweeFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.ng")
    password_hash = _HASH
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    phone = "+2348012345678"
    role = Role.CLIENT
    # Verified by default so paying works; tests of unverified accounts pass email_verified_at=None.
    email_verified_at = factory.LazyFunction(utcnow)


class ClientFactory(UserFactory):
    role = Role.CLIENT


class AdminFactory(UserFactory):
    role = Role.ADMIN


class CategoryFactory(PeeweeFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    description = "Repairs and installation."


class ServicemanFactory(UserFactory):
    """A serviceman user with an approved profile in `categories` (a new category if none)."""

    role = Role.SERVICEMAN

    @factory.post_generation
    def profile(user, create, extracted, **kwargs):
        categories = kwargs.pop("categories", None) or [CategoryFactory()]
        kwargs.setdefault("approval_status", ApprovalStatus.APPROVED)
        kwargs.setdefault("bio", "Reliable and fast.")
        kwargs.setdefault("years_of_experience", 5)
        profile = ServicemanProfile.create(user=user, **kwargs)
        for category in categories:
            ServicemanCategory.create(profile=profile, category=category)
        refresh_listing(user.id)  # the listing copy on the links, as every action keeps it


class ServiceRequestFactory(PeeweeFactory):
    class Meta:
        model = ServiceRequest

    client = factory.SubFactory(ClientFactory)
    category = factory.SubFactory(CategoryFactory)
    booking_date = factory.LazyFunction(lambda: platform_today(_lagos()) + timedelta(days=5))
    address = "12 Allen Avenue, Ikeja"
    description = "Kitchen sink leaking."
    is_emergency = False
    auto_flagged_emergency = False
    booking_fee = "2000.00"


def _lagos():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Africa/Lagos")


def notify(user, title="Booking update", is_read=False, minutes_ago=0, **fields):
    """A notification for `user` (created `minutes_ago`), as delivery would have stored it."""
    fields.setdefault("payload", {"service_request_id": None, "is_emergency": False})
    return Notification.create(
        user=user,
        notification_type="request_created",
        title=title,
        message=f"{title}: details",
        is_read=is_read,
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        **fields,
    )
