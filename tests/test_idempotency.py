"""Idempotency-Key on POST/PATCH/DELETE: a retried request never acts twice (issue 24), in both transports."""

import asyncio
import json
from datetime import timedelta

import pytest
import time_machine

from handlers.schemas.service_requests import RequestCreateSchema
from handlers.service_requests import RequestListHandler
from handlers.web import idempotent
from models import Event, IdempotencyKey, Notification, Payment, ServiceRequest
from models.actions import booking, idempotency
from models.foundation.clock import utcnow
from models.foundation.settings import ConfigurationError

from .conftest import make_settings
from .factories import AdminFactory
from .mobile_support import app, booking_body, mode_settings, run_pipeline, transport  # noqa: F401 (fixtures)

KEY = {"Idempotency-Key": "book-7f3c2a"}
pytestmark = pytest.mark.usefixtures("transport")  # every test in both transports


def bookings_of(user):
    return ServiceRequest.select().where(ServiceRequest.client == user.id).count()


@pytest.mark.gen_test(timeout=30)
async def test_a_retry_gets_the_same_answer_marked_replayed_and_books_nothing(
    api, mode_settings, client_user, category
):
    body = booking_body(mode_settings, category)
    first = await api.post("/api/requests/", body, user=client_user, headers=KEY)
    again = await api.post("/api/requests/", body, user=client_user, headers=KEY)

    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    assert (again.status, again.data) == (201, first.data)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert bookings_of(client_user) == 1
    assert Event.select().where(Event.service_request == first.data["id"]).count() == 1
    # the same body with its keys in another order and other spacing is the same request
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    assert (await api.call("POST", "/api/requests", raw=reordered, user=client_user, headers=KEY)).data == first.data


@pytest.mark.gen_test
async def test_keys_are_per_user_and_a_new_key_is_a_new_request(api, settings, client_user, other_client, category):
    body = booking_body(settings, category)
    assert (await api.post("/api/requests/", body, user=client_user, headers=KEY)).status == 201
    assert (await api.post("/api/requests/", body, user=other_client, headers=KEY)).status == 201
    replay = await api.post("/api/requests/", body, user=client_user, headers={"Idempotency-Key": "another"})
    assert "Idempotent-Replayed" not in replay.headers
    assert (bookings_of(client_user), bookings_of(other_client)) == (2, 1)


@pytest.mark.gen_test
async def test_the_same_key_with_another_body_or_path_is_422_and_changes_nothing(api, settings, client_user, category):
    first = await api.post("/api/requests/", booking_body(settings, category), user=client_user, headers=KEY)
    other = await api.post("/api/requests/", booking_body(settings, category, days=9), user=client_user, headers=KEY)
    elsewhere = await api.patch(
        f"/api/requests/{first.data['id']}/", {"address": "2 Awolowo Road"}, user=client_user, headers=KEY
    )

    for response in (other, elsewhere):
        assert (response.status, response.error_code) == (422, "idempotency_key_reused")
    assert bookings_of(client_user) == 1
    assert ServiceRequest.get_by_id(first.data["id"]).address == "14 Admiralty Way, Lekki"


@pytest.mark.gen_test
@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_a_key_that_is_not_1_to_255_printable_ascii_is_422_naming_the_header(
    api, settings, client_user, category, key
):
    response = await api.post(
        "/api/requests/", booking_body(settings, category), user=client_user, headers={"Idempotency-Key": key}
    )
    assert (response.status, response.error_code) == (422, "validation_error")
    assert "Idempotency-Key" in response.data["error"]["fields"]
    assert bookings_of(client_user) == 0


@pytest.mark.gen_test
async def test_a_retry_while_the_first_runs_is_409_with_retry_after(api, settings, client_user, category):
    body = booking_body(settings, category)
    fingerprint = idempotent.fingerprint("POST", "/api/requests/", json.dumps(body).encode())
    claimed = idempotency.claim(client_user.id, KEY["Idempotency-Key"], fingerprint, lease=settings.idempotency_lease)
    assert isinstance(claimed, idempotency.Claim)

    response = await api.post("/api/requests/", body, user=client_user, headers=KEY)

    assert (response.status, response.error_code) == (409, "idempotency_key_in_use")
    assert response.headers["Retry-After"] == "1"
    assert bookings_of(client_user) == 0


