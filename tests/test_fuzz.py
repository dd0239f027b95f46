"""Fuzzing the OpenAPI document with schemathesis: bad input never breaks the API.

The app is served for real on a loopback port (a Tornado server on its own thread and event loop),
and every operation of the document it serves at `GET /api/schema/` is fuzzed (one test per
operation and role, so an endpoint added later is fuzzed with no change here): schemathesis sends
the coverage phase's boundary values, then generated requests, valid and invalid, as each of
anonymous, client, serviceman and admin with a real Bearer token. Each test starts from a freshly
seeded database (a category, two approved servicemen in it, an applicant and a suspended serviceman,
a client with a booking under negotiation and a completed, rated and paid job whose payout is owed to
a serviceman with a payout account, an admin, notifications, refresh tokens), and half of the valid ids, emails,
passwords, refresh tokens and booking dates are swapped for seeded ones, so the fuzz reaches real objects rather
than only 404s and 422s (a role an operation refuses, per its `x-roles`, gets only its first few cases: they all
end in the same 401 or 403). A test fails on any 5xx, an undocumented status code or content type, a
body that breaks its documented schema, invalid input accepted, a 204 with a body, or a wrong answer
to an undeclared method. For CI the run is bounded and reproducible (deterministic generation;
FUZZ_MAX_EXAMPLES generated cases per operation and role, default 10, on top of the coverage phase).
To fuzz longer locally, with fresh randomness each run (or FUZZ_SEED=<int>):

    FUZZ_MAX_EXAMPLES=500 FUZZ_SEED=random .venv/bin/python -m pytest --no-cov -x tests/test_fuzz.py

Every failure is reported with a curl command that reproduces it against a running server.
"""

import asyncio
import json
import os
import threading
import zlib
from datetime import timedelta

import pytest
import requests
import schemathesis
import tornado.httpserver
import tornado.netutil
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from models import ApprovalStatus, Event, Notification, Payout, PayoutAccount
from models.actions.accounts import issue_token_pair
from models.foundation.clock import platform_today, utcnow
from models.foundation.tokens import access_token
from models.money import Payment, PaymentStatus, PaymentType, PriceNegotiation, Rating
from models.service_requests import RequestStatus
from server.app import make_app
from server.openapi import build_spec
from server.routes import route_table
from workers import runtime

from .factories import PASSWORD, AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = os.environ.get("FUZZ_SEED", "")
ROLES = ("anonymous", "client", "serviceman", "admin")


def seed(settings):
    """The world each operation's fuzzing starts from; returns the users by role, and for each
    parameter or body field name the seeded values the fuzz may aim at (see `aim_at_seeded_rows`)."""
    category = CategoryFactory()
    client = ClientFactory()
    serviceman, backup = (ServicemanFactory(profile__categories=[category]) for _ in range(2))
    applicant = ServicemanFactory(
        profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
    )
    suspended = ServicemanFactory(
        profile__categories=[category],
        profile__approval_status=ApprovalStatus.SUSPENDED,
        profile__status_reason="No-show twice.",
    )
    admin = AdminFactory()
    booking = ServiceRequestFactory(client=client, category=category, preferred_serviceman=serviceman)
    completed = ServiceRequestFactory(
        client=client,
        category=category,
        primary_serviceman=serviceman,
        status=RequestStatus.COMPLETED,
        booking_date=booking.booking_date - timedelta(days=30),
        estimate_amount="15000.00",
        markup_percentage="10.00",
        final_cost="16500.00",
    )
    Rating.create(service_request=completed, serviceman=serviceman, client=client, rating=4, review="Quick and tidy.")
    paid = Payment.create(
        service_request=completed,
        payer=client,
        payment_type=PaymentType.BOOKING_FEE,
        amount="2000.00",
        paystack_reference=f"fuzz-{completed.id}-fee",
        status=PaymentStatus.SUCCESS,
        paid_at=utcnow(),
    )
    payout = Payout.create(
        serviceman=serviceman,
        service_request=completed,
        amount="15000.00",
        platform_share="1500.00",
        transfer_reference=f"smpo-{completed.id}-fuzz",
    )
    PayoutAccount.create(
        serviceman=serviceman,
        bank_code="058",
        bank_name="Guaranty Trust Bank",
        account_last4="6789",
        account_name="EMEKA OKONKWO",
        recipient_code="RCP_fuzz",
    )
    negotiation = PriceNegotiation.create(
        service_request=booking, proposed_by=client, proposed_amount="1800.00", message="Can you do it for less?"
    )
    event = Event.create(
        type="request_created",
        service_request=booking,
        actor=client,
        to_status=RequestStatus.PENDING_PAYMENT,
        published_at=utcnow(),
        payload={"booking_fee": str(booking.booking_fee), "service_request_id": booking.id, "is_emergency": False},
    )
    users = {"client": client, "serviceman": serviceman, "admin": admin}
    notifications = [
        Notification.create(
            user=user,
            event=event,
            service_request=booking,
            title="New booking",
            notification_type="request_created",
            message="A booking was made.",
            payload={"service_request_id": booking.id, "is_emergency": False},
        )
        for user in users.values()
    ]
    today = platform_today(settings.zone)
    aims = {
        "category_id": [category.id],
        "category_ids": [[category.id]],
        "serviceman_id": [serviceman.id, applicant.id, suspended.id],
        "primary_serviceman_id": [serviceman.id],
        "backup_serviceman_id": [backup.id],
        "user_id": [user.id for user in (client, serviceman, applicant, suspended, admin)],
        "request_id": [booking.id, completed.id],
        "service_request_id": [booking.id, completed.id],
        "notification_id": [n.id for n in notifications],
        "negotiation_id": [negotiation.id],
        "payout_id": [payout.id],
        "payout_ids": [[payout.id]],
        "reference": [paid.paystack_reference],
        "email": [user.email for user in users.values()],
        "password": [PASSWORD],
        "refresh": [issue_token_pair(settings, user)["refresh"] for user in users.values()],
        "booking_date": [str(today + timedelta(days=1)), str(today + timedelta(days=5))],  # emergency, not
    }
    return users, aims


