"""GET /metrics in one web process: served only with METRICS_TOKEN and only to its bearer, Prometheus
text that prometheus_client's own parser reads, values that move with real requests, sockets, pushes,
Paystack calls and rows. (Every process kind together: tests/test_observability_processes.py.)"""

import asyncio
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers.metrics import metrics_routes
from models import Payment, PaymentStatus, PaymentType
from models.foundation.paystack import PaystackClient, PaystackRefused, PaystackUnavailable
from workers import runtime

from .conftest import make_settings, serve_app
from .factories import ClientFactory, ServiceRequestFactory
from .ws_support import receive

TOKEN = "metrics-token-for-the-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(database):
    yield from serve_app(make_settings(METRICS_TOKEN=TOKEN))


async def scrape(api):
    response = await api.client.fetch(api.base_url + "/metrics", headers=BEARER, raise_error=False)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


def value(samples, name, **labels):
    return sum(v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found))


@pytest.mark.gen_test(timeout=30)
async def test_requests_are_counted_by_route_template_and_status(api, category):
    before = await scrape(api)
    for _ in range(3):
        assert (await api.get(f"/api/categories/{category.id}/servicemen/")).status == 200
    assert (await api.get("/api/categories/999999/servicemen/")).status == 404
    assert (await api.get("/api/no-such-thing/")).status == 404
    after = await scrape(api)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/api/categories/{category_id}/servicemen/"
    assert moved("serviceman_http_requests_total", method="GET", route=route, status="200") == 3
    assert moved("serviceman_http_requests_total", method="GET", route=route, status="404") == 1
    assert moved("serviceman_http_requests_total", route="unmatched", status="404") == 1
    assert moved("serviceman_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert moved("serviceman_http_request_duration_seconds_sum", method="GET", route=route) > 0
    # No label holds an id: every route label is a template.
    assert not any(str(category.id) in dict(labels).get("route", "") for (_n, labels) in after)


@pytest.mark.gen_test(timeout=30)
async def test_metrics_need_the_token(api):
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        response = await api.call("GET", "/metrics", headers=headers)
        assert response.status == 401 and response.error_code == "not_authenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.gen_test(timeout=30)
async def test_sockets_and_pushes_are_counted(api, sockets, client_user):
    before = await scrape(api)
    ws = await sockets.authenticated(api.token(client_user))
    assert value(await scrape(api), "serviceman_websockets_open") == value(before, "serviceman_websockets_open") + 1
    runtime.transport().push(client_user.id, {"type": "unread_count", "count": 3})
    assert (await receive(ws))["type"] == "unread_count"
    assert value(await scrape(api), "serviceman_pushes_total") == value(before, "serviceman_pushes_total") + 1
    ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_held_sync_polls_are_counted_while_they_wait(api, app, client_user):
    watch = app.settings["hub"].watch  # what GET /api/sync/?wait= holds a poll on
    before = value(await scrape(api), "serviceman_sync_polls_held")
    poll = asyncio.ensure_future(watch.wait(client_user.id, 20))
    while watch.held() < 1:
        await asyncio.sleep(0.005)
    assert value(await scrape(api), "serviceman_sync_polls_held") == before + 1
    watch.changed(client_user.id)  # a message on the user's channel wakes it
    assert await poll is True
    assert value(await scrape(api), "serviceman_sync_polls_held") == before


@pytest.mark.gen_test(timeout=30)
async def test_paystack_calls_are_timed_and_failures_counted_by_endpoint(api, settings, paystack):
    before = await scrape(api)
    client = PaystackClient(settings)
    with pytest.raises(PaystackRefused):
        client.verify("SM-unknown-reference")
    paystack.fail_next("error")
    with pytest.raises(PaystackUnavailable):
        client.verify("SM-another-reference")
    after = await scrape(api)
    endpoint = "GET /transaction/verify/{reference}"
    assert (
        value(after, "serviceman_paystack_request_duration_seconds_count", endpoint=endpoint)
        - value(before, "serviceman_paystack_request_duration_seconds_count", endpoint=endpoint)
        == 2
    )
    for kind in ("refused", "unavailable"):
        assert (
            value(after, "serviceman_paystack_errors_total", endpoint=endpoint, kind=kind)
            - value(before, "serviceman_paystack_errors_total", endpoint=endpoint, kind=kind)
            == 1
        )
    assert not any("SM-" in dict(labels).get("endpoint", "") for (_n, labels) in after)
    paystack.requests.clear()


@pytest.mark.gen_test(timeout=30)
async def test_payments_by_state_and_the_outbox_are_read_at_scrape_time(api):
    request = ServiceRequestFactory(client=ClientFactory())
    for number, status in enumerate((PaymentStatus.PENDING, PaymentStatus.SUCCESS, PaymentStatus.SUCCESS)):
        Payment.create(
            service_request=request,
            payer=request.client,
            payment_type=PaymentType.BOOKING_FEE,
            amount=Decimal("2000.00"),
            status=status,
            paystack_reference=f"metrics-{number}",
        )
    samples = await scrape(api)
    assert value(samples, "serviceman_payments", status=PaymentStatus.PENDING) == 1
    assert value(samples, "serviceman_payments", status=PaymentStatus.SUCCESS) == 2
    assert value(samples, "serviceman_outbox_events_waiting") >= 0
    assert value(samples, "serviceman_state_up", source="database") == 1
    assert value(samples, "serviceman_processes", process="web") == 1


def test_without_a_token_there_is_no_metrics_route():
    assert metrics_routes(make_settings()) == []  # /metrics is then an unknown route: 404
    assert [path for path, *_ in metrics_routes(make_settings(METRICS_TOKEN=TOKEN))] == ["/metrics"]
