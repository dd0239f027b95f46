"""The request state machine at the domain level (no HTTP): `transition()` allows exactly the moves the
API contract lists, refuses every other one without writing anything, loses cleanly to a concurrent
change, and events are announced to after-commit hooks only once their transaction has committed."""

import itertools

import pytest

from models import Event, RequestStatus, ServiceRequest, workflow
from models.foundation.errors import InvalidTransition
from models.workflow import on_event_committed, record_event, transition, unit_of_work

from .factories import AdminFactory, ServicemanFactory, ServiceRequestFactory

# The contract's table (API.md, "Request statuses"), written out here independently of the code.
STATUSES = [
    "PENDING_PAYMENT",
    "PENDING_ADMIN_ASSIGNMENT",
    "ASSIGNED",
    "SERVICEMAN_INSPECTED",
    "AWAITING_CLIENT_APPROVAL",
    "NEGOTIATING",
    "AWAITING_PAYMENT",
    "PAYMENT_CONFIRMED",
    "IN_PROGRESS",
    "COMPLETED_BY_SERVICEMAN",
    "COMPLETED",
    "CANCELLED",
]
ALLOWED = {
    ("PENDING_PAYMENT", "PENDING_ADMIN_ASSIGNMENT"),  # booking fee paid
    ("PENDING_ADMIN_ASSIGNMENT", "ASSIGNED"),  # admin assigns primary + backup
    ("ASSIGNED", "SERVICEMAN_INSPECTED"),  # estimate submitted
    ("SERVICEMAN_INSPECTED", "AWAITING_CLIENT_APPROVAL"),  # admin sets markup
    ("AWAITING_CLIENT_APPROVAL", "NEGOTIATING"),  # client counter-offers
    ("NEGOTIATING", "NEGOTIATING"),  # counter / ask serviceman / reject
    ("AWAITING_CLIENT_APPROVAL", "AWAITING_PAYMENT"),  # client approves the cost
    ("NEGOTIATING", "AWAITING_PAYMENT"),  # a proposal is accepted
    ("AWAITING_PAYMENT", "PAYMENT_CONFIRMED"),  # final payment verified
    ("PAYMENT_CONFIRMED", "IN_PROGRESS"),  # admin says proceed
    ("IN_PROGRESS", "COMPLETED_BY_SERVICEMAN"),  # serviceman marks done
    ("COMPLETED_BY_SERVICEMAN", "COMPLETED"),  # admin confirms with client
    # any state before PAYMENT_CONFIRMED -> CANCELLED
    ("PENDING_PAYMENT", "CANCELLED"),
    ("PENDING_ADMIN_ASSIGNMENT", "CANCELLED"),
    ("ASSIGNED", "CANCELLED"),
    ("SERVICEMAN_INSPECTED", "CANCELLED"),
    ("AWAITING_CLIENT_APPROVAL", "CANCELLED"),
    ("NEGOTIATING", "CANCELLED"),
    ("AWAITING_PAYMENT", "CANCELLED"),
}
ALL_PAIRS = list(itertools.product(STATUSES, STATUSES))


def test_the_code_knows_exactly_the_contracts_statuses():
    assert list(RequestStatus.ALL) == STATUSES


def test_the_expected_table_is_what_the_contract_says():
    """Guards the table above against a typo: 12 forward moves and 7 ways to cancel."""
    assert len(ALLOWED) == 19
    assert all(a in STATUSES and b in STATUSES for a, b in ALLOWED)
    assert not [pair for pair in ALLOWED if pair[0] in ("COMPLETED", "CANCELLED")]


@pytest.fixture
def actor():
    return AdminFactory()


