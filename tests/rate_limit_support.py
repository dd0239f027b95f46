"""Rate limits in tests: the app built with the RATE_LIMIT_* values a test sets (limits are off in the
other tests), counted in memory and again in Redis, and what a refused request looks like.
A test module imports the fixtures: `from .rate_limit_support import api, app, limited_settings, storage`
and sets its limits by overriding the `limits` fixture (or parametrizing it)."""

import pytest

from .conftest import Api, make_settings, serve_app
from .contract_support import assert_error


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """ "" for counters in memory, a Redis URL for counters in Redis."""
    return request.getfixturevalue("redis_url") if request.param == "redis" else ""


@pytest.fixture
def limits():
    """The RATE_LIMIT_* values a test sets before the app is built (tests set real, small ones)."""
    return {}


@pytest.fixture
def limited_settings(storage, limits):
    return make_settings(REDIS_URL=storage, **limits)


@pytest.fixture
def app(limited_settings, database):
    yield from serve_app(limited_settings)


@pytest.fixture
def api(http_server, base_url, limited_settings):
    return Api(base_url, limited_settings)


def assert_rate_limited(response, window_seconds=60):
    """429 in the contract's error shape, with a Retry-After within the limit's window."""
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds
