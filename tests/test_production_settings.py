"""Production start-up refuses settings that would let an outsider in, each with its reason and never
the secret itself: a guessable SECRET_KEY or webhook secret (length alone is no strength), the published
local-checkout key, TRUSTED_PROXIES that believe the whole internet, an http:// PUBLIC_BASE_URL.
`python -m server check` (every command) stops the same way."""

import os
import subprocess
import sys

import pytest

from models.foundation.settings import LOCAL_CHECKOUT_SECRET_KEY, PROJECT_ROOT, ConfigurationError, load_settings
from models.foundation.settings_hardening import MIN_SECRET_BITS, estimated_bits

from .settings_support import PRODUCTION


def refusal(**override):
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ={**PRODUCTION, **override})
    return str(error.value)


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"SECRET_KEY": "a" * 32}, "SECRET_KEY is weak (about 0 bits"),
        ({"SECRET_KEY": "abcd" * 16}, "SECRET_KEY is weak (about 56 bits"),
        ({"PAYSTACK_WEBHOOK_SECRET": "x"}, "PAYSTACK_WEBHOOK_SECRET is weak"),
        ({"PAYSTACK_WEBHOOK_SECRET": LOCAL_CHECKOUT_SECRET_KEY}, "PAYSTACK_WEBHOOK_SECRET is a value published"),
        (
            {
                "PAYSTACK_SECRET_KEY": LOCAL_CHECKOUT_SECRET_KEY,
                "PAYSTACK_PUBLIC_KEY": "pk_test_x",
                "PAYSTACK_ALLOW_TEST_KEYS": "true",
            },
            "PAYSTACK_SECRET_KEY is a value published",
        ),
        ({"TRUSTED_PROXIES": "0.0.0.0/0"}, "TRUSTED_PROXIES trusts 0.0.0.0/0"),
        ({"TRUSTED_PROXIES": "10.0.0.1, ::/0"}, "TRUSTED_PROXIES trusts ::/0"),
        ({"TRUSTED_PROXIES": "8.0.0.0/8"}, "TRUSTED_PROXIES trusts 8.0.0.0/8"),
        ({"PUBLIC_BASE_URL": "http://api.serviceman.ng"}, "PUBLIC_BASE_URL 'http://api.serviceman.ng' is plain http"),
    ],
)
def test_production_refuses_each_weak_setting_with_its_reason(override, problem):
    message = refusal(**override)
    assert problem in message, message
    for name, value in override.items():
        if "SECRET" in name or name == "SECRET_KEY":
            assert value not in message  # a secret, however weak, is never echoed into logs


def test_abcd_repeated_is_long_but_still_weak():
    assert estimated_bits("abcd" * 8) < MIN_SECRET_BITS <= estimated_bits("vQ7nX2rK9wB4tL6mZ1cH8pJ3sD5fG0yE")


def test_strong_secrets_and_narrow_proxies_start():
    settings = load_settings(
        environ={
            **PRODUCTION,
            "PAYSTACK_WEBHOOK_SECRET": "whsec_Hq2Lx9Vb4Nm7Rt1Kc8Pz5Wd3",
            "TRUSTED_PROXIES": "10.0.0.0/8, 172.16.0.0/12, 203.0.113.0/24, fd00::/8",
        }
    )
    assert settings.is_production and len(settings.trusted_proxies) == 4


def test_development_keeps_its_published_defaults():
    settings = load_settings(environ={"ENV": "development", "TRUSTED_PROXIES": "0.0.0.0/0"})
    assert settings.paystack_webhook_secret == LOCAL_CHECKOUT_SECRET_KEY


def test_python_m_server_check_stops_with_every_reason():
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PAYSTACK_", "SECRET_KEY"))}
    env.update(
        PRODUCTION,
        SECRET_KEY="a" * 32,
        TRUSTED_PROXIES="0.0.0.0/0",
        PUBLIC_BASE_URL="http://api.example.ng",
        PAYSTACK_WEBHOOK_SECRET="x",
    )
    result = subprocess.run(
        [sys.executable, "-m", "server", "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    for problem in (
        "SECRET_KEY is weak",
        "PAYSTACK_WEBHOOK_SECRET is weak",
        "TRUSTED_PROXIES trusts 0.0.0.0/0",
        "is plain http",
    ):
        assert problem in result.stderr, result.stderr
    assert "a" * 32 not in result.stderr and "Traceback" not in result.stderr
