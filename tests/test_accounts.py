"""Accounts through the API: register, login, refresh rotation and reuse, logout, me; settings; CLI."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from models import ApprovalStatus, RefreshToken, Role, ServicemanProfile, User
from models.foundation import tokens
from models.foundation.settings import ConfigurationError, load_settings
from models.foundation.tokens import access_token
from server.__main__ import main as cli

from .conftest import TEST_DATABASE_URL
from .factories import PASSWORD, CategoryFactory, ClientFactory
from .settings_support import LIVE_SECRET_KEY, PRODUCTION

CLIENT = {
    "email": "Ada@Example.ng",
    "password": "long-password-1",
    "first_name": "Ada",
    "last_name": "Obi",
    "phone": "+2348012345678",
    "role": "client",
}


@pytest.mark.gen_test
async def test_register_client_signs_in_with_lowercased_email(api):
    response = await api.post("/api/auth/register/", CLIENT)

    assert response.status == 201
    assert response.data["user"]["email"] == "ada@example.ng"
    assert response.data["user"]["role"] == "client" and response.data["user"]["serviceman_profile"] is None
    me = await api.get("/api/auth/me/", token=response.data["access"])
    assert me.status == 200 and me.data["id"] == response.data["user"]["id"]


@pytest.mark.gen_test
async def test_duplicate_email_is_422_on_email_and_creates_nothing(api):
    await api.post("/api/auth/register/", CLIENT)
    response = await api.post("/api/auth/register/", {**CLIENT, "email": "ADA@example.ng"})
    assert response.status == 422 and "email" in response.data["error"]["fields"]
    assert User.select().count() == 1


@pytest.mark.gen_test
async def test_register_refuses_admin_role_and_short_password(api):
    response = await api.post("/api/auth/register/", {**CLIENT, "role": "admin", "password": "short"})
    assert response.status == 422
    assert set(response.data["error"]["fields"]) == {"role", "password"}
    assert User.select().count() == 0


@pytest.mark.gen_test
async def test_serviceman_registers_pending_approval_with_categories(api):
    category = CategoryFactory()
    body = {
        **CLIENT,
        "role": "serviceman",
        "category_ids": [category.id],
        "bio": "Electrician",
        "years_of_experience": 6,
    }

    response = await api.post("/api/auth/register/", body)

    assert response.status == 201
    profile = response.data["user"]["serviceman_profile"]
    assert profile["category_ids"] == [category.id] and profile["approval_status"] == ApprovalStatus.PENDING_APPROVAL
    listed = await api.get(f"/api/categories/{category.id}/servicemen/")
    assert listed.data["count"] == 0  # not listed until an admin approves


@pytest.mark.gen_test
async def test_serviceman_needs_an_active_category(api):
    inactive = CategoryFactory(is_active=False)
    missing = await api.post("/api/auth/register/", {**CLIENT, "role": "serviceman"})
    wrong = await api.post("/api/auth/register/", {**CLIENT, "role": "serviceman", "category_ids": [inactive.id]})
    assert missing.status == 422 and "category_ids" in missing.data["error"]["fields"]
    assert wrong.status == 422 and "category_ids" in wrong.data["error"]["fields"]
    assert User.select().count() == 0


@pytest.mark.gen_test
async def test_login_wrong_password_unknown_email_and_inactive_user_are_401(api, client_user):
    wrong = await api.post("/api/auth/login/", {"email": client_user.email, "password": "nope-nope"})
    unknown = await api.post("/api/auth/login/", {"email": "ghost@example.ng", "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    assert wrong.error_code == unknown.error_code == "invalid_credentials"
    User.update(is_active=False).where(User.id == client_user.id).execute()
    inactive = await api.post("/api/auth/login/", {"email": client_user.email, "password": PASSWORD})
    assert inactive.status == 401 and inactive.error_code == "account_inactive"


async def login(api, user):
    response = await api.post("/api/auth/login/", {"email": user.email, "password": PASSWORD})
    assert response.status == 200
    return response.data


@pytest.mark.gen_test
async def test_refresh_rotates_and_reuse_revokes_the_whole_family(api, client_user):
    first = await login(api, client_user)

    rotated = await api.post("/api/auth/refresh/", {"refresh": first["refresh"]})
    assert rotated.status == 200 and rotated.data["refresh"] != first["refresh"]
    assert (await api.get("/api/auth/me/", token=rotated.data["access"])).status == 200

    # the old token is presented again (stolen, or replayed): refused, and the family is revoked
    reused = await api.post("/api/auth/refresh/", {"refresh": first["refresh"]})
    assert reused.status == 401 and reused.error_code == "token_reused"
    after = await api.post("/api/auth/refresh/", {"refresh": rotated.data["refresh"]})
    assert after.status == 401
    assert RefreshToken.select().where(RefreshToken.revoked_at.is_null()).count() == 0


@pytest.mark.gen_test
async def test_reuse_in_one_login_leaves_other_logins_signed_in(api, client_user):
    phone, laptop = await login(api, client_user), await login(api, client_user)
    await api.post("/api/auth/refresh/", {"refresh": phone["refresh"]})
    await api.post("/api/auth/refresh/", {"refresh": phone["refresh"]})  # reuse on the phone's family

    assert (await api.post("/api/auth/refresh/", {"refresh": laptop["refresh"]})).status == 200


@pytest.mark.gen_test
async def test_access_token_is_not_a_refresh_token_and_garbage_is_401(api, client_user):
    pair = await login(api, client_user)
    assert (await api.post("/api/auth/refresh/", {"refresh": pair["access"]})).status == 401
    assert (await api.post("/api/auth/refresh/", {"refresh": "not.a.jwt"})).status == 401


@pytest.mark.gen_test
async def test_refresh_token_expires_after_seven_days(api, client_user):
    pair = await login(api, client_user)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, minutes=1)):
        expired = await api.post("/api/auth/refresh/", {"refresh": pair["refresh"]})
    assert expired.status == 401 and expired.error_code == "token_invalid"


@pytest.mark.gen_test
async def test_logout_revokes_the_refresh_token(api, client_user, other_client):
    pair = await login(api, client_user)
    other = await login(api, other_client)

    assert (await api.post("/api/auth/logout/", {"refresh": other["refresh"]}, token=pair["access"])).status == 422
    assert (await api.post("/api/auth/logout/", {"refresh": pair["refresh"]}, token=pair["access"])).status == 204
    assert (await api.post("/api/auth/refresh/", {"refresh": pair["refresh"]})).status == 401
    assert (await api.post("/api/auth/refresh/", {"refresh": other["refresh"]})).status == 200


@pytest.mark.gen_test
async def test_me_patch_for_client_and_serviceman(api, client_user, serviceman):
    renamed = await api.patch("/api/auth/me/", {"first_name": "Chioma"}, user=client_user)
    assert renamed.status == 200 and renamed.data["first_name"] == "Chioma"
    refused = await api.patch("/api/auth/me/", {"bio": "I am a client"}, user=client_user)
    assert refused.status == 422 and "bio" in refused.data["error"]["fields"]

    new_category = CategoryFactory()
    updated = await api.patch(
        "/api/auth/me/",
        {"bio": "Now also AC", "is_available": False, "category_ids": [new_category.id]},
        user=serviceman,
    )
    profile = updated.data["serviceman_profile"]
    assert updated.status == 200
    assert (profile["bio"], profile["is_available"], profile["category_ids"]) == (
        "Now also AC",
        False,
        [new_category.id],
    )


@pytest.mark.gen_test
async def test_admin_vets_servicemen(api, admin_user, category):
    user = ClientFactory(role=Role.SERVICEMAN)
    ServicemanProfile.create(user=user)
    base = f"/api/admin/servicemen/{user.id}"

    pending = await api.get("/api/admin/servicemen/?status=PENDING_APPROVAL", user=admin_user)
    assert [s["id"] for s in pending.data["results"]] == [user.id]
    approved = await api.post(f"{base}/approve/", {"category_ids": [category.id]}, user=admin_user)
    assert approved.status == 200 and approved.data["approval_status"] == "APPROVED"
    assert (await api.get(f"/api/servicemen/{user.id}/")).status == 200
    assert (await api.post(f"{base}/approve/", {}, user=admin_user)).status == 409
    assert (await api.post(f"{base}/suspend/", {}, user=admin_user)).status == 422  # a reason is required
    suspended = await api.post(f"{base}/suspend/", {"reason": "No-show twice"}, user=admin_user)
    assert suspended.data["approval_status"] == "SUSPENDED" and suspended.data["status_reason"] == "No-show twice"
    assert (await api.get(f"/api/servicemen/{user.id}/")).status == 404
    assert (await api.post(f"{base}/reinstate/", user=admin_user)).data["approval_status"] == "APPROVED"


@pytest.mark.gen_test
async def test_admin_creates_admins_and_deactivates_users(api, admin_user, client_user):
    pair = await login(api, client_user)
    created = await api.post(
        "/api/admin/users/",
        {"email": "ops@example.ng", "password": "long-password-2", "first_name": "Ops"},
        user=admin_user,
    )
    assert created.status == 201 and created.data["role"] == "admin"

    deactivated = await api.post(f"/api/admin/users/{client_user.id}/deactivate/", user=admin_user)
    assert deactivated.status == 200 and deactivated.data["is_active"] is False
    assert (await api.get("/api/auth/me/", token=pair["access"])).status == 401
    assert (await api.post("/api/auth/refresh/", {"refresh": pair["refresh"]})).status == 401
    assert (await api.post("/api/admin/users/999999/deactivate/", user=admin_user)).status == 404


def test_production_refuses_to_start_without_its_secrets():
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ={"ENV": "production"})
    for name in ("SECRET_KEY", "DATABASE_URL", "PAYSTACK_SECRET_KEY", "PAYSTACK_PUBLIC_KEY", "PUBLIC_BASE_URL"):
        assert f"{name} is missing" in str(error.value)


def test_production_starts_with_its_secrets_and_rejects_a_bad_time_zone():
    environ = PRODUCTION
    settings = load_settings(environ=environ)
    assert settings.paystack_webhook_secret == LIVE_SECRET_KEY  # Paystack signs webhooks with the secret key
    assert str(settings.emergency_booking_fee) == "5000.00" and str(settings.standard_booking_fee) == "2000.00"
    with pytest.raises(ConfigurationError, match="TIME_ZONE"):
        load_settings(environ={**environ, "TIME_ZONE": "Mars/Olympus"})
    with pytest.raises(ConfigurationError):
        load_settings(environ={**environ, "EMERGENCY_BOOKING_FEE": "lots"})


def test_createadmin_command(monkeypatch, capsys, database):
    monkeypatch.setenv("DATABASE_URL", TEST_DATABASE_URL)
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    # the CLI binds DATABASE_URL; here it gets the session's (same URL) connection
    monkeypatch.setattr("server.__main__.bind", lambda url, *args, **kwargs: database)

    cli(["createadmin", "--email", "Boss@Example.ng", "--password", "long-password-3"])
    assert User.get(User.email == "boss@example.ng").role == Role.ADMIN
    with pytest.raises(SystemExit):
        cli(["createadmin", "--email", "boss@example.ng", "--password", "long-password-3"])
    cli(["migrate"])
    assert "up to date" in capsys.readouterr().out


@pytest.mark.gen_test
async def test_an_access_token_used_again_and_again_still_expires_on_time(api, settings, client_user):
    token = api.token(client_user)  # verified once, then remembered (models/foundation/tokens.py)
    for _ in range(3):
        assert (await api.get("/api/auth/me/", token=token)).status == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=settings.access_token_minutes, seconds=1)):
        expired = await api.get("/api/auth/me/", token=token)
    assert (expired.status, expired.error_code) == (401, "token_invalid")


def test_a_remembered_token_is_its_own_key_and_kind_only(settings, client_user):
    token = access_token(settings, client_user)
    assert tokens.decode(settings, token, tokens.ACCESS)["sub"] == str(client_user.id)
    other_key = dataclasses.replace(settings, secret_key="another-secret-key-0123456789abcdef0123")
    assert tokens.decode(other_key, token, tokens.ACCESS) is None
    assert tokens.decode(settings, token, tokens.REFRESH) is None
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert tokens.decode(settings, tampered, tokens.ACCESS) is None
    mine = tokens.decode(settings, token, tokens.ACCESS)
    mine["sub"] = "0"  # a caller's copy: changing it changes nothing remembered
    assert tokens.decode(settings, token, tokens.ACCESS)["sub"] == str(client_user.id)
