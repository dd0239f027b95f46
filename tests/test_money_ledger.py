"""The money of a booking adds up, and every figure about it agrees.

Given bookings driven through the domain functions (the fee and final payment through the Paystack
stand-in, which says what it keeps in `fees`; estimates, markups, negotiations up and down,
cancellations with refunds, a goodwill refund after the job, payouts owed, in transit or paid), when
the revenue analytics, the payout ledger and the servicemen's stats are read, then

    client payments - refunds = serviceman shares + held + Paystack fees + platform net

to the kobo, each figure equals the one worked out here from the plan alone, and the three reports
agree with each other. The rule worked out here is the README's: the serviceman gets their estimate
and the platform keeps what the client agreed to pay above it; a price agreed below the estimate is
all the serviceman's.
"""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import models
from models import Payment, PaymentType, Payout, Refund
from models.actions import analytics, assignment, booking, jobs, payments, payouts, pricing, refunds
from models.foundation.clock import platform_today
from models.foundation.paystack import PaystackClient
from server.paystack_standin_transfers import settle_transfer

from .factories import AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory
from .paystack_support import ACCOUNT

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ENDS = ("cancelled_before_assignment", "cancelled_after_pricing", "paid_not_confirmed", "confirmed")
PAYOUT_STATES = ("owed", "in_transit", "paid")

bookings = st.fixed_dictionaries(
    {
        "estimate_kobo": st.integers(min_value=1_000_00, max_value=900_000_00),
        "markup_basis_points": st.integers(min_value=0, max_value=10_000),  # 0% to 100%
        # The client's counter-offer as per-mille of the final cost (below the estimate too), or none.
        "offer_per_mille": st.one_of(st.none(), st.integers(min_value=500, max_value=1_000)),
        "end": st.sampled_from(ENDS),
        "full_refund": st.booleans(),  # an admin cancelling refunds everything; a client, by the policy
        "payout": st.sampled_from(PAYOUT_STATES),
        "goodwill_refund_per_mille": st.one_of(st.none(), st.integers(min_value=1, max_value=1_000)),
        "primary": st.integers(min_value=0, max_value=1),
    }
)


def _empty_tables():
    with models.database.atomic():
        for model in reversed(models.ALL_MODELS):
            model.delete().execute()


