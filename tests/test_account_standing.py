"""What a serviceman that is not APPROVED may do (models/actions/standing.py), through the API.

Given a serviceman with a job in each state its actions start from and a bank account, when an admin
suspends it, then it may sign in again and read its status, jobs, stats, ledger and notifications,
but every action on jobs, money and its profile is 403 `account_suspended` and changes nothing
(Paystack is not even asked); reinstated, it acts again. A serviceman never approved (pending or
rejected) gets 403 `account_not_approved` for jobs and money, and may still edit its application.
"""

import threading
from decimal import Decimal

import pytest

from models import ApprovalStatus, Event, Payout, PayoutAccount, RequestStatus, ServicemanProfile, ServiceRequest, User
from models.actions import accounts, payouts, pricing, vetting
from models.actions.jobs import mark_completed
from models.db import database
from models.foundation.paystack import PaystackClient

from .contract_support import assert_error
from .factories import PASSWORD, CategoryFactory, ServicemanFactory, ServiceRequestFactory
from .paystack_support import (
    ACCOUNT,
    fresh_bank_cache,  # noqa: F401 (autouse fixture)
)

S = RequestStatus
RESOLVE = "/api/banks/resolve/?bank_code=058&account_number=0123456789"
PAYSTACK_PATHS = ("/bank/resolve", "/transferrecipient")


def give_jobs(serviceman, category, admin):
    """One job per state a serviceman's action starts from, the serviceman primary on each."""
    backup = ServicemanFactory(profile__categories=[category])

    def job(status, **prices):
        return ServiceRequestFactory(
            category=category, status=status, primary_serviceman=serviceman, backup_serviceman=backup, **prices
        )

    priced = {
        "estimate_amount": Decimal("20000.00"),
        "markup_percentage": Decimal("10.00"),
        "final_cost": Decimal("22000.00"),
    }
    jobs = {
        "assigned": job(S.ASSIGNED),
        "negotiating": job(S.NEGOTIATING, **priced),
        "in_progress": job(S.IN_PROGRESS, **priced),
    }
    pricing.consult_serviceman(admin, jobs["negotiating"].id, "Would ₦21,000 do?")
    return jobs


# Each serviceman action: (what it does, how it is called).
ACTIONS = {
    "submit an estimate": lambda api, token, jobs: api.post(
        "/api/serviceman/submit-estimate/",
        {"service_request_id": jobs["assigned"].id, "amount": "99999.00", "notes": "New pipes."},
        token=token,
    ),
    "answer a consultation": lambda api, token, jobs: api.post(
        f"/api/serviceman/requests/{jobs['negotiating'].id}/consultation-reply/",
        {"acceptable": True, "message": "Fine."},
        token=token,
    ),
    "mark a job done": lambda api, token, jobs: api.post(
        f"/api/serviceman/requests/{jobs['in_progress'].id}/complete/", {}, token=token
    ),
    "decline a job": lambda api, token, jobs: api.post(
        f"/api/serviceman/requests/{jobs['assigned'].id}/decline/", {"reason": "Too far."}, token=token
    ),
    "replace the bank account": lambda api, token, jobs: api.post(
        "/api/serviceman/payout-account/", {"bank_code": "058", "account_number": "0987654321"}, token=token
    ),
    "look up a bank account": lambda api, token, jobs: api.get(RESOLVE, token=token),
}
PROFILE_CHANGES = {
    "bio": {"bio": "Now also roofing."},
    "availability": {"is_available": False},
    "categories": {"category_ids": "another"},
    "name": {"first_name": "Emeka-Renamed"},
    "phone": {"phone": "+2348099990000"},
}


def state_of(serviceman, jobs):
    """What an action could change: its jobs, their timelines, payouts, the bank account, the profile."""
    return {
        "jobs": [ServiceRequest.select().where(ServiceRequest.id == job.id).dicts().get() for job in jobs.values()],
        "events": Event.select().where(Event.service_request.in_([job.id for job in jobs.values()])).count(),
        "payouts": Payout.select().count(),
        "account": list(PayoutAccount.select().where(PayoutAccount.serviceman == serviceman.id).dicts()),
        "profile": ServicemanProfile.select().where(ServicemanProfile.user == serviceman.id).dicts().get(),
        "user": User.select(User.first_name, User.phone).where(User.id == serviceman.id).dicts().get(),
    }


async def sign_in(api, serviceman):
    response = await api.post("/api/auth/login/", {"email": serviceman.email, "password": PASSWORD})
    assert response.status == 200, response
    return response.data["access"]


async def suspend(api, admin, serviceman):
    response = await api.post(
        f"/api/admin/servicemen/{serviceman.id}/suspend/", {"reason": "Overcharging."}, user=admin
    )
    assert response.status == 200, response


@pytest.fixture
def working(category, admin_user, settings, paystack):
    """An approved serviceman with jobs and a saved bank account."""
    serviceman = ServicemanFactory(profile__categories=[category])
    payouts.set_payout_account(PaystackClient(settings), 3600, serviceman, **ACCOUNT)
    return serviceman, give_jobs(serviceman, category, admin_user)


@pytest.mark.gen_test
@pytest.mark.parametrize("action", ACTIONS)
async def test_a_suspended_serviceman_signs_in_again_but_cannot_act(api, admin_user, paystack, working, action):
    serviceman, jobs = working
    await suspend(api, admin_user, serviceman)
    token = await sign_in(api, serviceman)  # sign-in stays open: to read its status and ledger
    before, calls = state_of(serviceman, jobs), len(paystack.calls)

    response = await ACTIONS[action](api, token, jobs)

    assert assert_error(response, 403, "account_suspended")["message"].startswith("Your account is suspended")
    assert state_of(serviceman, jobs) == before
    assert not [path for _, path in paystack.calls[calls:] if path.endswith(PAYSTACK_PATHS)]


