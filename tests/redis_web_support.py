"""The web app in Redis mode (production's shape) for tests, and another `python -m server serve`
process on the same database and Redis, for what must cross from one web process to another.
A test module imports the fixtures it uses: `from .redis_web_support import app, redis_settings`."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
import tornado.httpclient

from server.app import make_app
from workers import runtime

from .conftest import TEST_DATABASE_URL, make_settings
from .pipeline_support import free_port


@pytest.fixture
def redis_settings(redis_url):
    return make_settings(REDIS_URL=redis_url)


@pytest.fixture
def app(redis_settings, database):
    application = make_app(redis_settings, bind_database=False)
    yield application
    asyncio.get_event_loop().run_until_complete(application.settings["hub"].close())
    runtime.reset()


@pytest.fixture
def second_web_process(redis_settings):
    """Another `python -m server serve` process on the same database and Redis."""
    yield from serve_another_web_process(redis_settings)


def serve_another_web_process(redis_settings, **extra_env):
    """Yield the port of a `python -m server serve` process on the same database and Redis."""
    port = free_port()
    env = {
        **os.environ,
        "ENV": "test",
        "SECRET_KEY": redis_settings.secret_key,
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": redis_settings.redis_url,
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        env=env,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    deadline = time.monotonic() + 20
    while True:  # a new process has no readiness event to await; poll its health, bounded
        try:
            tornado.httpclient.HTTPClient().fetch(f"http://127.0.0.1:{port}/healthz")
            break
        except Exception as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the second web process did not start") from exc
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)
