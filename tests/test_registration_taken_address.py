"""Registering an address that already has an account. The contract signs a new user in at once
(201 with tokens), so that answer cannot be the same for a taken address: any look-alike answer is
exposed by the next request. What registration guarantees instead: the refusal costs the same bcrypt
work as a success, nothing about the account changes, and its owner is emailed (sign in, or reset the
password with the link), so every probe of an address is visible to the person it belongs to."""

import pytest

from models import User
from models.actions import accounts
from models.foundation import tokens

from .account_support import account_email, links, path_of, token_of
from .conftest import make_settings, serve_app
from .factories import ClientFactory

PASSWORD = "a-long-enough-password-1"
SUBJECT = "tried to create"


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


def body(email):
    return {
        "email": email,
        "password": PASSWORD,
        "first_name": "Eve",
        "last_name": "Probe",
        "phone": "+2348012345678",
        "role": "client",
    }


@pytest.mark.gen_test(timeout=30)
async def test_the_owner_of_a_taken_address_is_emailed_a_sign_in_hint_and_a_working_reset_link(api, app, mailbox):
    owner = ClientFactory(email="ada@example.ng")
    before = User.get_by_id(owner.id)

    response = await api.post("/api/auth/register/", body("ADA@example.ng"))

    assert response.status == 422 and response.data["error"]["fields"] == {"email": [accounts.EMAIL_TAKEN]}
    message = await account_email(mailbox, owner.email, SUBJECT)
    assert "already has one" in message.get_body(("plain",)).get_content()
    link = links(message)["text"]
    assert link.startswith("https://api.serviceman.example/reset-password/?token=")
    assert User.get_by_id(owner.id).password_hash == before.password_hash  # nothing changed meanwhile
    confirmed = await api.post(
        "/api/auth/password-reset/confirm/", {"token": token_of(link), "password": "Owner-Regained-2027"}
    )
    assert confirmed.status == 204, confirmed
    assert path_of(link).startswith("/reset-password/?token=")


def test_a_taken_address_costs_the_same_bcrypt_work_as_a_new_one(settings, monkeypatch):
    hashed, real = [], tokens.hash_password

    def counted(password, rounds):
        hashed.append(rounds)
        return real(password, rounds)

    monkeypatch.setattr(tokens, "hash_password", counted)
    accounts.register(settings, None, **body("new@example.ng"))
    with pytest.raises(accounts.EmailTaken):
        accounts.register(settings, None, **body("NEW@example.ng"))
    assert hashed == [settings.bcrypt_rounds, settings.bcrypt_rounds]
    assert User.select().where(User.email == "new@example.ng").count() == 1