@pytest.mark.gen_test
@pytest.mark.parametrize("change", PROFILE_CHANGES)
async def test_a_suspended_serviceman_cannot_change_its_profile(api, admin_user, working, category, change):
    serviceman, jobs = working
    await suspend(api, admin_user, serviceman)
    token = await sign_in(api, serviceman)
    body = PROFILE_CHANGES[change]
    if change == "categories":
        body = {"category_ids": [category.id, CategoryFactory().id]}
    before = state_of(serviceman, jobs)

    assert_error(await api.patch("/api/auth/me/", body, token=token), 403, "account_suspended")
    assert state_of(serviceman, jobs) == before


@pytest.mark.gen_test
async def test_a_suspended_serviceman_still_reads_its_status_jobs_and_ledger(api, admin_user, working):
    serviceman, jobs = working
    await suspend(api, admin_user, serviceman)
    token = await sign_in(api, serviceman)

    me = await api.get("/api/auth/me/", token=token)
    assert me.status == 200 and me.data["serviceman_profile"]["approval_status"] == ApprovalStatus.SUSPENDED
    listed = await api.get("/api/serviceman/jobs/", token=token)
    assert listed.status == 200 and {job["id"] for job in listed.data["results"]} == {j.id for j in jobs.values()}
    for path in (
        "/api/serviceman/stats/",
        "/api/serviceman/payouts/",
        "/api/serviceman/payouts/totals/",
        "/api/serviceman/payout-account/",
        "/api/notifications/",
        f"/api/requests/{jobs['assigned'].id}/",
    ):
        assert (await api.get(path, token=token)).status == 200, path
    changed = await api.post(
        "/api/auth/change-password/",
        {"current_password": PASSWORD, "new_password": "a-new-Passphrase-2026"},
        token=token,
    )
    assert changed.status == 200, changed  # and it may still secure its account


@pytest.mark.gen_test
async def test_a_reinstated_serviceman_acts_again(api, admin_user, working):
    serviceman, jobs = working
    await suspend(api, admin_user, serviceman)
    assert (await api.post(f"/api/admin/servicemen/{serviceman.id}/reinstate/", {}, user=admin_user)).status == 200
    token = await sign_in(api, serviceman)

    response = await ACTIONS["submit an estimate"](api, token, jobs)

    assert response.status == 200 and response.data["status"] == S.SERVICEMAN_INSPECTED, response


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [ApprovalStatus.PENDING_APPROVAL, ApprovalStatus.REJECTED])
@pytest.mark.parametrize("action", ACTIONS)
async def test_a_serviceman_never_approved_cannot_act_on_jobs_or_money(
    api, admin_user, category, paystack, status, action
):
    # No admin assigns an unapproved serviceman; the rows are made directly to prove the domain refuses
    # whatever way such a job came to be.
    serviceman = ServicemanFactory(profile__categories=[category], profile__approval_status=status)
    jobs = give_jobs(serviceman, category, admin_user)
    token = await sign_in(api, serviceman)
    before, calls = state_of(serviceman, jobs), len(paystack.calls)

    response = await ACTIONS[action](api, token, jobs)

    assert_error(response, 403, "account_not_approved")
    assert state_of(serviceman, jobs) == before
    assert not [path for _, path in paystack.calls[calls:] if path.endswith(PAYSTACK_PATHS)]


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [ApprovalStatus.PENDING_APPROVAL, ApprovalStatus.REJECTED])
async def test_a_serviceman_never_approved_may_edit_its_application(api, category, status):
    serviceman = ServicemanFactory(profile__categories=[category], profile__approval_status=status)
    token = await sign_in(api, serviceman)

    response = await api.patch(
        "/api/auth/me/", {"bio": "Twelve years of plumbing.", "is_available": False}, token=token
    )

    assert response.status == 200 and response.data["serviceman_profile"]["bio"] == "Twelve years of plumbing."


def test_an_action_racing_a_suspension_waits_for_it_and_is_refused(admin_user, category, settings, monkeypatch):
    # The suspension is paused inside its transaction (profile already SUSPENDED, not committed); a
    # "mark done" begun meanwhile must wait for it, then be refused: never commit a payout-bound
    # completion after a suspension that did not see it.
    serviceman = ServicemanFactory(profile__categories=[category])
    job = give_jobs(serviceman, category, admin_user)["in_progress"]
    paused, release = threading.Event(), threading.Event()
    record_decision = vetting.record_decision

    def record_then_pause(*args, **kwargs):
        event = record_decision(*args, **kwargs)
        paused.set()
        assert release.wait(20)
        return event

    monkeypatch.setattr(vetting, "record_decision", record_then_pause)

    def in_thread(fn, *args):
        def run():
            with database.connection_context():
                try:
                    outcomes[fn.__name__] = fn(*args)
                except Exception as exc:  # any failure: the outcome under test
                    outcomes[fn.__name__] = exc

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    outcomes = {}
    suspension = in_thread(accounts.set_approval, None, serviceman.id, "suspend", "Overcharging.", None, admin_user)
    assert paused.wait(20)
    action = in_thread(mark_completed, serviceman, job.id)
    action.join(0.5)
    assert action.is_alive(), f"the action did not wait for the suspension: {outcomes}"
    release.set()
    suspension.join(20)
    action.join(20)

    assert getattr(outcomes["mark_completed"], "code", None) == "account_suspended", outcomes
    assert ServiceRequest.get_by_id(job.id).status == S.IN_PROGRESS
