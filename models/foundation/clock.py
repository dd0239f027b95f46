"""The platform's notion of now and today (TIME_ZONE), in one place so tests can travel in time."""
from datetime import UTC, date, datetime, tzinfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def platform_today(zone: tzinfo) -> date:
    """Today's date where the marketplace operates (Africa/Lagos by default), not the server's."""
    return utcnow().astimezone(zone).date()
