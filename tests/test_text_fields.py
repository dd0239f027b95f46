"""Control characters at the input boundary: every text field a client sends is single-line unless its
schema makes it free text, so no name, phone, address or title can carry a line break into an email
header, a log line or a one-line label; free text keeps its line breaks and nothing else. A name that
got in anyway (stored before, or written by another path) never stops an email."""

import email
import email.policy

import pytest
import tornado.web
from marshmallow import fields

from handlers.inputs import MULTI_LINE_ERROR, SINGLE_LINE_ERROR, MultiLineText, SecretText, refuse_control_characters
from models import Event, ServiceRequest, User
from models.actions import accounts
from models.foundation.errors import ValidationFailed
from server.routes import route_table

from .factories import PASSWORD, AdminFactory, CategoryFactory, ClientFactory

INJECTION = "Eve\r\nBcc: victim@evil.example"
# The only fields that may span lines: what people write as paragraphs (the dashboard's textareas).
MULTI_LINE_FIELDS = {
    "ManualRefundSchema.reason",
    "CancelSchema.reason",
    "CategorySchema.description",
    "CategoryUpdateSchema.description",
    "ConsultationReplySchema.message",
    "ConsultationSchema.message",
    "DeclineSchema.reason",
    "EstimateSubmitSchema.notes",
    "MeUpdateSchema.bio",
    "ProposalSchema.message",
    "RatingCreateSchema.review",
    "ReasonSchema.reason",
    "RegisterSchema.bio",
    "RequestCreateSchema.description",
    "RequestUpdateSchema.description",
}


def _schemas():
    """Every body and query schema of the route table."""
    found = set()
    for route in route_table():
        handler = route[1]
        if issubclass(handler, tornado.web.StaticFileHandler):
            continue
        for method in ("get", "post", "patch", "put", "delete"):
            spec = getattr(getattr(handler, method, None), "endpoint", None)
            if spec is not None:
                found.update(s for s in (spec.body, spec.query) if s is not None)
    return sorted(found, key=lambda s: s.__name__)


def _text_fields(schema_cls):
    """(name, field) of every text field a client may send in this schema (list items included)."""
    for name, field in schema_cls().fields.items():
        if field.dump_only:
            continue
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.String):
            yield name, field, inner


def _refusal(schema_cls, name, field, text):
    value = [text] if isinstance(field, fields.List) else text
    try:
        refuse_control_characters(schema_cls(), {field.data_key or name: value})
    except ValidationFailed as exc:
        return exc.fields
    return None


def test_every_text_field_is_single_line_unless_its_schema_says_free_text():
    multi_line, checked = set(), 0
    for schema_cls in _schemas():
        for name, field, inner in _text_fields(schema_cls):
            checked += 1
            key = name + (".0" if isinstance(field, fields.List) else "")
            if isinstance(inner, SecretText):  # passwords are hashed, never shown: taken byte for byte
                assert _refusal(schema_cls, name, field, "pass\r\nword") is None
            elif isinstance(inner, MultiLineText):
                multi_line.add(f"{schema_cls.__name__}.{name}")
                assert _refusal(schema_cls, name, field, "line one\r\nline two\n\tthree") is None
                for bad in ("\x1b[31m", "a\rb", "\x00", "\x7f", "\x85", "\u2028"):
                    assert _refusal(schema_cls, name, field, f"x{bad}y") == {key: [MULTI_LINE_ERROR]}, (name, bad)
            else:
                for bad in (INJECTION, "a\nb", "a\tb", "\x1b", "\x7f", "\x9b", "\u2029"):
                    assert _refusal(schema_cls, name, field, bad) == {key: [SINGLE_LINE_ERROR]}, (name, bad)
    assert checked > 40
    assert multi_line == MULTI_LINE_FIELDS


@pytest.mark.gen_test
async def test_a_name_with_a_line_break_is_refused_naming_the_field(api):
    body = {
        "email": "eve@example.ng",
        "password": PASSWORD,
        "first_name": INJECTION,
        "last_name": "Obi\n",
        "phone": "+2348012345678",
        "role": "client",
    }
    response = await api.post("/api/auth/register/", body)
    assert response.status == 422, response
    assert response.data["error"]["fields"] == {"first_name": [SINGLE_LINE_ERROR], "last_name": [SINGLE_LINE_ERROR]}
    assert not User.select().where(User.email == "eve@example.ng").exists()


@pytest.mark.gen_test
async def test_a_profile_edit_and_a_category_name_are_single_line_too(api):
    client, admin = ClientFactory(), AdminFactory()
    response = await api.patch("/api/auth/me/", {"phone": "+234 801\r\n"}, user=client)
    assert response.status == 422 and list(response.data["error"]["fields"]) == ["phone"], response
    response = await api.post("/api/categories/", {"name": "Plumbing\x1b[2J", "description": "ok"}, user=admin)
    assert response.status == 422 and list(response.data["error"]["fields"]) == ["name"], response


@pytest.mark.gen_test
async def test_free_text_keeps_its_line_breaks_and_the_address_stays_one_line(api, settings):
    client = ClientFactory()
    category = CategoryFactory()
    body = {
        "category_id": category.id,
        "booking_date": "2099-01-10",
        "address": "3 Awolowo Road,\nIkoyi",
        "description": "The sink leaks.\r\nThe tap drips too.",
    }
    response = await api.post("/api/requests/", body, user=client)
    assert response.status == 422 and response.data["error"]["fields"] == {"address": [SINGLE_LINE_ERROR]}
    response = await api.post("/api/requests/", {**body, "address": "3 Awolowo Road, Ikoyi"}, user=client)
    assert response.status == 201, response
    assert ServiceRequest.get_by_id(response.data["id"]).description == "The sink leaks.\nThe tap drips too."


def test_a_stored_name_with_a_line_break_never_stops_the_admins_email(mail_pipeline, mailbox, category):
    """Before the boundary refused it, such a name made the email package refuse the subject: the
    admins' serviceman_applied email failed every retry, hiding the application."""
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    applicant = accounts.register(
        settings,
        pipeline.transport,
        email="eve@example.ng",
        password="Lekki-Pipes-2026",
        first_name=INJECTION,
        last_name="Obi",
        phone="+2348055550178",
        role="serviceman",
        category_ids=[category.id],
    )
    pipeline.run()

    assert Event.get(Event.type == "serviceman_applied").payload["serviceman_id"] == applicant.id
    [message] = [m for m in mailbox.messages if admin.email in m.rcpt_tos]
    assert message.rcpt_tos == [admin.email]
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    assert parsed["Subject"] == "New serviceman application: Eve Bcc: victim@evil.example Obi"
    assert parsed["Bcc"] is None
    assert not [m for m in mailbox.messages if "victim@evil.example" in m.rcpt_tos]
