"""The whole path on PostgreSQL (TEST_DATABASE_URL) in Redis mode: a booking paid, assigned, cancelled
by an admin with a full refund, the refund processed at Paystack (the stand-in), and everyone told
through the Redis pipeline on both channels."""

import asyncio
from datetime import timedelta

import pytest

from handlers.web.executor import call_with_connection
from models import RequestStatus as S
from models.foundation.clock import utcnow

from .conftest import serve_app
from .factories import AdminFactory, ClientFactory, ServicemanFactory
from .paystack_support import post_webhook
from .pipeline_support import mail_text


@pytest.fixture
def app(mail_pipeline, database):
    """The web app in Redis mode: its events go to the stream, which the test's pipeline drains."""
    settings, _ = mail_pipeline
    yield from serve_app(settings)


@pytest.mark.gen_test(timeout=60)
async def test_booking_to_cancellation_to_refund_processed_in_redis_mode(
    api, mail_pipeline, paystack, mailbox, category
):
    settings, pipeline = mail_pipeline
    assert settings.redis_url
    client, admin = ClientFactory(), AdminFactory()
    primary, backup = (ServicemanFactory(profile__categories=[category]) for _ in range(2))
    day = (utcnow() + timedelta(days=7)).date().isoformat()
    booked = await api.post(
        "/api/requests/",
        {"category_id": category.id, "booking_date": day, "address": "12 Allen Avenue, Ikeja", "description": "Sink"},
        user=client,
    )
    request_id = booked.data["id"]
    checkout = (
        await api.post(
            "/api/payments/initialize/", {"service_request_id": request_id, "payment_type": "BOOKING_FEE"}, user=client
        )
    ).data
    paystack.charge(checkout["reference"])
    assert (await post_webhook(api, *paystack.webhook(checkout["reference"]))).status == 200
    assigned = await api.post(
        f"/api/admin/requests/{request_id}/assign/",
        {"primary_serviceman_id": primary.id, "backup_serviceman_id": backup.id},
        user=admin,
    )
    assert assigned.data["status"] == S.ASSIGNED, assigned
    quote = await api.get(f"/api/requests/{request_id}/cancellation-quote/", user=client)
    assert (quote.data["refund_amount"], quote.data["kept_amount"]) == ("0.00", "2000.00")

    cancelled = await api.post(
        f"/api/requests/{request_id}/cancel/", {"reason": "Serviceman unreachable", "refund": "full_refund"}, user=admin
    )
    assert cancelled.data["status"] == S.CANCELLED
    [at_paystack] = paystack.refunds.values()
    paystack.settle_refund(at_paystack["id"], "processed")
    assert (await post_webhook(api, *paystack.refund_webhook(at_paystack["id"]))).status == 200
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, call_with_connection, pipeline.run)
    await loop.run_in_executor(None, call_with_connection, pipeline.run)

    refund = (await api.get("/api/admin/refunds/", user=admin)).data["results"][0]
    assert (refund["status"], refund["amount"], refund["policy"]) == ("PROCESSED", "2000.00", "full_refund")
    notes = await api.get("/api/notifications/", user=client)
    kinds = [n["notification_type"] for n in notes.data["results"]]
    assert {"refund_started", "refund_processed", "request_cancelled"} <= set(kinds)
    for serviceman in (primary, backup):
        told = await api.get("/api/notifications/", user=serviceman)
        assert "request_cancelled" in [n["notification_type"] for n in told.data["results"]]
    revenue = await api.get("/api/admin/analytics/revenue/", user=admin)
    assert (revenue.data["total"], revenue.data["refunds"], revenue.data["net"]) == ("2000.00", "2000.00", "0.00")
    assert any(client.email in m.rcpt_tos and "refunded" in mail_text(m) for m in mailbox.messages)
