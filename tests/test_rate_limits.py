"""Rate limits: 429 in the contract's shape with Retry-After, per client IP and per account, counted
before any work and changing nothing, with memory and with Redis storage; success once the window passed."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from handlers.web import rate_limits
from models import Payment, RefreshToken, User
from models.actions import accounts
from models.foundation.settings import ConfigurationError
from tests.conftest import make_settings
from tests.factories import PASSWORD, ClientFactory, ServiceRequestFactory
from tests.pipeline_support import free_port
from tests.rate_limit_support import api, app, assert_rate_limited, limited_settings, limits, storage  # noqa: F401 (fixtures)

LOGIN = "/api/auth/login/"


def later(seconds):
    """The clock moved on by `seconds` (both storages read time.time(); no sleeping through a window)."""
    return time_machine.travel(datetime.now(UTC) + timedelta(seconds=seconds), tick=True)


def login(api, email, password=PASSWORD, ip=None):
    headers = {"X-Forwarded-For": ip} if ip else None
    return api.post(LOGIN, {"email": email, "password": password}, headers=headers)


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_LOGIN": "3/minute"}])
async def test_login_is_refused_past_the_limit_then_allowed_after_the_window(api, client_user, monkeypatch):
    checked = []
    real_check = accounts.tokens.check_password
    monkeypatch.setattr(accounts.tokens, "check_password", lambda *a: checked.append(1) or real_check(*a))

    for _ in range(3):
        assert (await login(api, client_user.email, "wrong-password")).status == 401
    refused = await login(api, client_user.email)  # even the right password: no guess is weighed

    assert_rate_limited(refused, 60)
    assert len(checked) == 3, "the limit is checked before the password hash"
    assert RefreshToken.select().count() == 0
    with later(61):
        assert (await login(api, client_user.email)).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_LOGIN": "2/minute", "TRUSTED_PROXIES": "127.0.0.1"}])
async def test_one_account_is_limited_across_addresses(api, client_user):
    assert (await login(api, client_user.email, "wrong", ip="198.51.100.1")).status == 401
    assert (await login(api, client_user.email, "wrong", ip="198.51.100.2")).status == 401

    assert_rate_limited(await login(api, client_user.email, ip="198.51.100.3"), 60)
    # Another account from a fresh address is untouched.
    other = ClientFactory()
    assert (await login(api, other.email, ip="198.51.100.4")).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_LOGIN": "2/minute", "TRUSTED_PROXIES": "127.0.0.1"}])
async def test_one_address_is_limited_across_accounts(api):
    users = [ClientFactory() for _ in range(3)]
    assert (await login(api, users[0].email, ip="198.51.100.7")).status == 200
    assert (await login(api, users[1].email, "wrong", ip="198.51.100.7")).status == 401

    assert_rate_limited(await login(api, users[2].email, ip="198.51.100.7"), 60)
    assert (await login(api, users[2].email, ip="198.51.100.8")).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_LOGIN": "2/minute"}])
async def test_loopback_is_not_exempt_and_untrusted_forwarding_is_ignored(api):
    users = [ClientFactory() for _ in range(3)]
    # Without TRUSTED_PROXIES, X-Forwarded-For is anyone's to write: each try is still 127.0.0.1's.
    for user, ip in zip(users[:2], ("203.0.113.1", "203.0.113.2"), strict=True):
        assert (await login(api, user.email, ip=ip)).status == 200
    assert_rate_limited(await login(api, users[2].email, ip="203.0.113.3"), 60)


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_REGISTER": "1/hour"}])
async def test_register_is_limited_and_a_refused_one_creates_nothing(api):
    def body(n):
        return {
            "email": f"new{n}@example.ng",
            "password": "Lekki-Pipes-2026",
            "first_name": "Ada",
            "last_name": "Obi",
            "phone": "+2348012345678",
            "role": "client",
        }

    assert (await api.post("/api/auth/register/", body(1))).status == 201
    refused = await api.post("/api/auth/register/", body(2))

    assert_rate_limited(refused, 3600)
    assert [u.email for u in User.select()] == ["new1@example.ng"]
    with later(3601):
        assert (await api.post("/api/auth/register/", body(2))).status == 201


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_REFRESH": "1/minute"}])
async def test_refresh_is_limited_per_account_and_a_refused_one_revokes_nothing(api, client_user):
    first = (await login(api, client_user.email)).data["refresh"]
    second = (await login(api, client_user.email)).data["refresh"]
    assert (await api.post("/api/auth/refresh/", {"refresh": first})).status == 200

    refused = await api.post("/api/auth/refresh/", {"refresh": second})

    assert_rate_limited(refused, 60)
    with later(61):
        # The refused token was not spent: it still rotates once the window has passed.
        assert (await api.post("/api/auth/refresh/", {"refresh": second})).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_PAYMENT_INITIALIZE": "1/minute", "TRUSTED_PROXIES": "127.0.0.1"}])
async def test_payment_initialize_is_limited_per_client(api, client_user, paystack):
    requests = [ServiceRequestFactory(client=client_user) for _ in range(2)]
    body = {"payment_type": "BOOKING_FEE"}
    assert (
        await api.post(
            "/api/payments/initialize/",
            {**body, "service_request_id": requests[0].id},
            user=client_user,
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
    ).status == 200

    refused = await api.post(
        "/api/payments/initialize/",
        {**body, "service_request_id": requests[1].id},
        user=client_user,
        headers={"X-Forwarded-For": "198.51.100.2"},
    )

    assert_rate_limited(refused, 60)
    assert Payment.select().where(Payment.service_request == requests[1].id).count() == 0
    # Another client, from another address, has a budget of its own.
    other = ClientFactory()
    mine = ServiceRequestFactory(client=other)
    assert (
        await api.post(
            "/api/payments/initialize/",
            {**body, "service_request_id": mine.id},
            user=other,
            headers={"X-Forwarded-For": "198.51.100.3"},
        )
    ).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("storage", ["memory"], indirect=True)
async def test_an_empty_setting_disables_a_limit(api, client_user):
    for _ in range(15):  # past every default
        assert (await login(api, client_user.email)).status == 200


def test_ipv6_addresses_count_by_their_64_block():
    assert rate_limits.address_key("2001:db8:1:2:aaaa::1") == rate_limits.address_key("2001:db8:1:2:bbbb::9")
    assert rate_limits.address_key("2001:db8:1:2::1") != rate_limits.address_key("2001:db8:1:3::1")
    assert rate_limits.address_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert rate_limits.address_key("198.51.100.7") != rate_limits.address_key("198.51.100.8")


def test_unreachable_redis_fails_open_with_a_warning(caplog):
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", RATE_LIMIT_LOGIN="1/minute")
    limiter = rate_limits.RateLimits(settings)

    async def twice():
        for _ in range(2):
            await limiter.check("login", "127.0.0.1", "email:a@example.ng")

    with caplog.at_level(logging.WARNING, logger="serviceman.rate_limits"):
        asyncio.run(twice())  # no RateLimited, no error: sign-in goes on without limits
    warnings = [r for r in caplog.records if "not enforced" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every request


def test_defaults_apply_when_unset_and_bad_notation_stops_start_up():
    from models.foundation.settings import RATE_LIMIT_DEFAULTS, load_settings

    base = {"ENV": "test"}
    assert load_settings(environ=base).rate_limits == RATE_LIMIT_DEFAULTS
    assert load_settings(environ={**base, "RATE_LIMIT_LOGIN": ""}).rate_limits["login"] == ""
    assert load_settings(environ={**base, "RATE_LIMIT_EMAIL": "3/hour;10/day"}).rate_limits["email"] == "3/hour;10/day"
    for bad in ("five a minute", "0/minute", "5/fortnight"):
        with pytest.raises(ConfigurationError, match="RATE_LIMIT_LOGIN"):
            load_settings(environ={**base, "RATE_LIMIT_LOGIN": bad})


def test_an_unknown_limit_name_fails_at_import():
    from handlers.base import endpoint

    with pytest.raises(ValueError, match="rate_limit"):
        endpoint(operation_id="limitedThing", roles="anyone", summary="x", rate_limit="logn")


def test_the_schema_documents_429_on_limited_endpoints(app):
    paths = app.settings["openapi"]["paths"]
    for path in ("/api/auth/login/", "/api/auth/register/", "/api/auth/refresh/", "/api/payments/initialize/"):
        assert "Retry-After" in paths[path]["post"]["responses"]["429"]["headers"], path
    assert "429" not in paths["/api/auth/logout/"]["post"]["responses"]


@pytest.mark.gen_test
@pytest.mark.parametrize("storage", ["redis"], indirect=True)
@pytest.mark.parametrize("limits", [{"RATE_LIMIT_LOGIN": "2/minute", "TRUSTED_PROXIES": "127.0.0.1"}])
async def test_redis_counters_name_no_email_and_no_address_yet_count_per_account(api, storage, client_user):
    import redis

    email, other = client_user.email, ClientFactory().email
    assert (await login(api, email.upper(), "wrong", ip="198.51.100.21")).status == 401
    assert (await login(api, email, "wrong", ip="198.51.100.22")).status == 401
    assert_rate_limited(await login(api, email, ip="198.51.100.23"), 60)  # the same account, a third address
    assert (await login(api, other, ip="198.51.100.24")).status == 200  # another account: its own counter

    keys = redis.Redis.from_url(storage).keys("*")
    assert keys, "the counters are in Redis"
    for key in keys:
        for clear in (email, email.split("@")[0], other, "@", "198.51.100."):
            assert clear.encode() not in key.lower(), key


def test_counter_names_are_keyed_by_secret_key():
    one, two = (
        rate_limits.RateLimits(make_settings(SECRET_KEY=key))
        for key in ("first-secret-key-0123456789abcdef012", "second-secret-key-0123456789abcdef01")
    )
    assert one.pseudonym("email:ada@example.ng") == one.pseudonym("email:ada@example.ng")
    assert one.pseudonym("email:ada@example.ng") != two.pseudonym("email:ada@example.ng")
    assert one.pseudonym("email:ada@example.ng") != one.pseudonym("email:bola@example.ng")
