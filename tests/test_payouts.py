"""Paying servicemen through Paystack Transfers, against the stand-in on loopback (banks, account
resolution, transfer recipients, transfers, signed `transfer.*` webhooks).

Given a completed job, the primary serviceman is owed the agreed price less the markup, once; given a
payout account, an admin's approval becomes one transfer whose reference is stored before Paystack is
called, so a timeout, a retry, a race, a replayed webhook or a reconciliation never pays twice; a failed
or reversed transfer makes the payout owed again under a new reference, and everyone concerned is told.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import peewee
import pytest

from models import Event, Payout, PayoutAccount, PayoutStatus, PayoutTransfer, RequestStatus
from models.actions import jobs, payouts
from models.db import database
from models.foundation.errors import InvalidTransition
from models.foundation.paystack import PaystackClient, sign
from models.money import split_agreed_price
from server.paystack_standin_transfers import settle_transfer, transfer_webhook

from .booking_support import finished_job
from .contract_support import assert_error, snapshot
from .factories import AdminFactory, ServicemanFactory, ServiceRequestFactory
from .paystack_support import (
    ACCOUNT,
    eventually,
    fresh_bank_cache,  # noqa: F401 (autouse fixture)
    owed_payout,
    post_webhook,
)

P = PayoutStatus


def events(payout, event_type):
    return list(Event.select().where(Event.service_request == payout.service_request_id, Event.type == event_type))


def reload(payout):
    return Payout.get_by_id(payout.id)


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "estimate, agreed, amount, share",
    [
        ("20000.00", "23000.00", "20000.00", "3000.00"),  # the client accepted the markup: the estimate
        ("20000.00", "22000.00", "20000.00", "2000.00"),  # a negotiated discount comes out of the markup
        ("20000.00", "20000.00", "20000.00", "0.00"),  # negotiated down to the estimate: no markup left
        ("20000.00", "18000.00", "18000.00", "0.00"),  # below the estimate (the serviceman was consulted)
        ("18666.67", "21000.00", "18666.67", "2333.33"),  # to the kobo
        (None, "15000.00", "15000.00", "0.00"),  # never inspected: all of it
    ],
)
def test_the_serviceman_is_paid_the_estimate_and_the_platform_keeps_what_the_client_paid_above_it(
    estimate, agreed, amount, share
):
    got = split_agreed_price(None if estimate is None else Decimal(estimate), Decimal(agreed))
    assert got == (Decimal(amount), Decimal(share))
    assert sum(got) == Decimal(agreed)


def test_confirming_completion_records_one_payout_in_the_same_transaction(admin_user):
    request = finished_job(final_cost="22000.00")

    jobs.confirm_completion(admin_user, request.id)

    [payout] = Payout.select()
    assert (payout.serviceman_id, payout.service_request_id, payout.status) == (
        request.primary_serviceman_id,
        request.id,
        P.OWED,
    )
    assert (payout.amount, payout.platform_share, payout.currency) == (Decimal("20000.00"), Decimal("2000.00"), "NGN")
    assert payout.transfer_reference.startswith(f"smpo-{request.id}-")
    assert len(events(payout, "payout_owed")) == 1
    with pytest.raises(InvalidTransition):
        jobs.confirm_completion(admin_user, request.id)  # the request is COMPLETED
    with pytest.raises(peewee.IntegrityError):  # the database itself refuses a second payout
        Payout.create(
            serviceman=payout.serviceman_id,
            service_request=request.id,
            amount=1,
            platform_share=0,
            transfer_reference="smpo-duplicate",
        )
    assert Payout.select().count() == 1


def test_a_job_never_marked_up_owes_the_estimate_and_one_without_a_price_owes_nothing(admin_user):
    unpriced_markup = finished_job(final_cost=None, estimate="9000.00", markup="20.00")
    jobs.confirm_completion(admin_user, unpriced_markup.id)
    payout = Payout.get(Payout.service_request == unpriced_markup.id)
    assert (payout.amount, payout.platform_share) == (Decimal("9000.00"), Decimal("0.00"))
    nothing = ServiceRequestFactory(
        status=RequestStatus.COMPLETED_BY_SERVICEMAN, primary_serviceman=ServicemanFactory()
    )
    jobs.confirm_completion(admin_user, nothing.id)
    assert not Payout.select().where(Payout.service_request == nothing.id).exists()


# --- banks and the payout account --------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_bank_list_comes_from_paystack_and_is_cached(api, paystack, serviceman):
    first = await api.get("/api/banks/", user=serviceman)
    second = await api.get("/api/banks/", user=serviceman)

    assert first.status == 200 and first.data == second.data
    assert {"name": "Guaranty Trust Bank", "code": "058"} in first.data["results"]
    assert [call for call in paystack.calls if call[1] == "/bank"] == [("GET", "/bank")]


def test_the_bank_list_is_read_page_by_page_with_paystacks_cursor(paystack, settings):
    banks = PaystackClient(settings).list_banks(per_page=3)
    assert len(banks) == 10 and len({b["code"] for b in banks}) == 10
    pages = [query for method, path, query, _ in paystack.requests if path == "/bank"]
    assert len(pages) == 4
    # The cursor is Paystack's opaque token, sent back as it came.
    assert "next" not in pages[0] and all(not page["next"].isdigit() for page in pages[1:])


@pytest.mark.gen_test
async def test_only_banks_that_can_receive_transfers_are_offered(api, paystack, serviceman):
    """Paystack lists banks with `supports_transfer` and `is_deleted` (openapi components/schemas/
    MiscellaneousListBanksResponseArray.yaml); a payout account must be at a bank that takes transfers."""
    codes = {bank["code"] for bank in (await api.get("/api/banks/", user=serviceman)).data["results"]}

    assert "058" in codes and len(codes) == 8
    assert "100039" not in codes  # listed, active, but supports_transfer false
    assert "090999" not in codes  # is_deleted
    refused = await api.post(
        "/api/serviceman/payout-account/", {"bank_code": "100039", "account_number": "0123456789"}, user=serviceman
    )
    assert "bank_code" in assert_error(refused, 422)["fields"]


@pytest.mark.gen_test
async def test_a_serviceman_confirms_the_resolved_name_then_saves_the_account_masked(api, paystack, serviceman):
    resolved = await api.get("/api/banks/resolve/?bank_code=058&account_number=0123456789", user=serviceman)
    assert resolved.status == 200, resolved
    assert resolved.data["account_name"] == "TUNDE ADEBAYO BAKARE"
    assert resolved.data["account_number_masked"] == "******6789"
    assert not PayoutAccount.select().exists() and not paystack.recipients  # nothing saved yet

    saved = await api.post(
        "/api/serviceman/payout-account/", {**ACCOUNT, "account_name": resolved.data["account_name"]}, user=serviceman
    )

    assert saved.status == 200, saved
    assert saved.data["account_number_masked"] == "******6789" and saved.data["bank_name"] == "Guaranty Trust Bank"
    [recipient] = paystack.recipients.values()
    assert saved.data["recipient_code"] == recipient["recipient_code"]
    assert recipient["details"]["account_number"] == "0123456789"
    assert "0123456789" not in json.dumps(snapshot())  # the full number is stored nowhere of ours
    assert (await api.get("/api/serviceman/payout-account/", user=serviceman)).data == saved.data


@pytest.mark.gen_test
async def test_an_account_the_bank_does_not_know_or_a_changed_name_saves_nothing(api, paystack, serviceman):
    assert_error(await api.get("/api/serviceman/payout-account/", user=serviceman), 404)
    before = snapshot()
    unknown = await api.post(
        "/api/serviceman/payout-account/", {"bank_code": "058", "account_number": "0123450000"}, user=serviceman
    )
    assert "account_number" in assert_error(unknown, 422, "validation_error")["fields"]
    no_bank = await api.post(
        "/api/serviceman/payout-account/", {"bank_code": "999", "account_number": "0123456789"}, user=serviceman
    )
    assert "bank_code" in assert_error(no_bank, 422)["fields"]
    short = await api.post(
        "/api/serviceman/payout-account/", {"bank_code": "058", "account_number": "12345"}, user=serviceman
    )
    assert "account_number" in assert_error(short, 422)["fields"]
    changed = await api.post(
        "/api/serviceman/payout-account/", {**ACCOUNT, "account_name": "SOMEONE ELSE"}, user=serviceman
    )
    assert_error(changed, 409, "account_name_mismatch")
    assert snapshot() == before and not paystack.recipients


@pytest.mark.gen_test
async def test_paystack_unreachable_while_adding_an_account_is_502(api, paystack, serviceman):
    await api.get("/api/banks/", user=serviceman)  # cached
    paystack.fail_next("error")
    assert_error(await api.post("/api/serviceman/payout-account/", ACCOUNT, user=serviceman), 502)
    assert not PayoutAccount.select().exists()


# --- transfers ---------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_approved_payout_is_sent_then_paid_by_the_signed_webhook_once(api, paystack, settings, admin_user):
    payout = owed_payout(admin_user, settings)

    approved = await api.post("/api/admin/payouts/approve/", {"payout_ids": [payout.id]}, user=admin_user)

    assert approved.status == 200, approved
    [result] = approved.data["results"]
    assert result["status"] == P.IN_TRANSIT and result["transfer_reference"] == payout.transfer_reference
    transfer = paystack.transfers[payout.transfer_reference]
    assert transfer["amount"] == 2_000_000 and transfer["source"] == "balance"
    account = PayoutAccount.get(PayoutAccount.serviceman == payout.serviceman_id)
    assert transfer["recipient"]["recipient_code"] == account.recipient_code
    assert len(events(payout, "payout_sent")) == 1

    settle_transfer(paystack, payout.transfer_reference, "success")
    raw, signature = transfer_webhook(paystack, payout.transfer_reference)
    for _ in range(3):  # Paystack retries; replays change nothing
        assert (await post_webhook(api, raw, signature)).status == 200

    paid = reload(payout)
    assert paid.status == P.PAID and paid.paid_at is not None
    assert len(events(payout, "payout_paid")) == 1
    [attempt] = PayoutTransfer.select()
    assert (attempt.status, attempt.paystack_status) == (P.PAID, "success")
    assert len(paystack.transfers) == 1
    mine = await api.get("/api/serviceman/payouts/", user=paid.serviceman)
    assert [(p["id"], p["status"]) for p in mine.data["results"]] == [(payout.id, P.PAID)]
    # The timeline shows the payout to admins only: the client does not see the serviceman's pay or bank.
    path = f"/api/requests/{payout.service_request_id}/events/?page_size=100"
    seen_by = {
        who: {e["type"] for e in (await api.get(path, user=user)).data["results"]}
        for who, user in (("admin", admin_user), ("client", paid.service_request.client))
    }
    assert {"payout_owed", "payout_approved", "payout_sent", "payout_paid"} <= seen_by["admin"]
    assert not {t for t in seen_by["client"] if t.startswith("payout_")} and "job_confirmed" in seen_by["client"]


@pytest.mark.gen_test
async def test_a_forged_transfer_webhook_changes_nothing(api, paystack, settings, admin_user):
    payout = owed_payout(admin_user, settings)
    payouts.approve_payouts(PaystackClient(settings), admin_user, [payout.id])
    settle_transfer(paystack, payout.transfer_reference, "success")
    raw, _ = transfer_webhook(paystack, payout.transfer_reference)
    before = snapshot()

    response = await post_webhook(api, raw, sign(raw, "sk_test_someone_else"))

    assert_error(response, 401, "invalid_signature")
    assert snapshot() == before and reload(payout).status == P.IN_TRANSIT


@pytest.mark.gen_test
async def test_a_transfer_that_timed_out_is_retried_with_the_same_reference_and_paid_once(
    api, paystack, settings, admin_user
):
    payout = owed_payout(admin_user, settings)
    reference = payout.transfer_reference
    paystack.fail_next("timeout")  # Paystack takes the transfer, but its answer comes too late

    first = await api.post("/api/admin/payouts/approve/", {"payout_ids": [payout.id]}, user=admin_user)

    assert first.status == 200, first
    [result] = first.data["results"]
    assert result["status"] == P.APPROVED and "did not answer" in result["failure_reason"]
    await eventually(lambda: reference in paystack.transfers)  # the stand-in made it after all

    again = await api.post("/api/admin/payouts/approve/", {"payout_ids": [payout.id]}, user=admin_user)

    assert again.status == 200, again
    assert again.data["results"][0]["status"] == P.IN_TRANSIT
    assert again.data["results"][0]["transfer_reference"] == reference
    assert list(paystack.transfers) == [reference]  # one transfer at Paystack
    assert [a.reference for a in PayoutTransfer.select()] == [reference]
    assert [c for c in paystack.calls if c == ("POST", "/transfer")] == [("POST", "/transfer")] * 2
    assert len(events(payout, "payout_sent")) == 1


def test_reconciliation_settles_a_lost_answer_and_resends_what_paystack_never_got(paystack, settings, admin_user):
    client = PaystackClient(settings)
    lost_answer, never_sent = owed_payout(admin_user, settings), owed_payout(admin_user, settings)
    paystack.fail_next("timeout")
    payouts.approve_payouts(client, admin_user, [lost_answer.id])
    deadline = time.monotonic() + 10
    while lost_answer.transfer_reference not in paystack.transfers:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    paystack.fail_next("error")  # this one never reached Paystack
    payouts.approve_payouts(client, admin_user, [never_sent.id])
    assert {reload(p).status for p in (lost_answer, never_sent)} == {P.APPROVED}
    settle_transfer(paystack, lost_answer.transfer_reference, "success")

    counts = payouts.reconcile_transfers(client, after=0)

    assert counts == {"checked": 2, "resent": 1, "settled": 1, "unreachable": 0}
    assert reload(lost_answer).status == P.PAID and reload(never_sent).status == P.IN_TRANSIT
    assert sorted(paystack.transfers) == sorted([lost_answer.transfer_reference, never_sent.transfer_reference])
    assert payouts.reconcile_transfers(client, after=3600)["checked"] == 0  # recent ones are left alone


def test_concurrent_approvals_of_one_payout_make_one_transfer(paystack, settings):
    threads = settings.db_pool_size - 1  # the test's own thread holds one connection
    admins = [AdminFactory() for _ in range(threads)]
    payout = owed_payout(admins[0], settings)
    start = threading.Barrier(threads, timeout=20)

    def approve(admin):
        with database.connection_context():
            start.wait()
            try:
                return payouts.approve_payouts(PaystackClient(settings), admin, [payout.id])[0].status
            except InvalidTransition:  # a loser that finds it already in transit: 409
                return "409"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(approve, admins))

    assert P.IN_TRANSIT in outcomes and set(outcomes) <= {P.IN_TRANSIT, "409"}
    assert list(paystack.transfers) == [payout.transfer_reference]
    assert PayoutTransfer.select().count() == 1 and len(events(payout, "payout_sent")) == 1


@pytest.mark.gen_test
async def test_a_failed_transfer_is_owed_again_under_a_new_reference_and_history_is_kept(
    api, paystack, settings, admin_user
):
    payout = owed_payout(admin_user, settings)
    first_reference = payout.transfer_reference
    payouts.approve_payouts(PaystackClient(settings), admin_user, [payout.id])
    settle_transfer(paystack, first_reference, "failed")

    assert (await post_webhook(api, *transfer_webhook(paystack, first_reference))).status == 200

    failed = reload(payout)
    assert failed.status == P.OWED and failed.transfer_reference != first_reference
    assert first_reference in failed.failure_reason and failed.paid_at is None
    [alert] = events(payout, "payout_failed")
    assert alert.payload["outcome"] == "failed" and alert.payload["failed_reference"] == first_reference

    retried = await api.post("/api/admin/payouts/approve/", {"payout_ids": [payout.id]}, user=admin_user)
    assert retried.data["results"][0]["status"] == P.IN_TRANSIT
    history = await api.get(f"/api/admin/payouts/{payout.id}/transfers/", user=admin_user)
    assert [(t["reference"], t["status"]) for t in history.data["results"]] == [
        (first_reference, P.FAILED),
        (failed.transfer_reference, P.IN_TRANSIT),
    ]
    assert len(paystack.transfers) == 2


@pytest.mark.gen_test
async def test_a_reversed_transfer_returns_a_paid_payout_to_owed(api, paystack, settings, admin_user):
    payout = owed_payout(admin_user, settings)
    reference = payout.transfer_reference
    payouts.approve_payouts(PaystackClient(settings), admin_user, [payout.id])
    settle_transfer(paystack, reference, "success")
    await post_webhook(api, *transfer_webhook(paystack, reference))
    assert reload(payout).status == P.PAID

    settle_transfer(paystack, reference, "reversed")
    raw, signature = transfer_webhook(paystack, reference, "transfer.reversed")
    for _ in range(2):
        assert (await post_webhook(api, raw, signature)).status == 200

    reversed_ = reload(payout)
    assert reversed_.status == P.OWED and reversed_.paid_at is None and reversed_.transfer_reference != reference
    assert PayoutTransfer.get(PayoutTransfer.reference == reference).status == P.REVERSED
    [alert] = events(payout, "payout_failed")
    assert alert.payload["outcome"] == "reversed"
    owed = await api.get("/api/admin/payouts/?status=OWED", user=admin_user)
    assert [p["id"] for p in owed.data["results"]] == [payout.id]


@pytest.mark.gen_test
async def test_approvals_are_checked_whole_before_anything_is_sent(api, paystack, settings, admin_user):
    ready = owed_payout(admin_user, settings)
    no_account = owed_payout(admin_user, settings, account=False)
    paid = owed_payout(admin_user, settings)
    Payout.update(status=P.PAID).where(Payout.id == paid.id).execute()
    before = snapshot()

    assert_error(
        await api.post("/api/admin/payouts/approve/", {"payout_ids": [ready.id, 999999]}, user=admin_user), 404
    )
    assert_error(
        await api.post("/api/admin/payouts/approve/", {"payout_ids": [ready.id, no_account.id]}, user=admin_user),
        409,
        "no_payout_account",
    )
    assert_error(
        await api.post("/api/admin/payouts/approve/", {"payout_ids": [ready.id, paid.id]}, user=admin_user),
        409,
        "invalid_transition",
    )
    assert_error(await api.post("/api/admin/payouts/approve/", {"payout_ids": []}, user=admin_user), 422)

    assert snapshot() == before and not paystack.transfers


@pytest.mark.gen_test
async def test_servicemen_see_only_their_own_payouts(api, paystack, settings, admin_user):
    mine, theirs = owed_payout(admin_user, settings), owed_payout(admin_user, settings)
    me = mine.serviceman

    listed = await api.get("/api/serviceman/payouts/", user=me)

    assert [p["id"] for p in listed.data["results"]] == [mine.id]
    assert listed.data["results"][0]["amount"] == "20000.00"
    assert (await api.get("/api/serviceman/payouts/?status=PAID", user=me)).data["count"] == 0
    assert_error(await api.get("/api/admin/payouts/", user=me), 403)
    assert_error(await api.post("/api/admin/payouts/approve/", {"payout_ids": [theirs.id]}, user=me), 403)
    everyone = await api.get(f"/api/admin/payouts/?serviceman_id={theirs.serviceman_id}", user=admin_user)
    assert [p["id"] for p in everyone.data["results"]] == [theirs.id]
    assert_error(await api.get("/api/admin/payouts/999999/transfers/", user=admin_user), 404)


# --- the ledger's sums -------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_ledger_totals_and_the_platform_margin_match_known_data(api, paystack, settings, admin_user):
    client = PaystackClient(settings)
    a = owed_payout(admin_user, settings, final_cost="23000.00")  # 20000.00 + 3000.00
    b = owed_payout(admin_user, settings, final_cost="22000.00")  # 20000.00 + 2000.00
    c = owed_payout(admin_user, settings, final_cost="11000.00", estimate="10000.00", markup="10.00")  # 10000 + 1000
    d = owed_payout(admin_user, settings, final_cost="8000.00", estimate="8000.00", markup=None)  # 8000 + 0
    payouts.approve_payouts(client, admin_user, [b.id, c.id])  # in transit
    settle_transfer(paystack, c.transfer_reference, "success")
    payouts.process_transfer(dict(paystack.transfers[c.transfer_reference]), "webhook")  # c paid
    payouts.approve_payouts(client, admin_user, [d.id])
    settle_transfer(paystack, d.transfer_reference, "failed")
    payouts.process_transfer(dict(paystack.transfers[d.transfer_reference]), "webhook")  # d owed again

    totals = await api.get("/api/admin/analytics/payouts/", user=admin_user)

    assert totals.status == 200, totals
    assert totals.data == {
        "currency": "NGN",
        "owed": {"count": 2, "amount": "28000.00"},
        "approved": {"count": 0, "amount": "0.00"},
        "in_transit": {"count": 1, "amount": "20000.00"},
        "paid": {"count": 1, "amount": "10000.00"},
        "completed_jobs": 4,
        "agreed_prices": "64000.00",
        "servicemen_share": "58000.00",
        "platform_margin": "6000.00",
        "margin_percentage": "9.38",
    }
    own = await api.get("/api/serviceman/payouts/totals/", user=a.serviceman)
    assert own.data["owed"] == {"count": 1, "amount": "20000.00"} and own.data["completed_jobs"] == 1
