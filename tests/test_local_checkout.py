"""The local checkout (a Paystack stand-in inside the app) and the Paystack key checks at start-up.

Given no Paystack keys outside production, a newcomer pays through a local page that sends a signed
webhook like Paystack's, and the booking moves on; with ENV=production those routes do not exist.
"""

import re

import pytest
import tornado.httpclient

from models import Payment, PaymentStatus, RequestStatus, ServiceRequest
from models.foundation.settings import LOCAL_CHECKOUT_SECRET_KEY, ConfigurationError, load_settings
from server.app import make_app
from workers import runtime

from .conftest import make_settings, serve_app
from .factories import ServiceRequestFactory
from .settings_support import LIVE_SECRET_KEY, NO_KEYS, PRODUCTION, TEST_SECRET_KEY


@pytest.fixture
def app(database, http_port):
    """This module's app: development mode without Paystack keys, reachable on the test port."""
    yield from serve_app(make_settings(**NO_KEYS, PORT=str(http_port)))


def test_no_keys_outside_production_means_the_local_checkout():
    settings = make_settings(**NO_KEYS, PORT="8123")
    assert settings.paystack_local_checkout
    assert settings.paystack_secret_key == settings.paystack_webhook_secret == LOCAL_CHECKOUT_SECRET_KEY
    assert settings.paystack_api_url == "http://127.0.0.1:8123/dev/paystack"
    assert settings.payment_callback_url == "http://127.0.0.1:8123/dev/paystack/done"
    with_keys = make_settings()
    assert not with_keys.paystack_local_checkout and with_keys.paystack_api_url == with_keys.paystack_base_url


@pytest.mark.gen_test(timeout=30)
async def test_a_newcomer_pays_through_the_local_checkout_page(api, client_user, http_port):
    base_url = f"http://127.0.0.1:{http_port}"  # the address the server gives itself (settings.origin)
    request = ServiceRequestFactory(client=client_user)
    response = await api.post(
        "/api/payments/initialize/", {"service_request_id": request.id, "payment_type": "BOOKING_FEE"}, user=client_user
    )
    assert response.status == 200, response
    checkout = response.data
    assert checkout["authorization_url"].startswith(f"{base_url}/dev/paystack/checkout/")

    http = tornado.httpclient.AsyncHTTPClient()
    page = await http.fetch(checkout["authorization_url"])
    text = page.body.decode()
    assert "NGN 2,000.00" in text and checkout["reference"] in text
    action = re.search(r'action="([^"]+)"', text).group(1)

    paid = await http.fetch(f"{base_url}{action}", method="POST", body="", follow_redirects=False, raise_error=False)

    assert paid.code == 302
    assert paid.headers["Location"].startswith(f"{base_url}/dev/paystack/done?")
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
    payment = Payment.get(Payment.paystack_reference == checkout["reference"])
    assert payment.status == PaymentStatus.SUCCESS and payment.processed_via == "webhook"
    done = await http.fetch(paid.headers["Location"])
    assert checkout["reference"] in done.body.decode()
    # The stand-in's verify answers as Paystack would, through the real client.
    verified = await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)
    assert verified.data["status"] == PaymentStatus.SUCCESS


@pytest.mark.gen_test
async def test_an_unknown_checkout_is_404(api):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{api.base_url}/dev/paystack/checkout/0123abcd", raise_error=False
    )
    assert response.code == 404


def test_production_serves_no_local_checkout(database):
    settings = load_settings(
        environ={**PRODUCTION, "PAYSTACK_SECRET_KEY": LIVE_SECRET_KEY, "PAYSTACK_PUBLIC_KEY": "pk_live_abc"}
    )
    application = make_app(settings, bind_database=False)
    try:
        patterns = [rule.matcher.regex.pattern for rule in application.default_router.rules[0].target.rules]
        assert not [p for p in patterns if "/dev/paystack" in p]
        assert not settings.paystack_local_checkout
    finally:
        runtime.reset()


# --- Paystack keys at start-up ---------------------------------------------------------------------


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("secret,public", [("sk_test_a", "pk_live_b"), ("sk_live_a", "pk_test_b")])
def test_keys_of_different_modes_stop_start_up_in_every_mode(env, secret, public):
    with pytest.raises(ConfigurationError) as error:
        make_settings(ENV=env, PAYSTACK_SECRET_KEY=secret, PAYSTACK_PUBLIC_KEY=public)
    assert "same Paystack mode" in str(error.value)


def test_production_refuses_test_keys_unless_told_they_are_intended():
    test_keys = {**PRODUCTION, "PAYSTACK_SECRET_KEY": TEST_SECRET_KEY, "PAYSTACK_PUBLIC_KEY": "pk_test_b"}
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ=test_keys)
    assert "test keys" in str(error.value) and "PAYSTACK_ALLOW_TEST_KEYS" in str(error.value)
    assert load_settings(environ={**test_keys, "PAYSTACK_ALLOW_TEST_KEYS": "true"}).is_production
    mixed = {
        **PRODUCTION,
        "PAYSTACK_SECRET_KEY": LIVE_SECRET_KEY,
        "PAYSTACK_PUBLIC_KEY": "pk_test_b",
        "PAYSTACK_ALLOW_TEST_KEYS": "true",
    }
    with pytest.raises(ConfigurationError):
        load_settings(environ=mixed)


def test_production_without_keys_never_falls_back_to_the_local_checkout():
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ={**PRODUCTION, "PAYSTACK_SECRET_KEY": "", "PAYSTACK_PUBLIC_KEY": ""})
    assert "PAYSTACK_SECRET_KEY is missing" in str(error.value)
