"""Email verification: registration emails a single-use link; until it is opened a client can
browse and book but not pay; asking for a new link answers the same for every address.

Given accounts registered through the API (emails reach a real SMTP server on loopback), when the
links are opened, reused, altered, expired or used for something else, then only a fresh, untouched
link of the right kind verifies, and only its own account.
"""

import asyncio
from datetime import timedelta

import pytest

from models import OneTimeToken, ServiceRequest, User
from models.actions import accounts
from models.foundation.clock import utcnow
from models.foundation.settings import ConfigurationError
from workers import runtime

from .account_support import account_email, links, path_of, register, token_of
from .conftest import make_settings, serve_app
from .contract_support import assert_error
from .factories import AdminFactory, ClientFactory, ServiceRequestFactory

PASSWORD = "a-long-enough-password-1"
VERIFY = "/api/auth/verify-email/"
RESEND = "/api/auth/resend-verification/"
SUBJECT = "confirm your email"


@pytest.fixture
def app(database, mailbox):
    yield from serve_app(
        make_settings(
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(mailbox.port),
            EMAIL_USE_TLS="false",
            PUBLIC_BASE_URL="https://api.serviceman.example",
        )
    )


async def emailed_token(mailbox, address):
    return token_of(links(await account_email(mailbox, address, SUBJECT))["text"])


@pytest.mark.gen_test(timeout=30)
async def test_registration_emails_a_link_that_verifies_the_address_once(api, app, mailbox, caplog):
    user, registered = await register(api, "ada@example.ng")
    assert registered["user"]["email_verified"] is False

    message = await account_email(mailbox, user.email, SUBJECT)
    found = links(message)
    assert found["text"] == found["html"]  # both parts carry the same working link
    assert found["text"].startswith("https://api.serviceman.example/api/auth/verify-email/?token=")
    token = token_of(found["text"])
    assert OneTimeToken.get(OneTimeToken.user == user.id).token_hash != token  # only its hash is stored

    opened = await api.get(path_of(found["text"]))
    assert opened.status == 200 and opened.data["email_verified"] is True
    me = await api.get("/api/auth/me/", token=registered["access"])
    assert me.data["email_verified"] is True

    again = await api.get(path_of(found["text"]))
    assert_error(again, 422, "token_used")
    assert token not in caplog.text  # the access log leaves the link's query out


@pytest.mark.gen_test(timeout=30)
async def test_bad_links_are_refused_and_verify_nothing(api, app, mailbox):
    ada, _ = await register(api, "ada@example.ng")
    token = await emailed_token(mailbox, ada.email)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    from models.actions.credentials import PASSWORD_RESET, issue_token

    _, reset_token = issue_token(make_settings(), ada.id, PASSWORD_RESET)

    assert_error(await api.get(f"{VERIFY}?token={tampered}"), 422, "token_invalid")
    assert_error(await api.get(f"{VERIFY}?token={reset_token}"), 422, "token_invalid")  # wrong purpose
    assert_error(await api.get(f"{VERIFY}?token="), 422)
    assert_error(await api.get(VERIFY), 422)
    assert User.get_by_id(ada.id).email_verified_at is None

    OneTimeToken.update(expires_at=utcnow() - timedelta(seconds=1)).where(
        OneTimeToken.user == ada.id, OneTimeToken.purpose == OneTimeToken.VERIFY_EMAIL
    ).execute()
    assert_error(await api.get(f"{VERIFY}?token={token}"), 422, "token_expired")
    assert User.get_by_id(ada.id).email_verified_at is None


@pytest.mark.gen_test(timeout=30)
async def test_a_link_verifies_its_own_account_only(api, app, mailbox):
    ada, _ = await register(api, "ada@example.ng")
    bayo, _ = await register(api, "bayo@example.ng")
    ada_token = await emailed_token(mailbox, ada.email)

    assert (await api.get(f"{VERIFY}?token={ada_token}")).status == 200
    assert User.get_by_id(ada.id).email_verified_at is not None
    assert User.get_by_id(bayo.id).email_verified_at is None


