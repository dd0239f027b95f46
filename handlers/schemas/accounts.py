"""Account schemas: registration, login, tokens, the user resource, profile updates."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models.actions.catalog import serviceman_cards
from models.users import ApprovalStatus, Role, ServicemanProfile, User

from .common import Id, Integer, Money, PageQuerySchema

MAX_CATEGORIES = 50
Name = lambda: fields.String(required=True, validate=validate.Length(min=1, max=100))  # noqa: E731
Phone = lambda **kw: fields.String(validate=validate.Regexp(r"^\+?[0-9 ()-]{7,20}$", error="Not a phone number."), **kw)  # noqa: E731
BCRYPT_MAX_BYTES = 72


def _fits_bcrypt(password):
    # bcrypt reads at most 72 bytes; a longer password would be silently truncated or refused.
    if len(password.encode("utf-8", "surrogatepass")) > BCRYPT_MAX_BYTES:
        raise ValidationError(f"Must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 "
                              "(fewer characters for accented letters or emoji).")


def Password():
    return fields.String(required=True, load_only=True,
                         validate=[validate.Length(min=8, max=128), _fits_bcrypt])



class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = Password()
    first_name = Name()
    last_name = Name()
    phone = Phone(required=True)
    role = fields.String(required=True, validate=validate.OneOf(Role.SELF_REGISTERED))
    category_ids = fields.List(Id(), load_default=list, validate=validate.Length(max=MAX_CATEGORIES))
    bio = fields.String(load_default="", validate=validate.Length(max=2000))
    years_of_experience = Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=80))

    @validates_schema
    def serviceman_fields(self, data, **kwargs):
        if data.get("role") == Role.SERVICEMAN and not data.get("category_ids"):
            raise ValidationError("A serviceman must choose at least one category.", "category_ids")


class LoginSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))


class RefreshSchema(Schema):
    refresh = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class TokenPairSchema(Schema):
    access = fields.String(required=True)
    refresh = fields.String(required=True)


class ServicemanProfileSchema(Schema):
    id = fields.Integer(dump_only=True)
    full_name = fields.String(dump_only=True)
    rating = Money(dump_only=True)
    rating_count = fields.Integer(dump_only=True)
    jobs_completed = fields.Integer(dump_only=True)
    bio = fields.String()
    years_of_experience = fields.Integer()
    category_ids = fields.List(fields.Integer())
    is_available = fields.Boolean()
    active_jobs = fields.Integer(dump_only=True)


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(dump_only=True)
    first_name = fields.String()
    last_name = fields.String()
    phone = fields.String()
    role = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    date_joined = fields.DateTime(dump_only=True)
    serviceman_profile = fields.Method("get_serviceman_profile", dump_only=True, allow_none=True,
                                       metadata={"description": "Servicemen only; null for other roles."})

    def get_serviceman_profile(self, user):
        if user.role != Role.SERVICEMAN:
            return None
        profile = ServicemanProfile.select(ServicemanProfile, User).join(User).where(
            ServicemanProfile.user == user.id).first()
        if profile is None:
            return None
        card = ServicemanProfileSchema().dump(serviceman_cards([profile])[0])
        card["approval_status"] = profile.approval_status
        return card


class AuthResultSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    access = fields.String(required=True)
    refresh = fields.String(required=True)


class MeUpdateSchema(Schema):
    first_name = fields.String(validate=validate.Length(min=1, max=100))
    last_name = fields.String(validate=validate.Length(min=1, max=100))
    phone = Phone()
    bio = fields.String(validate=validate.Length(max=2000))
    years_of_experience = Integer(strict=True, validate=validate.Range(min=0, max=80))
    category_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_CATEGORIES))
    is_available = fields.Boolean()


class AdminCreateSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = Password()
    first_name = Name()
    last_name = fields.String(load_default="", validate=validate.Length(max=100))
    phone = Phone(load_default="")


class ServicemanApplicationSchema(ServicemanProfileSchema):
    """Admin view: the public card plus vetting state and contact details."""
    email = fields.Email(dump_only=True)
    phone = fields.String(dump_only=True)
    approval_status = fields.String(dump_only=True)
    status_reason = fields.String(dump_only=True)


class ApprovalStatusQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(ApprovalStatus.ALL))


class ApproveSchema(Schema):
    category_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_CATEGORIES))


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
