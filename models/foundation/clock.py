"""The platform's notion of now and today (TIME_ZONE), in one place so tests can travel in time."""

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

# API documents' example booking date (handlers/schemas, the notification schema of models/actions/
# notifications.py): two weeks ahead of the day they are built, always bookable, and no emergency.
EXAMPLE_BOOKING_DATE = str(datetime.now(ZoneInfo("Africa/Lagos")).date() + timedelta(days=14))


def utcnow() -> datetime:
    return datetime.now(UTC)


def platform_today(zone: tzinfo) -> date:
    """Today's date where the marketplace operates (Africa/Lagos by default), not the server's."""
    return utcnow().astimezone(zone).date()
