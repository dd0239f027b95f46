"""Bank account lookups (`GET /api/banks/resolve/`, and saving a payout account, which resolves too):
each spends the platform's Paystack quota and turns an account number into its holder's name.

Given approved servicemen, when one asks past RATE_LIMIT_BANK_LOOKUP, from any address, or several ask
from one address, then the answer is 429 in the contract's shape with Retry-After and Paystack is not
asked; every lookup is logged with who, the bank, the outcome and only the last four digits, never the
whole number nor the name. (Who may look up at all: tests/test_account_standing.py.)
"""

import logging

import pytest

from tests.factories import ServicemanFactory
from tests.paystack_support import fresh_bank_cache  # noqa: F401 (autouse fixture)
from tests.rate_limit_support import api, app, assert_rate_limited, limited_settings, storage  # noqa: F401 (fixtures: memory and Redis)

RESOLVE = "/api/banks/resolve/?bank_code=058&account_number={}"
LIMIT = {"RATE_LIMIT_BANK_LOOKUP": "3/minute", "TRUSTED_PROXIES": "127.0.0.1"}


@pytest.fixture
def limits():
    return LIMIT


def lookup(api, serviceman, number="0123456789", ip="10.0.0.1"):
    return api.get(RESOLVE.format(number), user=serviceman, headers={"X-Forwarded-For": ip})


def resolves(paystack):
    return sum(1 for _, path in paystack.calls if path.endswith("/bank/resolve"))


@pytest.mark.gen_test
async def test_one_serviceman_is_limited_whatever_its_address(api, paystack, category):
    serviceman = ServicemanFactory(profile__categories=[category])
    for number, ip in (("0123456780", "10.0.0.1"), ("0123456781", "10.0.0.2"), ("0123456782", "10.0.0.3")):
        assert (await lookup(api, serviceman, number, ip)).status == 200

    assert_rate_limited(await lookup(api, serviceman, "0123456783", "10.0.0.4"))
    saving = await api.post(
        "/api/serviceman/payout-account/",
        {"bank_code": "058", "account_number": "0123456789"},
        user=serviceman,
        headers={"X-Forwarded-For": "10.0.0.5"},
    )
    assert_rate_limited(saving)  # saving an account resolves it too: the same allowance
    assert resolves(paystack) == 3


@pytest.mark.gen_test
async def test_many_servicemen_from_one_address_are_limited_together(api, paystack, category):
    first, second, third = (ServicemanFactory(profile__categories=[category]) for _ in range(3))
    assert (await lookup(api, first, "0123456780")).status == 200
    assert (await lookup(api, first, "0123456781")).status == 200
    assert (await lookup(api, second, "0123456782")).status == 200

    assert_rate_limited(await lookup(api, third, "0123456783"))
    assert (await lookup(api, third, "0123456783", ip="10.9.9.9")).status == 200  # another address: its own count
    assert resolves(paystack) == 4


@pytest.mark.gen_test
@pytest.mark.parametrize("storage", [""], ids=["memory"])
async def test_every_lookup_is_logged_masked(api, paystack, category, caplog):
    serviceman = ServicemanFactory(profile__categories=[category])
    caplog.set_level(logging.INFO, logger="serviceman.payouts")

    found = await lookup(api, serviceman, "0123456789")
    unknown = await lookup(api, serviceman, "0123450000")  # the stand-in knows nobody at ...0000

    assert found.status == 200 and unknown.status == 422
    lines = [r.getMessage() for r in caplog.records if r.name == "serviceman.payouts"]
    assert lines == [
        f"bank account lookup by user {serviceman.id}: bank 058, account ******6789: resolved",
        f"bank account lookup by user {serviceman.id}: bank 058, account ******0000: not_found",
    ]
    logged = caplog.text
    assert "0123456789" not in logged and found.data["account_name"] not in logged