@pytest.mark.gen_test(timeout=30)
async def test_an_unverified_client_can_book_but_not_pay_until_verified(api, app, mailbox, paystack, category):
    client, registered = await register(api, "ada@example.ng")
    booked = await api.post(
        "/api/requests/",
        {
            "category_id": category.id,
            "booking_date": str((utcnow() + timedelta(days=6)).date()),
            "address": "12 Allen Avenue, Ikeja",
            "description": "Kitchen sink leaking",
        },
        token=registered["access"],
    )
    assert booked.status == 201, booked
    assert (await api.get("/api/categories/", token=registered["access"])).status == 200

    body = {"service_request_id": booked.data["id"], "payment_type": "BOOKING_FEE"}
    refused = await api.post("/api/payments/initialize/", body, token=registered["access"])
    assert_error(refused, 403, "email_not_verified")
    assert paystack.calls == [] and ServiceRequest.get_by_id(booked.data["id"]).status == "PENDING_PAYMENT"

    await api.get(f"{VERIFY}?token={await emailed_token(mailbox, client.email)}")
    paid = await api.post("/api/payments/initialize/", body, token=registered["access"])
    assert paid.status == 200, paid


@pytest.mark.gen_test(timeout=30)
async def test_resend_answers_the_same_for_every_address_and_mails_only_the_unverified(api, app, mailbox):
    ada, _ = await register(api, "ada@example.ng")
    first = await emailed_token(mailbox, ada.email)
    ClientFactory(email="verified@example.ng")
    answers = [
        await api.post(RESEND, {"email": address})
        for address in ("ada@example.ng", "verified@example.ng", "nobody@example.ng", "ADA@Example.ng")
    ]
    assert {(a.status, str(a.data)) for a in answers} == {(202, str(answers[0].data))}

    # The lookups run after the answers: wait for the two new links to arrive.
    arrived = await asyncio.get_running_loop().run_in_executor(
        None, mailbox.wait_for, lambda m: len([e for e in mailbox.messages if ada.email in e.rcpt_tos]) >= 3
    )
    assert arrived is not None
    # Every link sent is valid until used: the first still verifies.
    assert (await api.get(f"{VERIFY}?token={first}")).status == 200


def test_the_resend_job_mails_only_active_unverified_accounts(settings, mailbox):
    from workers.account_email import email_link_to_address

    runtime.configure(make_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_USE_TLS="false"), None)
    try:
        unverified, verified = ClientFactory(email_verified_at=None), ClientFactory()
        inactive = ClientFactory(email_verified_at=None, is_active=False)
        for address in (verified.email, inactive.email, "nobody@example.ng"):
            assert email_link_to_address(OneTimeToken.VERIFY_EMAIL, address) is None
        assert email_link_to_address(OneTimeToken.VERIFY_EMAIL, unverified.email.upper()) is not None
        assert [m.rcpt_tos for m in mailbox.messages] == [[unverified.email]]
    finally:
        runtime.reset()


def test_admin_demo_and_command_line_accounts_are_verified(settings):
    admin = accounts.create_admin(settings, email="ops@example.ng", password=PASSWORD)
    assert admin.email_verified_at is not None
    demo = accounts.register(
        settings,
        None,
        email="demo@example.ng",
        password=PASSWORD,
        first_name="D",
        last_name="O",
        phone="+2348012345678",
        role="client",
        verified=True,
    )
    assert demo.email_verified_at is not None and not OneTimeToken.select().exists()


@pytest.mark.gen_test
async def test_an_admin_created_admin_is_verified(api, app):
    created = await api.post(
        "/api/admin/users/",
        {"email": "ops@example.ng", "password": PASSWORD, "first_name": "Funmi"},
        user=AdminFactory(),
    )
    assert created.status == 201 and created.data["email_verified"] is True


def test_link_lifetimes_are_settings():
    settings = make_settings(EMAIL_VERIFICATION_HOURS="2", PASSWORD_RESET_MINUTES="15")
    assert (settings.email_verification_hours, settings.password_reset_minutes) == (2, 15)
    from models.actions.credentials import PASSWORD_RESET, VERIFY_EMAIL, issue_token

    user = ClientFactory()
    for purpose, expected in ((VERIFY_EMAIL, timedelta(hours=2)), (PASSWORD_RESET, timedelta(minutes=15))):
        token_id, _ = issue_token(settings, user.id, purpose)
        row = OneTimeToken.get_by_id(token_id)
        assert abs(row.expires_at - row.created_at - expected) < timedelta(seconds=5)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigurationError):
            make_settings(PASSWORD_RESET_MINUTES=bad)


def test_factories_make_verified_users_so_suites_that_pay_need_no_email(client_user):
    # Factories make verified users, so the suites that pay need no email round trip.
    assert client_user.email_verified_at is not None
    assert ServiceRequestFactory(client=client_user).status == "PENDING_PAYMENT"