class World:
    """One marketplace and what the plan says must have happened to its money."""

    def __init__(self, settings, ledger):
        self.settings, self.ledger, self.paystack = settings, ledger, PaystackClient(settings)
        self.category = CategoryFactory()
        self.admin, self.client = AdminFactory(), ClientFactory()
        self.servicemen = [ServicemanFactory(profile__categories=[self.category]) for _ in range(2)]
        for serviceman in self.servicemen:
            payouts.set_payout_account(self.paystack, 3600, serviceman, **ACCOUNT)
        self.expected = {
            "gross": ZERO,
            "refunds": ZERO,
            "paystack_fees": ZERO,
            "serviceman_shares": ZERO,
            "held": ZERO,
            "markup": ZERO,
        }
        self.earned = {s.id: ZERO for s in self.servicemen}

    def pay(self, request, payment_type):
        payment = payments.initialize_payment(self.settings, self.paystack, self.client, request.id, payment_type)
        data = self.ledger.charge(payment.paystack_reference)
        payments.process_charge(data, payments.PaymentSource.WEBHOOK)
        self.expected["gross"] += payment.amount
        self.expected["paystack_fees"] += Decimal(data["fees"]) / 100
        return payment

    def cancel(self, request, full_refund):
        who, choice = (self.admin, "full_refund") if full_refund else (self.client, "policy")
        quote = booking.cancellation_quote(self.settings, who, request.id, choice)
        booking.cancel_request(self.settings, who, request.id, reason="plans changed", refund=choice)
        self.expected["refunds"] += quote.refund_amount

    def book(self, plan):
        booking_date = platform_today(self.settings.zone) + timedelta(days=10)
        request = booking.create_request(
            self.settings,
            self.client,
            category_id=self.category.id,
            booking_date=booking_date,
            address="3 Broad Street, Lagos",
            description="The kitchen tap drips.",
        )
        self.pay(request, PaymentType.BOOKING_FEE)
        if plan["end"] == "cancelled_before_assignment":
            return self.cancel(request, plan["full_refund"])
        primary, backup = self.servicemen[plan["primary"]], self.servicemen[1 - plan["primary"]]
        assignment.assign_servicemen(
            self.admin, request.id, primary_serviceman_id=primary.id, backup_serviceman_id=backup.id
        )
        estimate = Decimal(plan["estimate_kobo"]) / 100
        pricing.submit_estimate(primary, request.id, estimate)
        request = pricing.set_markup(self.admin, request.id, Decimal(plan["markup_basis_points"]) / 100)
        agreed = request.final_cost
        if plan["offer_per_mille"] is None:
            pricing.approve_cost(self.client, request.id)
        else:
            agreed = max(CENT, (agreed * plan["offer_per_mille"] / 1000).quantize(CENT))
            offer = pricing.propose_price(self.client, request.id, agreed, "Can we meet here?")
            pricing.accept_proposal(self.admin, offer.id)
        if plan["end"] == "cancelled_after_pricing":
            return self.cancel(request, plan["full_refund"])
        final = self.pay(request, PaymentType.FINAL_PAYMENT)
        if plan["end"] == "paid_not_confirmed":
            self.expected["held"] += agreed
            return
        jobs.start_work(self.admin, request.id)
        jobs.mark_completed(primary, request.id)
        jobs.confirm_completion(self.admin, request.id)
        share = min(estimate, agreed)  # the README's rule, worked out independently of the code
        self.expected["serviceman_shares"] += share
        self.expected["markup"] += agreed - share
        self.earned[primary.id] += share
        self.settle_payout(request, plan["payout"])
        if plan["goodwill_refund_per_mille"] is not None:  # the platform bears it, never the serviceman
            amount = max(CENT, (agreed * plan["goodwill_refund_per_mille"] / 1000).quantize(CENT))
            refunds.refund_payment(self.paystack, self.admin, final.id, "Goodwill after a complaint", amount)
            self.expected["refunds"] += amount

    def settle_payout(self, request, state):
        payout = Payout.get(Payout.service_request == request.id)
        if state == "owed":
            return
        payouts.approve_payouts(self.paystack, self.admin, [payout.id])
        if state == "paid":
            reference = Payout.get_by_id(payout.id).transfer_reference
            payouts.process_transfer(settle_transfer(self.ledger, reference, "success"), "webhook")
        assert Payout.get_by_id(payout.id).status == {"in_transit": "IN_TRANSIT", "paid": "PAID"}[state]


def check_the_books(world):
    expected = world.expected
    report = analytics.revenue()
    figures = {part: report[part] for part in expected}
    assert figures == expected
    # Where the clients' money went, to the kobo (in all and in every month).
    for period in (report, *report["by_month"]):
        assert period["gross"] - period["refunds"] == (
            period["serviceman_shares"] + period["held"] + period["paystack_fees"] + period["platform_net"]
        )
    # Each payment's fee, as recorded, is what Paystack said it kept.
    assert (
        sum((p.paystack_fees for p in Payment.select().where(Payment.status == "SUCCESS")), ZERO)
        == expected["paystack_fees"]
    )
    # The payout ledger and the analytics agree; each serviceman's stats agree with their payouts.
    ledger = payouts.payout_totals()
    assert (ledger["servicemen_share"], ledger["platform_margin"]) == (report["serviceman_shares"], report["markup"])
    for serviceman in world.servicemen:
        stats = jobs.serviceman_stats(serviceman, world.settings.zone)
        own = payouts.payout_totals(serviceman.id)
        assert stats["all_time"]["earnings"] == own["servicemen_share"] == world.earned[serviceman.id]
        assert stats["earnings_owed"] == own["owed"]["amount"] + own["approved"]["amount"]
        assert stats["earnings_in_transit"] == own["in_transit"]["amount"]
        assert stats["earnings_paid"] == own["paid"]["amount"]
        assert (
            stats["earnings_owed"] + stats["earnings_in_transit"] + stats["earnings_paid"]
            == stats["all_time"]["earnings"]
        )
    # Nothing refunded more than was paid, and every refund counted is one the plan made.
    assert sum((r.amount for r in Refund.select()), ZERO) == expected["refunds"]


