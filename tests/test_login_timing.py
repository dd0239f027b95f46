"""No account oracle by timing: a wrong password for a known address and any password for an unknown
one cost the same bcrypt work, at the configured cost."""

import statistics
import time

import pytest

from models.actions import accounts
from models.foundation.tokens import hash_password
from tests.conftest import Api, make_settings, serve_app
from tests.factories import ClientFactory

ROUNDS = 8  # ~16x the tests' usual cost 4: a cheaper dummy hash would stand out clearly
TRIES = 11


@pytest.fixture
def slow_hash_settings():
    return make_settings(BCRYPT_ROUNDS=str(ROUNDS))


@pytest.fixture
def app(slow_hash_settings, database):
    yield from serve_app(slow_hash_settings)


@pytest.fixture
def api(http_server, base_url, slow_hash_settings):
    return Api(base_url, slow_hash_settings)


def test_the_dummy_hash_has_the_configured_cost():
    for rounds in (4, ROUNDS):
        assert accounts.dummy_password_hash(rounds).startswith(f"$2b${rounds:02d}$")
    assert accounts.dummy_password_hash(ROUNDS) is accounts.dummy_password_hash(ROUNDS)  # made once per cost


@pytest.mark.gen_test(timeout=60)
async def test_unknown_and_known_addresses_fail_in_the_same_time(api):
    known = ClientFactory(password_hash=hash_password("Lekki-Pipes-2026", ROUNDS))
    accounts.dummy_password_hash(ROUNDS)  # made once, on first use: not part of what is measured

    async def seconds(email):
        started = time.perf_counter()
        response = await api.post("/api/auth/login/", {"email": email, "password": "not-the-password"})
        assert response.status == 401 and response.error_code == "invalid_credentials"
        return time.perf_counter() - started

    known_times, unknown_times = [], []
    for _ in range(TRIES):  # interleaved, so a busy machine slows both alike
        known_times.append(await seconds(known.email))
        unknown_times.append(await seconds("nobody@example.ng"))

    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    # Same work: ~1. A cost-4 dummy against cost-8 hashes measures ~0.1-0.3 here.
    assert 0.6 < ratio < 1.6, (ratio, known_times, unknown_times)
