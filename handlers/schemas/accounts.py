"""Account schemas: registration, login, tokens, the user resource, profile updates."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models.actions import passwords
from models.actions.catalog import serviceman_cards
from models.users import ApprovalStatus, Role, ServicemanProfile, User

from ..inputs import MultiLineText, SecretText
from .common import Boolean, Id, Integer, Money, PageQuerySchema

MAX_CATEGORIES = 50
Name = lambda **kw: fields.String(required=True, validate=validate.Length(min=1, max=100), **kw)  # noqa: E731
Phone = lambda **kw: fields.String(validate=validate.Regexp(r"^\+?[0-9 ()-]{7,20}$", error="Not a phone number."), **kw)  # noqa: E731


def _acceptable_password(password):
    # Too short or too long is Length's message already; the rest of the one rule (models/actions/passwords.py).
    if passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        problems = passwords.password_problems(password)
        if problems:
            raise ValidationError(problems)


def Password(**kwargs):
    """The password field of every body that sets one (register, admin create, change, reset). The
    email rule needs the account's address: bodies carrying it call `password_is_not_email`."""
    return SecretText(
        required=True,
        load_only=True,
        validate=[validate.Length(min=passwords.MIN_LENGTH, max=passwords.MAX_LENGTH), _acceptable_password],
        **kwargs,
    )


def password_is_not_email(data, password_field="password"):
    """For a @validates_schema: the body's password must not be the body's email."""
    if not passwords.password_is_email(data.get(password_field, ""), data.get("email")):
        return
    raise ValidationError("Must not be your email address or its name part.", password_field)


# Examples (see common.py): Emeka Okafor, serviceman #3 of the demo data, plumber in category #1;
# registering, a new one (emeka.okafor@example.com); signing in, the demo client.
EXAMPLE_EMAIL = "emeka.okafor@example.com"
EXAMPLE_PHONE = "+234 805 555 0178"
EXAMPLE_BIO = "Licensed plumber covering Lekki, Ajah and Victoria Island: leaks, pumps, water heaters."
# Shaped like ours (HS256; sub, role, type, jti, iat, exp), signed with a key that is no one's.
EXAMPLE_ACCESS = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMiIsInJvbGUiOiJzZXJ2aWNlbWFuIiwidHlwZSI6ImFjY2Vz"
    "cyIsImp0aSI6IjViMWUwYzlkMmY3YTRlOGI5YzNkNmExZjBlMmI3YzQ4IiwiaWF0IjoxNzk1MTY3MDAwLCJleHAiOjE3OTUx"
    "Njc5MDB9.xRa1FQZWd4Sb2duslWSnotBEcoWcWemj7YWVauYgHGQ"
)
EXAMPLE_REFRESH = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMiIsInJvbGUiOiJzZXJ2aWNlbWFuIiwidHlwZSI6InJlZnJl"
    "c2giLCJqdGkiOiJhN2MzZTkxZjA0YjI0NjhkOGU1ZjFjNmI5ZDBhM2UyNyIsImlhdCI6MTc5NTE2NzAwMCwiZXhwIjoxNzk1"
    "NzcxODAwLCJmYW0iOiJkMmY0OGI2YzFlOWE0Mzc1YjBjOGU2ZjJhMWQzYzU5NCJ9.mCQQmGxJc9eKIIt_JB6vgkaw4AkvmMtJ"
    "bj35t2zgTho"
)
EXAMPLE_PROFILE = {
    "id": 3,
    "full_name": "Emeka Okafor",
    "rating": "4.60",
    "rating_count": 15,
    "jobs_completed": 23,
    "bio": EXAMPLE_BIO,
    "years_of_experience": 9,
    "category_ids": [1],
    "is_available": True,
    "active_jobs": 2,
}


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254), metadata={"example": EXAMPLE_EMAIL})
    password = Password(metadata={"example": "Lekki-Pipes-2026"})
    first_name = Name(metadata={"example": "Emeka"})
    last_name = Name(metadata={"example": "Okafor"})
    phone = Phone(required=True, metadata={"example": EXAMPLE_PHONE})
    role = fields.String(
        required=True, validate=validate.OneOf(Role.SELF_REGISTERED), metadata={"example": "serviceman"}
    )
    category_ids = fields.List(
        Id(), load_default=list, validate=validate.Length(max=MAX_CATEGORIES), metadata={"example": [1]}
    )
    bio = MultiLineText(load_default="", validate=validate.Length(max=2000), metadata={"example": EXAMPLE_BIO})
    years_of_experience = Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=80), metadata={"example": 9}
    )

    @validates_schema
    def password_not_email(self, data, **kwargs):
        password_is_not_email(data)

    @validates_schema
    def serviceman_fields(self, data, **kwargs):
        if data.get("role") == Role.SERVICEMAN and not data.get("category_ids"):
            raise ValidationError("A serviceman must choose at least one category.", "category_ids")


