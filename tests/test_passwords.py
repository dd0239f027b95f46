"""One password rule for every way a password is set: register, admin create, and `createadmin`."""

import pytest

from models import User
from models.actions.passwords import common_passwords, password_problems
from server.__main__ import main as cli

from .conftest import TEST_DATABASE_URL

EMAIL = "Adaeze.Obi@Example.ng"
REFUSED = {
    "too short": "Ab3-xyz",
    "common": "password",
    "common digits": "12345678",
    "common keyboard walk": "qwertyui",
    "common in capitals": "PassWord1",
    "eight spaces": " " * 8,
    "only whitespace": "\t \n \t \n ",
    "the email": "adaeze.obi@example.ng",
    "the email's name part": "ADAEZE.OBI",
    "past bcrypt's 72 bytes": "é" * 37,
}
REGISTER = {"email": EMAIL, "first_name": "Ada", "last_name": "Obi", "phone": "+2348012345678", "role": "client"}


@pytest.mark.parametrize("reason", REFUSED)
def test_the_rule_refuses(reason):
    assert password_problems(REFUSED[reason], EMAIL), reason


@pytest.mark.parametrize("password", ["Lekki-Pipes-2026", "correct-horse-battery", "adaeze.obi@example.ng!x"])
def test_the_rule_accepts(password):
    assert password_problems(password, EMAIL) == []


def test_the_common_list_is_the_vendored_one():
    common = common_passwords()
    assert len(common) > 10_000 and {"password", "12345678", "qwertyui", "iloveyou"} <= common


@pytest.mark.gen_test
@pytest.mark.parametrize("reason", REFUSED)
async def test_register_refuses_on_the_password_field_and_creates_nothing(api, reason):
    response = await api.post("/api/auth/register/", {**REGISTER, "password": REFUSED[reason]})

    assert response.status == 422, (reason, response)
    assert set(response.data["error"]["fields"]) == {"password"}, response
    assert User.select().count() == 0


@pytest.mark.gen_test
async def test_register_accepts_a_good_password(api):
    assert (await api.post("/api/auth/register/", {**REGISTER, "password": "Lekki-Pipes-2026"})).status == 201


@pytest.mark.gen_test
@pytest.mark.parametrize("reason", ["common", "eight spaces", "the email", "too short"])
async def test_admin_create_applies_the_same_rule(api, admin_user, reason):
    body = {"email": EMAIL, "first_name": "Ada", "password": REFUSED[reason]}

    response = await api.post("/api/admin/users/", body, user=admin_user)

    assert response.status == 422 and set(response.data["error"]["fields"]) == {"password"}, response
    assert User.select().where(User.email == EMAIL.lower()).count() == 0


@pytest.fixture
def createadmin(monkeypatch, database):
    monkeypatch.setenv("DATABASE_URL", TEST_DATABASE_URL)
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setattr("server.__main__.bind", lambda url, *args, **kwargs: database)
    return lambda password: cli(["createadmin", "--email", EMAIL, "--password", password])


@pytest.mark.parametrize("password", ["x", "password", " " * 8, "adaeze.obi"])
def test_createadmin_applies_the_same_rule(createadmin, password):
    with pytest.raises(SystemExit) as stopped:
        createadmin(password)

    assert str(stopped.value.code).startswith("createadmin: password: "), stopped.value.code
    assert User.select().count() == 0


def test_createadmin_accepts_a_good_password(createadmin):
    createadmin("Ikeja-Ops-2026!")
    assert User.get(User.email == EMAIL.lower()).role == "admin"
