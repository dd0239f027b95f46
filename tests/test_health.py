"""GET /livez, /readyz and /healthz: what each reports, in the OpenAPI document, and bounded in time
even when a dependency accepts a connection and then never answers (a hung server, a black hole).
Dependencies really stopping under a running process: tests/test_faults_health.py."""

import socket
import time
from dataclasses import replace

import pytest

from handlers import health as health_handlers


@pytest.mark.gen_test
async def test_liveness_and_readiness_in_embedded_mode(api):
    live, ready = await api.get("/livez"), await api.get("/readyz")

    assert (live.status, live.data) == (200, {"status": "ok"})
    assert (ready.status, ready.data) == (200, {"status": "ok", "database": "ok", "redis": "embedded"})


@pytest.fixture
def silent_port():
    """A port whose TCP connections are accepted (by the kernel's backlog) but never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.gen_test(timeout=10)
async def test_a_dependency_that_never_answers_is_unavailable_within_the_deadline(settings, silent_port):
    hung = replace(
        settings,
        database_url=f"postgresql://postgres@127.0.0.1:{silent_port}/serviceman",
        redis_url=f"redis://127.0.0.1:{silent_port}/0",
    )
    started = time.monotonic()

    states = await health_handlers.dependency_states(hung)

    assert states == ["unavailable", "unavailable"]
    assert time.monotonic() - started < health_handlers.CHECK_DEADLINE_SECONDS + 0.5


def test_the_probes_are_documented(app):
    paths = app.settings["openapi"]["paths"]
    assert {"/livez", "/readyz", "/healthz"} <= set(paths)
    assert "503" in paths["/readyz"]["get"]["responses"] and "503" in paths["/healthz"]["get"]["responses"]
    assert paths["/livez"]["get"]["operationId"] == "getLiveness"
