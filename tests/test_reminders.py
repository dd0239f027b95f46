"""The day-before reminder: given bookings on various dates and in various states, when the periodic
job runs (once, twice, or twice at the same moment), then each booking due tomorrow on the platform's
calendar is reminded exactly once, to its client and assigned servicemen, and nothing else is."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from models import Event, Notification, RequestStatus, ServiceRequest
from models.actions.reminders import REMINDED_STATUSES, send_booking_reminders
from workers import periodic
from workers.notification_types import NOTIFICATION_TYPES, recipients

from .factories import AdminFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
# 1 July, 11:30 in Lagos: today is 1 July, tomorrow 2 July.
MORNING = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)
# 1 July, 23:30 in UTC is already 2 July, 00:30 in Lagos: "tomorrow" is 3 July there.
LAGOS_PAST_MIDNIGHT = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
TOMORROW = date(2026, 7, 2)


@pytest.fixture
def morning():
    with time_machine.travel(MORNING, tick=False):
        yield


def booking(booking_date=TOMORROW, status=S.ASSIGNED, **fields):
    """A booking with both servicemen assigned, as the assignment step leaves it."""
    return ServiceRequestFactory(
        booking_date=booking_date,
        status=status,
        primary_serviceman=ServicemanFactory(),
        backup_serviceman=ServicemanFactory(),
        estimate_amount=Decimal("9000.00"),
        **fields,
    )


def reminders_of(request):
    return list(Event.select().where(Event.service_request == request.id, Event.type == "booking_reminder"))


def reminded(requests):
    return [r for r in requests if reminders_of(r)]


# --- which bookings --------------------------------------------------------------------------------------


def test_a_booking_due_tomorrow_is_reminded(settings, morning):
    request = booking()

    counts = send_booking_reminders(settings.zone)

    assert counts == {"booking_date": "2026-07-02", "sent": 1}
    [event] = reminders_of(request)
    assert event.actor_id is None and event.from_status is None
    assert event.payload == {"booking_date": "2026-07-02", "service_request_id": request.id, "is_emergency": False}
    assert ServiceRequest.get_by_id(request.id).reminder_sent_at == MORNING


def test_bookings_on_other_days_are_not_reminded(settings, morning):
    others = [
        booking(booking_date=day) for day in (date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 3), date(2026, 8, 2))
    ]

    assert send_booking_reminders(settings.zone)["sent"] == 0
    assert reminded(others) == []


@pytest.mark.parametrize("status", REMINDED_STATUSES)
def test_every_assigned_or_active_status_is_reminded(settings, morning, status):
    request = booking(status=status)
    send_booking_reminders(settings.zone)
    assert len(reminders_of(request)) == 1


@pytest.mark.parametrize(
    "status", [S.PENDING_PAYMENT, S.PENDING_ADMIN_ASSIGNMENT, S.COMPLETED_BY_SERVICEMAN, S.COMPLETED, S.CANCELLED]
)
def test_unpaid_unassigned_finished_and_cancelled_bookings_are_not_reminded(settings, morning, status):
    request = booking(status=status)
    assert send_booking_reminders(settings.zone)["sent"] == 0
    assert reminders_of(request) == []
    assert ServiceRequest.get_by_id(request.id).reminder_sent_at is None


def test_deleted_bookings_are_not_reminded(settings, morning):
    request = booking(is_deleted=True)
    assert send_booking_reminders(settings.zone)["sent"] == 0
    assert reminders_of(request) == []


def test_tomorrow_is_the_platforms_tomorrow_not_the_servers(settings):
    lagos_tomorrow, utc_tomorrow = booking(booking_date=date(2026, 7, 3)), booking(booking_date=TOMORROW)

    with time_machine.travel(LAGOS_PAST_MIDNIGHT, tick=False):
        counts = send_booking_reminders(settings.zone)

    assert counts["booking_date"] == "2026-07-03"
    assert reminded([lagos_tomorrow, utc_tomorrow]) == [lagos_tomorrow]


# --- exactly once ------------------------------------------------------------------------------------


def test_a_second_run_sends_nothing_again(settings, morning):
    requests = [booking() for _ in range(3)]

    first = send_booking_reminders(settings.zone)
    second = send_booking_reminders(settings.zone)

    assert (first["sent"], second["sent"]) == (3, 0)
    assert all(len(reminders_of(r)) == 1 for r in requests)


def test_a_booking_that_becomes_due_later_is_reminded_on_a_later_run(settings, morning):
    early = booking()
    send_booking_reminders(settings.zone)
    late = booking()  # assigned after the first run, still the day before

    assert send_booking_reminders(settings.zone)["sent"] == 1
    assert len(reminders_of(early)) == 1 and len(reminders_of(late)) == 1


def test_concurrent_runs_remind_each_booking_once(settings, morning):
    requests = [booking() for _ in range(12)]
    runs = settings.db_pool_size - 1  # the test's own thread holds one connection
    start = threading.Barrier(runs, timeout=20)

    def run(_):
        from models.db import database

        with database.connection_context():
            start.wait()
            return send_booking_reminders(settings.zone)["sent"]

    with ThreadPoolExecutor(runs) as pool:
        sent = list(pool.map(run, range(runs)))

    assert sum(sent) == 12, sent
    assert [len(reminders_of(r)) for r in requests] == [1] * 12


def test_the_reminder_goes_to_the_client_and_both_servicemen(settings, morning):
    request = booking()
    AdminFactory()
    kind = NOTIFICATION_TYPES["booking_reminder"]

    send_booking_reminders(settings.zone)

    [event] = reminders_of(request)

    assert recipients(kind, event, request) == [
        request.client_id,
        request.primary_serviceman_id,
        request.backup_serviceman_id,
    ]


def test_the_periodic_job_is_scheduled_every_15_minutes():
    assert (periodic.send_booking_reminders, 15 * 60) in periodic.SCHEDULE


# --- through the real pipeline ----------------------------------------------------------------------------


def test_the_periodic_job_notifies_the_client_and_servicemen_once_by_dashboard_and_email(mail_pipeline, mailbox):
    settings, pipeline = mail_pipeline
    admin = AdminFactory()
    request = booking(is_emergency=True)
    later = booking(booking_date=date(2026, 7, 5))

    for _ in range(2):
        with time_machine.travel(MORNING, tick=False):
            periodic.send_booking_reminders()
        pipeline.run()

    people = (request.client, request.primary_serviceman, request.backup_serviceman)
    for user in people:
        [note] = Notification.select().where(Notification.user == user.id)
        assert (note.notification_type, note.service_request_id, note.sent_to_email) == (
            "booking_reminder",
            request.id,
            True,
        )
        assert note.title.startswith("[EMERGENCY] Reminder: booking") and "2026-07-02" in note.message
        assert request.address in note.message
    assert not Notification.select().where(Notification.user == admin.id).exists()
    assert not Notification.select().where(Notification.service_request == later.id).exists()
    assert sorted(a for m in mailbox.messages for a in m.rcpt_tos) == sorted(u.email for u in people)