@hypothesis_settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(bookings, min_size=1, max_size=4))
def test_payments_less_refunds_are_shares_held_money_fees_and_the_platforms_net(settings, paystack, plans):
    _empty_tables()
    world = World(settings, paystack)
    for plan in plans:
        world.book(plan)
    check_the_books(world)


def test_the_readme_walk_shows_the_serviceman_one_figure_everywhere(settings, paystack):
    """Estimate 20,000, markup 15% (23,000), negotiated to 22,000: the serviceman sees and is owed
    20,000 in the stats, the ledger and the analytics; the platform keeps 2,000 of the price."""
    world = World(settings, paystack)
    category, client, admin = world.category, world.client, world.admin
    primary, backup = world.servicemen
    request = booking.create_request(
        settings,
        client,
        category_id=category.id,
        booking_date=platform_today(settings.zone) + timedelta(days=10),
        address="3 Broad Street, Lagos",
        description="The kitchen tap drips.",
    )
    world.pay(request, PaymentType.BOOKING_FEE)
    assignment.assign_servicemen(admin, request.id, primary_serviceman_id=primary.id, backup_serviceman_id=backup.id)
    pricing.submit_estimate(primary, request.id, Decimal("20000.00"))
    assert pricing.set_markup(admin, request.id, Decimal("15.00")).final_cost == Decimal("23000.00")
    offer = pricing.propose_price(client, request.id, Decimal("22000.00"))
    pricing.accept_proposal(admin, offer.id)
    world.pay(request, PaymentType.FINAL_PAYMENT)
    jobs.start_work(admin, request.id)
    jobs.mark_completed(primary, request.id)
    jobs.confirm_completion(admin, request.id)

    stats = jobs.serviceman_stats(primary, settings.zone)
    payout = Payout.get(Payout.service_request == request.id)
    report = analytics.revenue()

    assert stats["all_time"]["earnings"] == payout.amount == report["serviceman_shares"] == Decimal("20000.00")
    assert payout.platform_share == report["markup"] == Decimal("2000.00")
    # Paystack kept 1.5% of the 2,000 fee (its NGN 100 is waived under 2,500) and 1.5% + NGN 100 of
    # the 22,000: 30.00 + 430.00. The platform nets the fee and its markup less those: 3,540.00.
    assert report["paystack_fees"] == Decimal("460.00")
    assert report["gross"] == Decimal("24000.00") and report["platform_net"] == Decimal("3540.00")


@pytest.mark.parametrize(
    "fees, stored", [(33_000, Decimal("330.00")), (0, Decimal("0.00")), (None, None), ("330", None), (-1, None)]
)
def test_a_payment_records_what_paystack_says_it_kept(settings, paystack, fees, stored):
    world = World(settings, paystack)
    request = booking.create_request(
        settings,
        world.client,
        category_id=world.category.id,
        booking_date=platform_today(settings.zone) + timedelta(days=10),
        address="3 Broad Street, Lagos",
        description="The kitchen tap drips.",
    )
    payment = payments.initialize_payment(settings, world.paystack, world.client, request.id, PaymentType.BOOKING_FEE)
    data = paystack.charge(payment.paystack_reference)
    payments.process_charge({**data, "fees": fees}, payments.PaymentSource.VERIFY)

    assert Payment.get_by_id(payment.id).paystack_fees == stored


def test_the_stand_in_says_what_paystack_keeps_in_verify_and_charge_success(settings, paystack):
    """Paystack documents `fees` (integer kobo) in `data` of verify and of `charge.success`."""
    world = World(settings, paystack)
    request = booking.create_request(
        settings,
        world.client,
        category_id=world.category.id,
        booking_date=platform_today(settings.zone) + timedelta(days=10),
        address="3 Broad Street, Lagos",
        description="The kitchen tap drips.",
    )
    payment = payments.initialize_payment(settings, world.paystack, world.client, request.id, PaymentType.BOOKING_FEE)
    assert world.paystack.verify(payment.paystack_reference)["fees"] is None  # not paid: nothing kept

    paystack.charge(payment.paystack_reference)
    verified = world.paystack.verify(payment.paystack_reference)
    event = json.loads(paystack.webhook(payment.paystack_reference)[0])

    assert verified["fees"] == event["data"]["fees"] == 3_000  # 1.5% of 2,000.00; the NGN 100 waived under 2,500
    assert type(verified["fees"]) is int