@pytest.mark.parametrize("from_status, to_status", [p for p in ALL_PAIRS if p in ALLOWED])
def test_allowed_transition_moves_and_records_one_event(actor, from_status, to_status):
    request = ServiceRequestFactory(status=from_status)
    before = ServiceRequest.get_by_id(request.id).updated_at

    returned, event = transition(request, to_status, actor, "test_moved", payload={"note": "x"})

    assert returned is request and request.status == to_status
    stored = ServiceRequest.get_by_id(request.id)
    assert stored.status == to_status
    assert stored.updated_at >= before
    [written] = Event.select().where(Event.service_request == request.id)
    assert written.id == event.id
    assert (written.type, written.actor_id, written.from_status, written.to_status) == (
        "test_moved",
        actor.id,
        from_status,
        to_status,
    )
    assert written.payload == {"note": "x", "service_request_id": request.id, "is_emergency": False}


@pytest.mark.parametrize("from_status, to_status", [p for p in ALL_PAIRS if p not in ALLOWED])
def test_every_other_transition_is_refused_and_changes_nothing(actor, from_status, to_status):
    request = ServiceRequestFactory(status=from_status)
    before = ServiceRequest.select().where(ServiceRequest.id == request.id).dicts().get()

    with pytest.raises(InvalidTransition) as refused:
        transition(request, to_status, actor, "test_moved", estimate_notes="should not be written")

    assert refused.value.status == 409
    assert refused.value.code == "invalid_transition"
    assert from_status in refused.value.message and to_status in refused.value.message
    assert request.status == from_status
    assert ServiceRequest.select().where(ServiceRequest.id == request.id).dicts().get() == before
    assert Event.select().count() == 0


def test_pairs_cover_every_status_combination():
    assert len(ALL_PAIRS) == 144
    assert len([p for p in ALL_PAIRS if p in ALLOWED]) + len([p for p in ALL_PAIRS if p not in ALLOWED]) == 144


def test_transition_applies_field_changes_with_the_status(actor):
    primary, backup = ServicemanFactory(), ServicemanFactory()
    request = ServiceRequestFactory(status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)

    transition(
        request,
        RequestStatus.ASSIGNED,
        actor,
        "serviceman_assigned",
        primary_serviceman=primary.id,
        backup_serviceman=backup.id,
    )

    stored = ServiceRequest.get_by_id(request.id)
    assert (stored.status, stored.primary_serviceman_id, stored.backup_serviceman_id) == (
        RequestStatus.ASSIGNED,
        primary.id,
        backup.id,
    )


def test_event_payload_carries_the_current_emergency_flag(actor):
    request = ServiceRequestFactory(status=RequestStatus.PENDING_ADMIN_ASSIGNMENT, is_emergency=True)

    _, event = transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")

    assert Event.get_by_id(event.id).payload["is_emergency"] is True


# --- a stale object loses -------------------------------------------------------------------------------


def test_stale_object_is_refused_without_an_event(actor):
    request = ServiceRequestFactory(status=RequestStatus.PENDING_PAYMENT)
    stale = ServiceRequest.get_by_id(request.id)
    transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")  # someone else, meanwhile

    with pytest.raises(InvalidTransition) as refused:
        # PENDING_PAYMENT -> PENDING_ADMIN_ASSIGNMENT is allowed by the table, but the row moved on.
        transition(stale, RequestStatus.PENDING_ADMIN_ASSIGNMENT, actor, "payment_received")

    assert refused.value.status == 409 and refused.value.code == "invalid_transition"
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.CANCELLED
    assert stale.status == RequestStatus.PENDING_PAYMENT
    assert [e.type for e in Event.select()] == ["request_cancelled"]


def test_stale_object_with_the_same_target_is_refused_too(actor):
    """Two admins cancel at once from their own copies: only one event, one move."""
    first = ServiceRequestFactory(status=RequestStatus.ASSIGNED)
    second = ServiceRequest.get_by_id(first.id)

    transition(first, RequestStatus.CANCELLED, actor, "request_cancelled")
    with pytest.raises(InvalidTransition):
        transition(second, RequestStatus.CANCELLED, actor, "request_cancelled")

    assert Event.select().count() == 1