class LiveServer:
    """The app on 127.0.0.1:<free port>, served by a thread with its own event loop."""

    def __init__(self, settings):
        self.settings = settings
        self.ready = threading.Event()
        self.loop = self.stopping = self.error = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="fuzz-server", daemon=True)

    async def _serve(self):
        try:
            self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
            server = tornado.httpserver.HTTPServer(make_app(self.settings, bind_database=False), xheaders=True)
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            self.base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ready.set()
        await self.stopping.wait()
        server.stop()
        await server.close_all_connections()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(30)
        if self.error is not None or not self.ready.is_set():
            raise RuntimeError("the fuzz server did not start") from self.error
        return self

    def __exit__(self, *exc_info):
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(30)
        transport = runtime.transport()
        if hasattr(transport, "shutdown"):
            transport.shutdown()
        runtime.reset()


@pytest.fixture(scope="module")
def live_server(settings, database):
    with LiveServer(settings) as server:
        yield server


def _config():
    deterministic = SEED == ""
    config = {
        "suppress-health-check": ["all"],
        # Each role's Bearer token is sent as is: schemathesis generating (or leaving out) the
        # Authorization header itself would override the role, or be overridden by it.
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": deterministic,
            "database": "none",
            "with-security-parameters": False,
        },
        # Invalid input may also be refused for its size before it is read (413).
        "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 422]}},
        # Examples: the document has none worth replaying; stateful: not run by the pytest integration.
        # Undeclared methods: PUT goes through our own 405 (Tornado knows the method), TRACE through
        # Tornado's; the other methods would only repeat one of the two.
        "phases": {
            "examples": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
            "coverage": {"enabled": True, "unexpected-methods": ["PUT", "TRACE"]},
        },
        "request-timeout": 30,
        # Failure reports print a curl command that reproduces the request: with test data and
        # test tokens only, nothing needs hiding, and a filtered password reproduces nothing.
        "output": {"sanitization": {"enabled": False}},
    }
    if SEED and SEED != "random":
        config["seed"] = int(SEED)
    return schemathesis.Config.from_dict(config)


# What GET /api/schema/ serves (the app builds it from the same route table at start-up; the first
# test below compares the two). schemathesis needs it at collection time to make one test per
# operation; its lazy `from_fixture` loader, which could fetch it from the live server, does not run
# under pytest 9 (it sets `Node._nodeid`, which pytest 9 no longer has).
SERVED = json.loads(json.dumps(build_spec(route_table())))
schema = schemathesis.openapi.from_dict(SERVED, config=_config())


def aim_at_seeded_rows(case, aims):
    """Half of the valid path, query and body values whose name has seeded values (ids, emails and
    the password, refresh tokens, bookable dates) are replaced by one of those, so the fuzz reaches
    real objects and not only 404s and 422s. Which ones is decided by the generated value itself,
    so a run stays reproducible and shrinks. Only components schemathesis generated valid are
    touched, and a valid value is only replaced by another valid one: the case stays what it was."""
    if case.meta is None:
        return
    for location, container in (
        (ParameterLocation.PATH, case.path_parameters),
        (ParameterLocation.QUERY, case.query),
        (ParameterLocation.BODY, case.body),
    ):
        info = case.meta.components.get(location)
        if info is None or info.mode != GenerationMode.POSITIVE or not isinstance(container, dict):
            continue
        for name, value in container.items():
            choices = aims.get(name)
            number = value if type(value) is int else zlib.crc32(repr(value).encode())
            if choices and number % 2 == 0:
                chosen = choices[number // 2 % len(choices)]
                container[name] = str(chosen) if isinstance(value, str) else chosen


@schemathesis.check
def no_content_has_no_body(ctx, response, case):
    """A 204 answers nothing: no body at all."""
    if response.status_code == 204 and response.content:
        raise AssertionError(f"204 No Content with a {len(response.content)}-byte body")


CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    no_content_has_no_body,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
]


# A role the operation refuses (401/403 before anything is read) gets only this many of its cases.
REFUSED_CASES = 5


class World:
    """One role's view of a freshly seeded database (the autouse `db` fixture empties it afterwards)."""

    def __init__(self, settings, role):
        users, self.aims = seed(settings)
        user = users.get(role)
        self.role, self.refused_sent = role, 0
        self.headers = {} if user is None else {"Authorization": f"Bearer {access_token(settings, user)}"}

    def admits(self, operation):
        """Whether the operation's `x-roles` let this role through authentication and the role check."""
        roles = SERVED["paths"][operation.path][operation.method.lower()]["x-roles"]
        return "anyone" in roles or self.role in roles or ("signed_in" in roles and self.role != "anonymous")

    def worth_sending(self, case):
        if self.admits(case.operation):
            return True
        self.refused_sent += 1
        return self.refused_sent <= REFUSED_CASES


@pytest.fixture(params=ROLES)
def world(request, settings, db):
    return World(settings, request.param)


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def test_the_fuzzed_document_is_the_served_one(live_server, http):
    assert http.get(f"{live_server.base_url}/api/schema/").json() == SERVED


@schema.parametrize()
def test_bad_input_never_breaks_the_api(case, live_server, world, http):
    if not world.worth_sending(case):
        return
    aim_at_seeded_rows(case, world.aims)
    case.call_and_validate(base_url=live_server.base_url, session=http, headers=world.headers, checks=CHECKS)