@pytest.mark.gen_test
async def test_a_5xx_answer_is_not_stored_the_retry_runs_again(api, settings, client_user, category, monkeypatch):
    real = booking.create_request
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug, this once")
        return real(*args, **kwargs)

    monkeypatch.setattr(booking, "create_request", fails_once)
    body = booking_body(settings, category)
    assert (await api.post("/api/requests/", body, user=client_user, headers=KEY)).status == 500
    assert IdempotencyKey.select().count() == 0
    retry = await api.post("/api/requests/", body, user=client_user, headers=KEY)
    assert retry.status == 201 and "Idempotent-Replayed" not in retry.headers
    assert bookings_of(client_user) == 1


@pytest.mark.gen_test
async def test_a_4xx_answer_is_replayed_as_it_was(api, settings, client_user, category):
    request = await api.post("/api/requests/", booking_body(settings, category), user=client_user)
    approve = f"/api/requests/{request.data['id']}/approve-cost/"
    first = await api.post(approve, user=client_user, headers=KEY)
    again = await api.post(approve, user=client_user, headers=KEY)
    assert (first.status, first.error_code) == (409, "invalid_transition")
    assert (again.status, again.data, again.headers["Idempotent-Replayed"]) == (409, first.data, "true")


@pytest.mark.gen_test
async def test_keys_expire_after_24_hours(api, settings, client_user, category):
    body = booking_body(settings, category, days=9)
    await api.post("/api/requests/", body, user=client_user, headers=KEY)
    with time_machine.travel(utcnow() + timedelta(hours=24, seconds=1)):
        later = await api.post("/api/requests/", body, user=client_user, headers=KEY)
    assert later.status == 201 and "Idempotent-Replayed" not in later.headers
    assert bookings_of(client_user) == 2
    assert IdempotencyKey.select().count() == 1  # the expired row made way for the new one


@pytest.mark.gen_test
async def test_a_request_killed_before_its_commit_frees_the_key_when_its_lease_ends(
    api, settings, client_user, category
):
    """The process running the first request died before committing: only its claim is left."""
    body = booking_body(settings, category)
    fingerprint = idempotent.fingerprint("POST", "/api/requests/", json.dumps(body).encode())
    idempotency.claim(client_user.id, KEY["Idempotency-Key"], fingerprint, lease=timedelta(seconds=2))

    assert (await api.post("/api/requests/", body, user=client_user, headers=KEY)).status == 409
    with time_machine.travel(utcnow() + timedelta(seconds=3)):
        retry = await api.post("/api/requests/", body, user=client_user, headers=KEY)
    assert retry.status == 201 and "Idempotent-Replayed" not in retry.headers
    assert bookings_of(client_user) == 1


@pytest.mark.gen_test
async def test_a_request_killed_between_its_commit_and_its_answer_is_replayed_never_run_again(
    api, settings, client_user, category
):
    """The first request committed its booking (and the key's mark, in the same transaction), then its
    process died before answering: the retry gets the booking as it was committed, and books nothing."""
    body = booking_body(settings, category)
    fingerprint = idempotent.fingerprint("POST", "/api/requests/", json.dumps(body).encode())
    claim = idempotency.claim(client_user.id, KEY["Idempotency-Key"], fingerprint, lease=timedelta(seconds=2))
    committed = idempotent.atomically(
        claim,
        RequestListHandler.post.endpoint,
        booking.create_request,
        settings,
        client_user,
        **RequestCreateSchema().load(body),
    )
    # ...and nothing else: the process is gone. A retry within the lease waits; after it, the replay.
    assert (await api.post("/api/requests/", body, user=client_user, headers=KEY)).status == 409
    with time_machine.travel(utcnow() + timedelta(seconds=3)):
        retry = await api.post("/api/requests/", body, user=client_user, headers=KEY)
    assert (retry.status, retry.data["id"], retry.headers["Idempotent-Replayed"]) == (201, committed.id, "true")
    assert bookings_of(client_user) == 1


