"""The whole path from a booking to a serviceman paid, through the HTTP API, in Redis mode (run it
with TEST_DATABASE_URL on PostgreSQL and TEST_REDIS_URL): the stand-in settles the transfer on its
own and sends the signed `transfer.success` webhook, as Paystack does, and the serviceman is told on
both channels when the money is sent and when it lands."""

from decimal import Decimal

import pytest

from models import Notification, Payout, PayoutStatus, RequestStatus

from .booking_support import assigned_estimated_and_priced, book, finished_job
from .conftest import serve_app
from .contract_support import ok
from .factories import AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory
from .paystack_support import ACCOUNT, eventually, pay
from .pipeline_support import mail_text


@pytest.fixture
def app(database, mail_pipeline):
    settings, _ = mail_pipeline
    yield from serve_app(settings)


@pytest.mark.gen_test(timeout=60)
async def test_from_booking_to_the_serviceman_paid(api, app, base_url, paystack, mail_pipeline, mailbox):
    settings, pipeline = mail_pipeline
    assert settings.redis_url
    paystack.webhook_url, paystack.transfer_outcome = f"{base_url}/api/payments/webhook/", "success"
    category = CategoryFactory(name="Plumbing")
    admin, client = AdminFactory(), ClientFactory()
    primary, backup = (ServicemanFactory(profile__categories=[category]) for _ in range(2))

    # Booked, fee paid, assigned, estimated, marked up 15%, approved, paid, done, confirmed.
    request_id = (await book(api, client, category, days_ahead=7, serviceman_id=primary.id))["id"]
    await pay(api, paystack, client, request_id, "BOOKING_FEE")
    await assigned_estimated_and_priced(api, admin, request_id, primary, backup)
    await ok(await api.post(f"/api/requests/{request_id}/approve-cost/", {}, user=client))
    await pay(api, paystack, client, request_id, "FINAL_PAYMENT")
    await ok(await api.post(f"/api/admin/requests/{request_id}/start-work/", {}, user=admin))
    await ok(await api.post(f"/api/serviceman/requests/{request_id}/complete/", {}, user=primary))
    done = await ok(await api.post(f"/api/admin/requests/{request_id}/confirm-completion/", {}, user=admin))
    assert done["status"] == RequestStatus.COMPLETED

    # The serviceman is owed the estimate; the platform keeps the markup.
    [owed] = (await ok(await api.get("/api/admin/payouts/?status=OWED", user=admin)))["results"]
    assert (owed["serviceman_id"], owed["service_request_id"]) == (primary.id, request_id)
    assert (owed["amount"], owed["platform_share"]) == ("20000.00", "3000.00")

    # The serviceman adds a bank account; an admin approves the payout.
    banks = (await ok(await api.get("/api/banks/", user=primary)))["results"]
    bank = next(b for b in banks if b["name"] == "Guaranty Trust Bank")
    shown = await ok(
        await api.get(f"/api/banks/resolve/?bank_code={bank['code']}&account_number=0123456789", user=primary)
    )
    await ok(
        await api.post(
            "/api/serviceman/payout-account/",
            {"bank_code": bank["code"], "account_number": "0123456789", "account_name": shown["account_name"]},
            user=primary,
        )
    )
    [sent] = (await ok(await api.post("/api/admin/payouts/approve/", {"payout_ids": [owed["id"]]}, user=admin)))[
        "results"
    ]
    assert sent["status"] == PayoutStatus.IN_TRANSIT

    # Paystack settles the transfer and says so with a signed webhook.
    await eventually(lambda: Payout.get_by_id(owed["id"]).status == PayoutStatus.PAID)
    assert len(paystack.transfers) == 1
    [transfer] = paystack.transfers.values()
    assert transfer["amount"] == 2_000_000 and transfer["status"] == "success"
    pipeline.run()
    pipeline.run()  # a replay tells nobody twice

    told = {n.notification_type: n for n in Notification.select().where(Notification.user == primary.id)}
    assert {"payout_sent", "payout_paid"} <= set(told)
    assert "₦20,000.00" in told["payout_paid"].message and "******6789" in told["payout_paid"].message
    assert all(told[kind].sent_to_email for kind in ("payout_sent", "payout_paid"))
    subjects = [mail_text(m) for m in mailbox.messages if primary.email in m.rcpt_tos]
    assert sum("is on its way" in s for s in subjects) == 1
    assert sum("paid into your account" in s for s in subjects) == 1
    mine = await ok(await api.get("/api/serviceman/payouts/totals/", user=primary))
    assert mine["paid"] == {"count": 1, "amount": "20000.00"}
    margin = await ok(await api.get("/api/admin/analytics/payouts/", user=admin))
    assert (margin["platform_margin"], margin["servicemen_share"]) == ("3000.00", "20000.00")
    assert Decimal(margin["margin_percentage"]) == Decimal("13.04")


def test_a_failed_transfer_tells_the_serviceman_and_every_admin(mail_pipeline, mailbox, paystack):
    from models.actions import jobs, payouts
    from models.foundation.paystack import PaystackClient

    settings, pipeline = mail_pipeline
    admins = [AdminFactory(), AdminFactory()]
    request = finished_job()
    jobs.confirm_completion(admins[0], request.id)
    serviceman = request.primary_serviceman
    payouts.set_payout_account(PaystackClient(settings), 60, serviceman, **ACCOUNT)
    [payout] = payouts.approve_payouts(PaystackClient(settings), admins[0], [Payout.get().id])
    data = {**paystack.transfers[payout.transfer_reference], "status": "failed", "gateway_response": "Account dormant"}
    payouts.process_transfer(data, "webhook")
    pipeline.run()

    for user in (serviceman, *admins):
        kinds = [
            n.notification_type
            for n in Notification.select().where(
                Notification.user == user.id, Notification.notification_type.startswith("payout_")
            )
        ]
        assert "payout_failed" in kinds and kinds.count("payout_failed") == 1
        mail = [mail_text(m) for m in mailbox.messages if user.email in m.rcpt_tos]
        [failed] = [text for text in mail if "payout failed" in text]
        assert "Account dormant" in failed
    assert [n.notification_type for n in Notification.select().where(Notification.user == serviceman.id)] == [
        "payout_sent",
        "payout_failed",
    ]