def test_stale_object_changes_no_other_field(actor):
    serviceman = ServicemanFactory()
    request = ServiceRequestFactory(status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)
    stale = ServiceRequest.get_by_id(request.id)
    transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")
    before = ServiceRequest.select().where(ServiceRequest.id == request.id).dicts().get()

    with pytest.raises(InvalidTransition):
        transition(stale, RequestStatus.ASSIGNED, actor, "serviceman_assigned", primary_serviceman=serviceman.id)

    assert ServiceRequest.select().where(ServiceRequest.id == request.id).dicts().get() == before
    assert stale.primary_serviceman_id is None


# --- after-commit announcements -------------------------------------------------------------------------


@pytest.fixture
def announced():
    """Event ids announced to an after-commit hook; the hook is removed afterwards."""
    seen = []

    def hook(event_id):
        seen.append(event_id)

    on_event_committed(hook)
    try:
        yield seen
    finally:
        workflow._after_commit_hooks.remove(hook)


def test_events_are_announced_only_after_the_commit(actor, announced):
    request = ServiceRequestFactory()

    with unit_of_work():
        first = record_event(request, "note_one", actor)
        second = record_event(request, "note_two", actor)
        assert announced == []  # still inside the transaction

    assert announced == [first.id, second.id]


def test_a_transition_alone_is_announced_after_its_own_commit(actor, announced):
    request = ServiceRequestFactory()

    _, event = transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")

    assert announced == [event.id]


def test_a_nested_transition_waits_for_the_outermost_commit(actor, announced):
    request = ServiceRequestFactory()

    with unit_of_work():
        _, event = transition(request, RequestStatus.PENDING_ADMIN_ASSIGNMENT, actor, "payment_received")
        assert announced == []
        extra = record_event(request, "note", actor)
        assert announced == []

    assert announced == [event.id, extra.id]


def test_nothing_is_announced_when_the_transaction_rolls_back(actor, announced):
    request = ServiceRequestFactory()

    with pytest.raises(RuntimeError):
        with unit_of_work():
            transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")
            record_event(request, "note", actor)
            raise RuntimeError("boom")

    assert announced == []
    assert Event.select().count() == 0
    assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_PAYMENT


def test_a_rolled_back_transaction_leaves_nothing_for_the_next_commit(actor, announced):
    request = ServiceRequestFactory()
    with pytest.raises(RuntimeError):
        with unit_of_work():
            record_event(request, "lost", actor)
            raise RuntimeError("boom")

    with unit_of_work():
        kept = record_event(request, "kept", actor)

    assert announced == [kept.id]


def test_a_rolled_back_inner_unit_is_not_announced_when_the_outer_commits(actor, announced):
    request = ServiceRequestFactory()

    with unit_of_work():
        before = record_event(request, "before", actor)
        try:
            with unit_of_work():
                record_event(request, "lost", actor)
                raise RuntimeError("inner failure, handled by the caller")
        except RuntimeError:
            pass
        after = record_event(request, "after", actor)

    assert [e.type for e in Event.select().order_by(Event.id)] == ["before", "after"]
    assert announced == [before.id, after.id]


def test_a_refused_transition_inside_a_unit_announces_nothing(actor, announced):
    request = ServiceRequestFactory(status=RequestStatus.COMPLETED)

    with pytest.raises(InvalidTransition):
        with unit_of_work():
            transition(request, RequestStatus.CANCELLED, actor, "request_cancelled")

    assert announced == []
    assert Event.select().count() == 0


def test_a_hook_is_registered_once(actor, announced):
    hook = workflow._after_commit_hooks[-1]
    on_event_committed(hook)  # registering again changes nothing
    request = ServiceRequestFactory()

    with unit_of_work():
        event = record_event(request, "note", actor)

    assert announced == [event.id]
    assert workflow._after_commit_hooks.count(hook) == 1
