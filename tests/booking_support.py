"""Bookings in tests: one made through the API or straight through the domain, one waiting for an
admin or finished by its serviceman, the paths of its steps, and the events it recorded."""

from datetime import timedelta
from decimal import Decimal

from models import Event, RequestStatus, ServiceRequest
from models.actions import booking
from models.foundation.clock import platform_today

from .factories import ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
# Once servicemen are assigned (before the work is paid for), a cancelled booking's fee is kept by default.
AFTER_ASSIGNMENT = [S.ASSIGNED, S.SERVICEMAN_INSPECTED, S.AWAITING_CLIENT_APPROVAL, S.NEGOTIATING, S.AWAITING_PAYMENT]


async def book(api, client, category, days_ahead=5, **extra):
    """`POST /api/requests/` as `client`; the created request's data."""
    body = {
        "category_id": category.id,
        "booking_date": str(platform_today(api.settings.zone) + timedelta(days=days_ahead)),
        "address": "12 Allen Avenue, Ikeja",
        "description": "Kitchen sink leaking.",
        **extra,
    }
    response = await api.post("/api/requests/", body, user=client)
    assert response.status == 201, response
    return response.data


async def assigned_estimated_and_priced(api, admin, request_id, primary, backup, estimate="20000.00", markup="15"):
    """The admin assigns `primary` and `backup`, the primary estimates `estimate`, the admin marks it up
    by `markup` percent, each through the API; the marked-up request's data."""
    team = {"primary_serviceman_id": primary.id, "backup_serviceman_id": backup.id}
    response = await api.post(f"/api/admin/requests/{request_id}/assign/", team, user=admin)
    assert response.status == 200, response
    estimated = {"service_request_id": request_id, "amount": estimate, "notes": "New trap and seals"}
    response = await api.post("/api/serviceman/submit-estimate/", estimated, user=primary)
    assert response.status == 200, response
    response = await api.post(f"/api/admin/requests/{request_id}/markup/", {"markup_percentage": markup}, user=admin)
    assert response.status == 200, response
    return response.data


def create_booking(settings, category, client=None, days_ahead=5):
    """A request booked through the domain (its event committed with it), by `client` or a new client."""
    return booking.create_request(
        settings,
        client or ClientFactory(),
        category_id=category.id,
        booking_date=platform_today(settings.zone) + timedelta(days=days_ahead),
        address="3 Broad Street, Lagos",
        description="Burst pipe in the kitchen",
    )


def awaiting_assignment(category, **kwargs):
    return ServiceRequestFactory(category=category, status=RequestStatus.PENDING_ADMIN_ASSIGNMENT, **kwargs)


def finished_job(final_cost="23000.00", estimate="20000.00", markup="15.00"):
    """A request the serviceman marked done, priced as given (the admin confirms it next)."""
    return ServiceRequestFactory(
        status=RequestStatus.COMPLETED_BY_SERVICEMAN,
        primary_serviceman=ServicemanFactory(),
        backup_serviceman=ServicemanFactory(),
        estimate_amount=Decimal(estimate),
        markup_percentage=None if markup is None else Decimal(markup),
        final_cost=None if final_cost is None else Decimal(final_cost),
    )


def assign_path(request):
    return f"/api/admin/requests/{request.id}/assign/"


def team_body(primary, backup, **extra):
    return {"primary_serviceman_id": primary.id, "backup_serviceman_id": backup.id, **extra}


def cancel_path(request):
    return f"/api/requests/{request.id}/cancel/"


def stored(request):
    """The request as the database has it now."""
    return ServiceRequest.get_by_id(request.id)


def events_of(request, event_type=None):
    """The request's events (of `event_type` only, if given), oldest first."""
    query = Event.select().where(Event.service_request == request.id)
    if event_type:
        query = query.where(Event.type == event_type)
    return list(query.order_by(Event.id))
