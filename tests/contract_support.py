"""The client contract in tests (API.md): the error shape every refusal answers in, "a refused request
changed nothing" as a snapshot of every table, and the operations of the route table, each with a user
allowed to call it and, for a few, a valid body."""

import re
from collections import namedtuple
from datetime import timedelta

import tornado.web

import models
from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN
from models.actions import accounts
from models.foundation.clock import platform_today
from server.routes import route_table

from .factories import PASSWORD, AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory


def assert_error(response, status, code=None):
    assert response.status == status, response
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    assert isinstance(response.data, dict) and set(response.data) == {"error"}, response
    error = response.data["error"]
    assert isinstance(error.get("code"), str) and error["code"], response
    assert isinstance(error.get("message"), str) and error["message"], response
    assert set(error) <= {"code", "message", "fields", "request_id"}, response
    if code is not None:
        assert error["code"] == code, response
    return error


async def ok(response, status=200):
    """The response's data, once its status is the one expected."""
    assert response.status == status, response
    return response.data


# A notification's email state changes on the embedded pipeline's own threads, after the response
# whose commit queued the email: delivery progress, not a change any request makes.
EMAIL_STATE = ("sent_to_email", "email_sent_at", "email_claimed_until", "email_attempts", "email_redrive_after")


def snapshot():
    """Every row of every table, to prove a refused request changed nothing (not even an update)."""

    def row(model, values):
        if model is models.Notification:
            values = {k: v for k, v in values.items() if k not in EMAIL_STATE}
        return repr(values)

    return {
        model.__name__: sorted(row(model, values) for values in model.select().order_by(model.id).dicts())
        for model in models.ALL_MODELS
    }


# --- the operations of the route table -------------------------------------------------------

MISSING_ID = "999999"
_GROUP = re.compile(r"\(\?P<\w+>[^)]*\)")

ROLE_FACTORIES = {
    models.Role.CLIENT: ClientFactory,
    models.Role.SERVICEMAN: ServicemanFactory,
    models.Role.ADMIN: AdminFactory,
}

Operation = namedtuple("Operation", "method pattern path endpoint")


def concrete_path(pattern):
    path = _GROUP.sub(MISSING_ID, pattern)
    assert "(" not in path and "\\" not in path, f"cannot build a concrete path for {pattern}"
    return path


def collect_operations():
    ops = []
    for route in route_table():
        pattern, handler = route[0], route[1]
        if issubclass(handler, tornado.web.StaticFileHandler):
            continue
        for name in HTTP_METHODS:
            spec = getattr(getattr(handler, name, None), "endpoint", None)
            if spec is not None:
                ops.append(Operation(name.upper(), pattern, concrete_path(pattern), spec))
    return ops


OPERATIONS = collect_operations()


def op_id(op):
    return f"{op.method} {op.pattern}"


def is_restricted(spec):
    return not ({ANYONE, SIGNED_IN} & set(spec.roles))


def allowed_role(spec):
    """A role that passes the endpoint's role check (None: no sign-in needed)."""
    if ANYONE in spec.roles:
        return None
    if SIGNED_IN in spec.roles:
        return models.Role.CLIENT
    return spec.roles[0]


def make_user(role):
    return None if role is None else ROLE_FACTORIES[role]()


BODY_OPS = [op for op in OPERATIONS if op.endpoint.body is not None]
PAGINATED_OPS = [op for op in OPERATIONS if op.endpoint.paginated]


# A valid body per operation, for the operations whose refusals are tested against one.


def _future(settings, days=5):
    return str(platform_today(settings.zone) + timedelta(days=days))


def _valid_register(settings):
    return None, {
        "email": "new.client@example.ng",
        "password": PASSWORD,
        "first_name": "Ada",
        "last_name": "Obi",
        "phone": "+2348012345678",
        "role": "client",
    }


def _valid_login(settings):
    return None, {"email": ClientFactory().email, "password": PASSWORD}


def _valid_refresh(settings):
    return None, {"refresh": accounts.issue_token_pair(settings, ClientFactory())["refresh"]}


def _valid_logout(settings):
    user = ClientFactory()
    return user, {"refresh": accounts.issue_token_pair(settings, user)["refresh"]}


def _valid_me(settings):
    return ClientFactory(), {"first_name": "Changed"}


def _valid_category(settings):
    return AdminFactory(), {"name": "Solar installation", "description": "Panels and inverters."}


def _valid_request(settings):
    return ClientFactory(), {
        "category_id": CategoryFactory().id,
        "booking_date": _future(settings),
        "address": "3 Awolowo Road, Ikoyi",
        "description": "Fix the inverter.",
    }


def _valid_admin(settings):
    return AdminFactory(), {"email": "second.admin@example.ng", "password": PASSWORD, "first_name": "Bola"}


VALID_BODIES = {
    ("POST", r"/api/auth/register/"): _valid_register,
    ("POST", r"/api/auth/login/"): _valid_login,
    ("POST", r"/api/auth/refresh/"): _valid_refresh,
    ("POST", r"/api/auth/logout/"): _valid_logout,
    ("PATCH", r"/api/auth/me/"): _valid_me,
    ("POST", r"/api/categories/"): _valid_category,
    ("POST", r"/api/requests/"): _valid_request,
    ("POST", r"/api/admin/users/"): _valid_admin,
}
