"""The single door through which a service request changes status, and the event recorder.

`transition()` checks the TRANSITIONS table, applies the change with a conditional UPDATE
(`WHERE id = ? AND status = ?`, so two concurrent actions cannot both win), and writes the
Event row in the same transaction. Events are the timeline and the notification outbox;
they are announced to the pipeline only after the outermost transaction commits.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from models.foundation.clock import utcnow
from models.foundation.errors import InvalidTransition

from .db import database
from .service_requests import Event, ServiceRequest, can_transition
from .users import User

EventHook = Callable[[int], object]

_after_commit_hooks: list[EventHook] = []
_pending = threading.local()


def on_event_committed(hook: EventHook) -> EventHook:
    """Register `hook(event_id)`, called after the event's transaction commits (once per hook)."""
    if hook not in _after_commit_hooks:
        _after_commit_hooks.append(hook)
    return hook


def _pending_ids() -> list[int]:
    if not hasattr(_pending, "ids"):
        _pending.ids = []
    return _pending.ids


@contextmanager
def unit_of_work() -> Iterator[None]:
    """A transaction whose recorded events are announced once the outermost one commits."""
    mark = len(_pending_ids())
    try:
        with database.atomic():
            yield
    except BaseException:
        if database.transaction_depth() == 0:
            _pending_ids().clear()
        else:
            del _pending_ids()[mark:]  # a savepoint rolled back: its events never happened
        raise
    if database.transaction_depth() == 0:
        ids, _pending.ids = _pending_ids(), []
        for event_id in ids:
            for hook in _after_commit_hooks:
                hook(event_id)


def record_event(
    request: ServiceRequest,
    event_type: str,
    actor: User | int | None,
    payload: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> Event:
    """Write an Event row inside the caller's unit of work. Payloads always say which request
    and whether it is an emergency, so every consumer can route and highlight without a query."""
    body = dict(payload or {})
    body.update(service_request_id=request.id, is_emergency=request.is_emergency)
    event = Event.create(
        type=event_type,
        service_request=request.id,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        payload=body,
    )
    _pending_ids().append(event.id)
    return event


def record_account_event(event_type: str, actor: User | int | None, payload: dict[str, Any] | None = None) -> Event:
    """An event about an account rather than a request (serviceman vetting), in the caller's unit of
    work. Its payload still says which request (none) and whether it is an emergency (never)."""
    body = dict(payload or {})
    body.update(service_request_id=None, is_emergency=False)
    event = Event.create(type=event_type, service_request=None, actor=actor, payload=body)
    _pending_ids().append(event.id)
    return event


def transition(
    request: ServiceRequest,
    to_status: str,
    actor: User | int | None,
    event_type: str,
    payload: dict[str, Any] | None = None,
    **changes: Any,
) -> tuple[ServiceRequest, Event]:
    """Move `request` to `to_status` (with field `changes`) or raise 409 invalid_transition."""
    from_status = request.status
    if not can_transition(from_status, to_status):
        raise InvalidTransition(f"A request that is {from_status} cannot move to {to_status}.")
    changes["updated_at"] = utcnow()
    with unit_of_work():
        updated = (
            ServiceRequest.update(status=to_status, **changes)
            .where(ServiceRequest.id == request.id, ServiceRequest.status == from_status)
            .execute()
        )
        if updated != 1:
            raise InvalidTransition("The request changed while this action ran; reload and retry.")
        for name, value in changes.items():
            setattr(request, name, value)
        request.status = to_status
        event = record_event(request, event_type, actor, payload, from_status, to_status)
    return request, event
