"""The day-before reminder: the client and the assigned servicemen are told about tomorrow's booking.

Exactly once per request, whatever the timing of the periodic job: the reminder is claimed by a
conditional UPDATE (`WHERE reminder_sent_at IS NULL`) and its event is written in the same
transaction, so of two overlapping runs only one claims each request, and a run that fails after
claiming rolls the claim back with the event.
"""

from datetime import date, timedelta, tzinfo
from typing import Any

from models.foundation.clock import platform_today, utcnow

from ..service_requests import RequestStatus, ServiceRequest
from ..workflow import record_event, unit_of_work

# Servicemen are committed and the booking is neither unpaid, finished nor cancelled.
REMINDED_STATUSES = RequestStatus.ACTIVE_FOR_SERVICEMAN
BATCH = 500


def _due(tomorrow: date) -> tuple[Any, ...]:
    return (
        ServiceRequest.booking_date == tomorrow,
        ServiceRequest.status.in_(REMINDED_STATUSES),
        ServiceRequest.is_deleted == False,
        ServiceRequest.reminder_sent_at.is_null(),
    )


def send_booking_reminders(zone: tzinfo, today: date | None = None) -> dict[str, Any]:
    """Remind every booking due tomorrow (platform date in `zone`) that has not been reminded yet."""
    tomorrow = (today or platform_today(zone)) + timedelta(days=1)
    sent = 0
    while True:
        ids = [
            r.id
            for r in ServiceRequest.select(ServiceRequest.id)
            .where(*_due(tomorrow))
            .order_by(ServiceRequest.id)
            .limit(BATCH)
        ]
        sent += sum(_remind(request_id, tomorrow) for request_id in ids)
        if len(ids) < BATCH:
            return {"booking_date": tomorrow.isoformat(), "sent": sent}


def _remind(request_id: int, tomorrow: date) -> bool:
    """Claim and announce one request's reminder; False when another run (or a change) got there first."""
    with unit_of_work():
        claimed = (
            ServiceRequest.update(reminder_sent_at=utcnow())
            .where(ServiceRequest.id == request_id, *_due(tomorrow))
            .execute()
        )
        if claimed != 1:
            return False
        request = ServiceRequest.get_by_id(request_id)
        record_event(request, "booking_reminder", None, payload={"booking_date": tomorrow.isoformat()})
    return True