@pytest.mark.gen_test(timeout=60)
async def test_twenty_concurrent_retries_book_once_pay_once_and_notify_once(
    api, mode_settings, client_user, category, paystack
):
    admins = [AdminFactory(), AdminFactory()]
    body = booking_body(mode_settings, category)
    answers = await asyncio.gather(
        *[api.post("/api/requests/", body, user=client_user, headers=KEY) for _ in range(20)]
    )
    booked = _one_outcome(answers, 201)
    assert bookings_of(client_user) == 1

    pay_key = {"Idempotency-Key": "pay-booking-fee-1"}
    pay_body = {"service_request_id": booked["id"], "payment_type": "BOOKING_FEE"}
    answers = await asyncio.gather(
        *[api.post("/api/payments/initialize/", pay_body, user=client_user, headers=pay_key) for _ in range(20)]
    )
    checkout = _one_outcome(answers, 200)
    assert Payment.select().where(Payment.service_request == booked["id"]).count() == 1
    assert len(paystack.transactions) == 1

    paystack.charge(checkout["reference"])
    verified = await api.get(f"/api/payments/verify/{checkout['reference']}/", user=client_user)
    assert verified.status == 200 and verified.data["status"] == "SUCCESS"
    await run_pipeline(mode_settings)
    received = {(n.user_id, n.notification_type) for n in Notification.select()}
    assert Notification.select().count() == len(received)  # nobody told anything twice
    assert {(a.id, "payment_received") for a in admins} | {(client_user.id, "payment_receipt")} <= received


@pytest.mark.parametrize("value", ["0.5", "3601", "nan"])
def test_a_lease_shorter_than_a_retry_after_or_longer_than_an_hour_is_refused_at_start_up(value):
    with pytest.raises(ConfigurationError, match="IDEMPOTENCY_LEASE_SECONDS"):
        make_settings(IDEMPOTENCY_LEASE_SECONDS=value)
    assert make_settings(IDEMPOTENCY_LEASE_SECONDS="2").idempotency_lease == timedelta(seconds=2)
    assert make_settings().idempotency_lease == timedelta(seconds=60)


def _one_outcome(answers, status):
    """Each concurrent retry either got the first answer (replayed or not) or 409 in use; exactly one ran."""
    assert {a.status for a in answers} <= {status, 409}, answers
    assert all(a.error_code == "idempotency_key_in_use" for a in answers if a.status == 409)
    bodies = {json.dumps(a.data, sort_keys=True) for a in answers if a.status == status}
    assert len(bodies) == 1
    ran = [a for a in answers if a.status == status and "Idempotent-Replayed" not in a.headers]
    assert len(ran) == 1
    return json.loads(bodies.pop())


def test_the_app_runs_the_transport_under_test(app, transport):
    assert bool(app.settings["config"].redis_url) == (transport == "redis")


@pytest.mark.gen_test
async def test_the_openapi_document_offers_the_key_on_every_signed_in_change(api):
    document = (await api.get("/api/schema/")).data
    for path, item in document["paths"].items():
        for method, op in item.items():
            offered = any(p.get("name") == "Idempotency-Key" and p["in"] == "header" for p in op.get("parameters", ()))
            changes = method in ("post", "patch", "delete") and "security" in op
            token_answer = path == "/api/auth/change-password/"
            assert offered == (changes and not token_answer), (method, path)
            if offered:
                assert "Idempotent-Replayed" in next(iter(op["responses"].values()))["headers"]
                assert "idempotency_key_in_use" in op["responses"]["409"]["description"]


# --- strict query strings (issue 24) ---------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        "/api/notifications/?after_id=5",
        "/api/notifications/unread-count/?x=1",
        "/api/requests/?page=1&sort=id",
        "/api/auth/me/?expand=all",
    ],
)
async def test_an_unknown_query_parameter_is_422_naming_it(api, client_user, path):
    response = await api.get(path, user=client_user)
    unknown = path.rsplit("&", 1)[-1].rsplit("?", 1)[-1].split("=")[0]
    assert (response.status, response.error_code) == (422, "validation_error")
    assert list(response.data["error"]["fields"]) == [unknown]


@pytest.mark.gen_test(timeout=30)
async def test_a_keyed_request_marks_its_key_once_with_the_answer_rendered_from_its_change(
    api, mode_settings, client_user, category, monkeypatch
):
    marks, real = [], idempotency.applied
    monkeypatch.setattr(idempotency, "applied", lambda claim, *answer: marks.append(answer) or real(claim, *answer))
    response = await api.post("/api/requests/", booking_body(mode_settings, category), user=client_user, headers=KEY)
    assert response.status == 201
    [(status, body)] = marks  # one transaction with the booking; rendering the answer is not another
    assert status == 201 and json.loads(body) == response.data