class LoginSchema(Schema):
    # The demo client of `make run` (models/demo_data.py): "Try it out" signs in as it is.
    email = fields.Email(
        required=True, validate=validate.Length(max=254), metadata={"example": "client@demo.serviceman.ng"}
    )
    password = SecretText(
        required=True, load_only=True, validate=validate.Length(max=1024), metadata={"example": "demo-password-123"}
    )


class RefreshSchema(Schema):
    refresh = fields.String(
        required=True, validate=validate.Length(min=1, max=4096), metadata={"example": EXAMPLE_REFRESH}
    )


class TokenPairSchema(Schema):
    access = fields.String(required=True, metadata={"example": EXAMPLE_ACCESS})
    refresh = fields.String(required=True, metadata={"example": EXAMPLE_REFRESH})


class ServicemanProfileSchema(Schema):
    id = fields.Integer(dump_only=True, metadata={"example": EXAMPLE_PROFILE["id"]})
    full_name = fields.String(dump_only=True, metadata={"example": EXAMPLE_PROFILE["full_name"]})
    rating = Money(dump_only=True, metadata={"example": EXAMPLE_PROFILE["rating"]})
    rating_count = fields.Integer(dump_only=True, metadata={"example": EXAMPLE_PROFILE["rating_count"]})
    jobs_completed = fields.Integer(dump_only=True, metadata={"example": EXAMPLE_PROFILE["jobs_completed"]})
    bio = fields.String(metadata={"example": EXAMPLE_BIO})
    years_of_experience = fields.Integer(metadata={"example": EXAMPLE_PROFILE["years_of_experience"]})
    category_ids = fields.List(fields.Integer(), metadata={"example": EXAMPLE_PROFILE["category_ids"]})
    is_available = fields.Boolean(metadata={"example": EXAMPLE_PROFILE["is_available"]})
    active_jobs = fields.Integer(dump_only=True, metadata={"example": EXAMPLE_PROFILE["active_jobs"]})


class UserSchema(Schema):
    id = fields.Integer(dump_only=True, metadata={"example": 3})
    email = fields.Email(dump_only=True, metadata={"example": "emeka@demo.serviceman.ng"})
    first_name = fields.String(metadata={"example": "Emeka"})
    last_name = fields.String(metadata={"example": "Okafor"})
    phone = fields.String(metadata={"example": EXAMPLE_PHONE})
    role = fields.String(dump_only=True, metadata={"example": "serviceman"})
    is_active = fields.Boolean(dump_only=True, metadata={"example": True})
    email_verified = fields.Boolean(
        dump_only=True,
        metadata={
            "description": "Whether the address was confirmed through the emailed link; clients must verify before "
            "paying.",
            "example": True,
        },
    )
    date_joined = fields.DateTime(dump_only=True)
    serviceman_profile = fields.Method(
        "get_serviceman_profile",
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Servicemen only; null for other roles.",
            "example": {**EXAMPLE_PROFILE, "approval_status": "APPROVED"},
        },
    )

    def get_serviceman_profile(self, user):
        if user.role != Role.SERVICEMAN:
            return None
        profile = (
            ServicemanProfile.select(ServicemanProfile, User)
            .join(User)
            .where(ServicemanProfile.user == user.id)
            .first()
        )
        if profile is None:
            return None
        card = ServicemanProfileSchema().dump(serviceman_cards([profile])[0])
        card["approval_status"] = profile.approval_status
        return card


class AuthResultSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    access = fields.String(required=True, metadata={"example": EXAMPLE_ACCESS})
    refresh = fields.String(required=True, metadata={"example": EXAMPLE_REFRESH})


class MeUpdateSchema(Schema):
    first_name = fields.String(validate=validate.Length(min=1, max=100), metadata={"example": "Emeka"})
    last_name = fields.String(validate=validate.Length(min=1, max=100), metadata={"example": "Okafor"})
    phone = Phone(metadata={"example": EXAMPLE_PHONE})
    bio = MultiLineText(validate=validate.Length(max=2000), metadata={"example": EXAMPLE_BIO})
    years_of_experience = Integer(strict=True, validate=validate.Range(min=0, max=80), metadata={"example": 10})
    category_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_CATEGORIES), metadata={"example": [1]})
    is_available = Boolean(metadata={"example": False})


class AdminCreateSchema(Schema):
    email = fields.Email(
        required=True, validate=validate.Length(max=254), metadata={"example": "funmi.adeyemi@example.com"}
    )
    password = Password(metadata={"example": "Ikeja-Ops-2026!"})
    first_name = Name(metadata={"example": "Funmilayo"})
    last_name = fields.String(load_default="", validate=validate.Length(max=100), metadata={"example": "Adeyemi"})
    # A callable default: "" is not documented as a default that the phone pattern itself refuses.
    phone = Phone(load_default=str, metadata={"example": "+234 802 555 0190"})

    @validates_schema
    def password_not_email(self, data, **kwargs):
        password_is_not_email(data)


class ServicemanApplicationSchema(ServicemanProfileSchema):
    """Admin view: the public card plus vetting state and contact details."""

    email = fields.Email(dump_only=True, metadata={"example": EXAMPLE_EMAIL})
    phone = fields.String(dump_only=True, metadata={"example": EXAMPLE_PHONE})
    approval_status = fields.String(dump_only=True, metadata={"example": "APPROVED"})
    status_reason = fields.String(
        dump_only=True, metadata={"description": "Why it was rejected or suspended; empty otherwise.", "example": ""}
    )


class ApprovalStatusQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(ApprovalStatus.ALL))


class ApproveSchema(Schema):
    category_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_CATEGORIES), metadata={"example": [1]})


class ReasonSchema(Schema):
    reason = MultiLineText(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "The trade certificate uploaded is unreadable; please send a clearer copy."},
    )


# Email verification, password reset and change ----------------------------------------------------
# An example link token (secrets.token_urlsafe(32)); the real one exists only in the email.
EXAMPLE_LINK_TOKEN = "q3J8vW0xZk5mYt2LrB7cN4dH6sPf1gQe9uAiOyTlKxE"
LinkToken = lambda **kw: fields.String(validate=validate.Length(min=1, max=128), **kw)  # noqa: E731


class EmailSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254), metadata={"example": EXAMPLE_EMAIL})


class VerifyEmailQuerySchema(Schema):
    token = LinkToken(required=True, metadata={"example": EXAMPLE_LINK_TOKEN})


class EmailVerifiedSchema(Schema):
    email_verified = fields.Boolean(required=True, metadata={"example": True})
    detail = fields.String(
        required=True, metadata={"example": "Your email address is confirmed. You can now pay for bookings."}
    )


class AcceptedSchema(Schema):
    detail = fields.String(
        required=True, metadata={"example": "If an account uses this address, we have sent it an email with a link."}
    )


class PasswordResetConfirmSchema(Schema):
    token = LinkToken(required=True, metadata={"example": EXAMPLE_LINK_TOKEN})
    password = Password(metadata={"example": "Ajah-Heater-2027"})


class ChangePasswordSchema(Schema):
    current_password = SecretText(
        required=True, load_only=True, validate=validate.Length(max=1024), metadata={"example": "Lekki-Pipes-2026"}
    )
    new_password = Password(metadata={"example": "Ajah-Heater-2027"})
