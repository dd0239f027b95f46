"""A newcomer's first hour: `/` leads somewhere, a local front-end may call the API in development,
Swagger UI's operationIds are readable, and emails logged in development read as text."""

import logging
import re
from datetime import timedelta

import pytest

from models import Notification
from models.foundation.clock import platform_today
from models.foundation.settings import DEV_CORS_ORIGINS, load_settings
from server.app import make_app
from workers import runtime

from .conftest import make_settings
from .settings_support import PRODUCTION

# --- / -----------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_root_links_the_dashboard_sign_in_and_the_api_docs(api):
    response = await api.client.fetch(api.base_url + "/")
    page = response.body.decode()

    assert response.code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert 'href="/app/"' in page and 'href="/app/sign-in/"' in page and 'href="/api/docs/"' in page
    assert 'href="/api/asyncapi.json"' in page and 'href="/api/schema/"' in page
    # Its one inline style is allowed by hash; nothing else may run or load.
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'sha256-" in csp and "script" not in csp


@pytest.mark.gen_test
async def test_the_root_names_the_demo_accounts_outside_production_only(api):
    from handlers.landing import render_landing

    page = (await api.client.fetch(api.base_url + "/")).body.decode()

    assert "client@demo.serviceman.ng" in page
    assert "client@demo.serviceman.ng" not in render_landing(load_settings(environ=PRODUCTION))


# --- CORS defaults -----------------------------------------------------------------------------


def test_development_allows_the_usual_local_front_end_origins_by_default():
    origins = load_settings(environ={"ENV": "development"}).cors_allowed_origins

    assert origins == DEV_CORS_ORIGINS
    for origin in ("http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080"):
        assert origin in origins


def test_a_configured_list_replaces_the_development_defaults():
    settings = load_settings(environ={"ENV": "development", "CORS_ALLOWED_ORIGINS": "https://app.example.ng"})

    assert settings.cors_allowed_origins == ("https://app.example.ng",)


def test_production_and_test_allow_only_configured_origins():
    assert load_settings(environ=PRODUCTION).cors_allowed_origins == ()
    assert load_settings(
        environ={**PRODUCTION, "CORS_ALLOWED_ORIGINS": "https://app.example.ng"}
    ).cors_allowed_origins == ("https://app.example.ng",)
    assert make_settings().cors_allowed_origins == ()


class TestDevelopmentServer:
    @pytest.fixture
    def app(self, database):
        application = make_app(make_settings(ENV="development"), bind_database=False)
        yield application
        runtime.reset()

    @pytest.mark.gen_test
    async def test_a_vite_page_may_call_the_api(self, api):
        vite = "http://localhost:5173"
        preflight = await api.call(
            "OPTIONS", "/api/categories/", headers={"Origin": vite, "Access-Control-Request-Method": "GET"}
        )
        response = await api.get("/api/categories/", headers={"Origin": vite})

        assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == vite
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == vite

    @pytest.mark.gen_test
    async def test_other_origins_get_no_cors_headers(self, api):
        response = await api.get("/api/categories/", headers={"Origin": "https://evil.example"})

        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.gen_test
async def test_a_test_or_production_server_does_not_open_up_to_local_origins(api):
    response = await api.get("/api/categories/", headers={"Origin": "http://localhost:3000"})

    assert "Access-Control-Allow-Origin" not in response.headers


# --- operationIds ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_operation_ids_are_readable_unique_and_stable(api):
    document = (await api.get("/api/schema/")).data
    ids = {
        (method.upper(), path): op["operationId"]
        for path, item in document["paths"].items()
        for method, op in item.items()
    }

    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", name) for name in ids.values()), ids
    assert ids[("POST", "/api/requests/")] == "createServiceRequest"
    assert ids[("POST", "/api/auth/login/")] == "login"
    assert ids[("POST", "/api/admin/servicemen/{serviceman_id}/suspend/")] == "suspendServiceman"
    assert ids[("GET", "/api/notifications/unread-count/")] == "getUnreadCount"


# --- emails in development ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_email_without_email_host_is_logged_as_readable_text(api, caplog, client_user, category):
    caplog.set_level(logging.INFO, logger="serviceman")
    booking = {
        "category_id": category.id,
        "address": "12 Allen Avenue, Ikeja — 2nd floor",
        "description": "Kitchen sink leaking",
        "booking_date": str(platform_today(api.settings.zone) + timedelta(days=5)),
    }
    request = (await api.post("/api/requests/", booking, user=client_user)).data
    runtime.transport().shutdown()  # the email jobs of the embedded pipeline finish here
    notification = Notification.get(Notification.user == client_user.id)

    emails = [r.getMessage() for r in caplog.records if r.name == "serviceman.email"]
    assert len(emails) == 1 and notification.sent_to_email
    email = emails[0]
    assert f"To: {client_user.email}" in email
    assert f"Subject: {notification.title}" in email and f"#{request['id']}" in email
    assert notification.message in email  # the text part, decoded
    for mime in ("Content-Transfer-Encoding", "quoted-printable", "base64", "=?utf-8?", "<html"):
        assert mime not in email
    log = caplog.text
    assert "not sent" not in log and "written to the log for user" in log


# --- Swagger UI's examples against the demo data -----------------------------------------------


def body_example(document, path, method="post"):
    """The request body Swagger UI composes from the properties' examples."""
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return {
        name: prop["example"]
        for name, prop in schema["properties"].items()
        if "example" in prop and not prop.get("readOnly")
    }


@pytest.mark.gen_test
async def test_swagger_examples_work_against_the_demo_data(api, db):
    from models import Category, User
    from models.demo_data import load_demo_data

    load_demo_data(api.settings)
    document = (await api.get("/api/schema/")).data
    # A fresh `make run` database numbers them from 1; here the sequences may have moved on.
    first_user = User.select().order_by(User.id).first().id
    first_category = Category.select().order_by(Category.id).first().id
    emails = [u.email for u in User.select().order_by(User.id).limit(4)]
    assert emails == [
        "admin@demo.serviceman.ng",
        "client@demo.serviceman.ng",
        "emeka@demo.serviceman.ng",
        "tunde@demo.serviceman.ng",
    ]

    login = await api.post("/api/auth/login/", body_example(document, "/api/auth/login/"))
    assert login.status == 200, login
    token = login.data["access"]
    booking = body_example(document, "/api/requests/")
    assert (booking["category_id"], booking["serviceman_id"]) == (1, 3)
    booking.update(
        category_id=booking["category_id"] - 1 + first_category, serviceman_id=booking["serviceman_id"] - 1 + first_user
    )
    created = await api.post("/api/requests/", booking, token=token)
    assert created.status == 201, created
    assert Category.get_by_id(created.data["category_id"]).name == "Plumbing"
    assert User.get_by_id(created.data["preferred_serviceman_id"]).email == "emeka@demo.serviceman.ng"
    assert created.data["is_emergency"] is False

    servicemen = document["paths"]["/api/categories/{category_id}/servicemen/"]["get"]["parameters"]
    assert [p["example"] for p in servicemen if p["in"] == "path"] == [1]
