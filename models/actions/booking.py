"""Booking: quotes, creating and editing requests, cancelling (with refunds), soft delete, emergency override.

The emergency rule lives here: a booking less than two days ahead (by the platform's date in
TIME_ZONE) is an emergency automatically, and the client cannot unset that.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import peewee

from models.foundation.clock import platform_today, utcnow
from models.foundation.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from models.foundation.paystack import PaystackClient
from models.foundation.settings import Settings

from ..catalog import Category
from ..db import for_update
from ..money import Payment, PaymentStatus
from ..service_requests import Event, RequestStatus, ServiceRequest
from ..users import ApprovalStatus, Role, ServicemanCategory, ServicemanProfile, User
from ..workflow import record_event, transition, unit_of_work
from . import cancellation, refunds, timeline
from .catalog import availability_warnings

EMERGENCY_WINDOW = timedelta(days=2)


def booking_terms(settings: Settings, booking_date: date, requested_emergency: bool | None = None) -> dict[str, Any]:
    """Emergency flags and fee for a date. `requested_emergency` None means "not said"."""
    today = platform_today(settings.zone)
    if booking_date < today:
        raise ValidationFailed.on("booking_date", f"The booking date is in the past (today is {today}).")
    auto = booking_date < today + EMERGENCY_WINDOW
    if auto and requested_emergency is False:
        raise ValidationFailed.on(
            "is_emergency", "Bookings less than 2 days ahead are emergencies automatically; this cannot be unset."
        )
    is_emergency = auto or bool(requested_emergency)
    fee = settings.emergency_booking_fee if is_emergency else settings.standard_booking_fee
    return {
        "booking_date": booking_date,
        "is_emergency": is_emergency,
        "auto_flagged_emergency": auto,
        "booking_fee": fee,
    }


def _active_category(category_id: int) -> Category:
    category = Category.get_or_none(Category.id == category_id, Category.is_active == True)
    if category is None:
        raise ValidationFailed.on("category_id", "No such active category.")
    return category


def _bookable_serviceman(serviceman_id: int, category_id: int) -> int:
    offers = (
        ServicemanProfile.select()
        .join(User)
        .switch(ServicemanProfile)
        .join(ServicemanCategory)
        .where(
            ServicemanProfile.user == serviceman_id,
            ServicemanProfile.approval_status == ApprovalStatus.APPROVED,
            User.is_active == True,
            ServicemanCategory.category == category_id,
        )
    )
    if not offers.exists():
        raise ValidationFailed.on("serviceman_id", "No approved serviceman with this id offers this category.")
    return serviceman_id


def create_request(
    settings: Settings,
    client: User,
    *,
    category_id: int,
    booking_date: date,
    address: str,
    description: str,
    serviceman_id: int | None = None,
    is_emergency: bool | None = None,
) -> ServiceRequest:
    if client.role != Role.CLIENT:
        raise PermissionDenied("Only clients book services.")
    terms = booking_terms(settings, booking_date, is_emergency)
    with unit_of_work():
        _active_category(category_id)
        if serviceman_id is not None:
            _bookable_serviceman(serviceman_id, category_id)
        request = ServiceRequest.create(
            client=client,
            category=category_id,
            preferred_serviceman=serviceman_id,
            address=address,
            description=description,
            status=RequestStatus.PENDING_PAYMENT,
            **terms,
        )
        record_event(
            request,
            "request_created",
            client,
            to_status=request.status,
            payload={"booking_fee": str(request.booking_fee)},
        )
    # A busy or unavailable preferred serviceman may still be booked; the client is told why it may wait.
    request.warnings = availability_warnings({"preferred": serviceman_id}) if serviceman_id else []
    return request


def visible_requests(user: User) -> peewee.ModelSelect[ServiceRequest]:
    """The requests this user may see: own (client), assigned (serviceman), all (admin)."""
    query = ServiceRequest.visible()
    if user.role == Role.CLIENT:
        return query.where(ServiceRequest.client == user.id)
    if user.role == Role.SERVICEMAN:
        return query.where(
            (ServiceRequest.primary_serviceman == user.id) | (ServiceRequest.backup_serviceman == user.id)
        )
    return query


def list_requests(
    user: User, status: str | None = None, is_emergency: bool | None = None
) -> peewee.ModelSelect[ServiceRequest]:
    query = visible_requests(user)
    if status is not None:
        query = query.where(ServiceRequest.status == status)
    if is_emergency is not None:
        query = query.where(ServiceRequest.is_emergency == is_emergency)
    return query.order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())


def get_request(user: User, request_id: int) -> ServiceRequest:
    """The request if this user may see it; otherwise 404, never revealing that it exists."""
    request = visible_requests(user).where(ServiceRequest.id == request_id).first()
    if request is None:
        raise NotFound("No such service request.")
    return request


def _owned_request(user: User, request_id: int) -> ServiceRequest:
    request = get_request(user, request_id)
    if user.role != Role.ADMIN and request.client_id != user.id:
        raise NotFound("No such service request.")
    return request


def update_request(settings: Settings, user: User, request_id: int, **changes: Any) -> ServiceRequest:
    """The client edits an unpaid request; the emergency flag and fee are recomputed."""
    request = _owned_request(user, request_id)
    if user.role != Role.CLIENT:
        raise PermissionDenied("Only the client edits a booking.")
    requested_date = changes.pop("booking_date", None)
    requested = changes.pop("is_emergency", None)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        _editable(request)
        if requested is None and request.is_emergency and not request.auto_flagged_emergency:
            requested = True  # keep an emergency the client chose, unless they now say otherwise
        terms = booking_terms(settings, requested_date or request.booking_date, requested)
        previous = request.is_emergency
        ServiceRequest.update(updated_at=utcnow(), **terms, **changes).where(ServiceRequest.id == request.id).execute()
        request = ServiceRequest.get_by_id(request.id)
        record_event(request, "request_updated", user, payload={"fields": sorted(set(changes) | set(terms))})
        if request.is_emergency != previous:
            record_event(request, "emergency_changed", user, payload={"previous": previous})
    return request


def _editable(request: ServiceRequest) -> None:
    if request.status == RequestStatus.CANCELLED:
        raise InvalidTransition("This booking is cancelled; it can no longer be edited.")
    if request.status != RequestStatus.PENDING_PAYMENT:
        raise InvalidTransition("A booking can be edited only before its fee is paid.")


def cancel_request(
    settings: Settings,
    user: User,
    request_id: int,
    reason: str = "",
    refund: str = cancellation.POLICY,
    paystack: PaystackClient | None = None,
) -> ServiceRequest:
    """Clients and admins cancel any time before the final payment is made, under the cancellation
    policy (models/actions/cancellation.py); an admin may choose a full refund instead. The rule and
    the amounts are stored on the cancellation event; the refunds are opened in the same transaction
    and asked of Paystack once it commits (without `paystack`, by the reconciliation job)."""
    request = _owned_request(user, request_id)
    if user.role == Role.SERVICEMAN:
        raise PermissionDenied("Servicemen cannot cancel bookings.")
    cancellation.check_choice(user, refund)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        # The paid payments too, so the quote's amounts hold until the refunds are opened. Only paid
        # ones: process_charge holds an unpaid one while it waits for this request, never a paid one.
        list(
            for_update(
                Payment.select(Payment.id)
                .where(Payment.service_request == request.id, Payment.status == PaymentStatus.SUCCESS)
                .order_by(Payment.id)
            )
        )
        quote = cancellation.quote(settings, request, refund)  # 409 once it can no longer be cancelled
        request, _ = transition(
            request,
            RequestStatus.CANCELLED,
            user,
            "request_cancelled",
            payload={"reason": reason, "by_role": user.role, **quote.as_payload()},
        )
        why = f"Booking cancelled by the {user.role}" + (f" ({reason})" if reason else "") + f". {quote.reason}"
        refund_ids = refunds.open_cancellation_refunds(quote, why, user.id)
    if paystack is not None:
        refunds.submit_refunds(paystack, refund_ids)
    return request


def cancellation_quote(
    settings: Settings, user: User, request_id: int, refund: str = cancellation.POLICY
) -> cancellation.Quote:
    """What cancelling now would refund and keep, and why (the owning client or an admin)."""
    request = _owned_request(user, request_id)
    if user.role == Role.SERVICEMAN:
        raise PermissionDenied("Servicemen cannot cancel bookings.")
    cancellation.check_choice(user, refund)
    return cancellation.quote(settings, request, refund)


def delete_request(user: User, request_id: int) -> None:
    """Soft delete: hidden from every list, kept in the database. An unpaid booking is cancelled
    first; a booking in progress must be cancelled or finished before it can be deleted."""
    request = _owned_request(user, request_id)
    if user.role == Role.SERVICEMAN:
        raise PermissionDenied("Servicemen cannot delete bookings.")
    with unit_of_work():
        if request.status == RequestStatus.PENDING_PAYMENT:
            request, _ = transition(
                request,
                RequestStatus.CANCELLED,
                user,
                "request_cancelled",
                payload={"reason": "deleted", "by_role": user.role},
            )
        if request.status not in RequestStatus.FINISHED:
            raise InvalidTransition("Cancel this booking before deleting it.")
        ServiceRequest.update(is_deleted=True, deleted_at=utcnow()).where(ServiceRequest.id == request.id).execute()


def set_emergency(settings: Settings, admin: User, request_id: int, is_emergency: bool) -> ServiceRequest:
    """Admin override of the emergency flag. The fee follows only while it is still unpaid."""
    request = get_request(admin, request_id)
    with unit_of_work():
        request = ServiceRequest.locked(request.id)
        if request.status in RequestStatus.FINISHED:
            raise InvalidTransition("A finished booking's emergency flag cannot change.")
        if request.is_emergency == is_emergency:
            return request
        changes = {"is_emergency": is_emergency, "updated_at": utcnow()}
        if request.status == RequestStatus.PENDING_PAYMENT:
            changes["booking_fee"] = settings.emergency_booking_fee if is_emergency else settings.standard_booking_fee
        ServiceRequest.update(**changes).where(ServiceRequest.id == request.id).execute()
        request = ServiceRequest.get_by_id(request.id)
        record_event(request, "emergency_changed", admin, payload={"previous": not is_emergency})
    return request


def request_events(user: User, request_id: int) -> peewee.ModelSelect[Event]:
    """The request's events that `user` may see; dump each page through timeline.as_seen_by, which
    cuts every payload to what that party may read."""
    request = get_request(user, request_id)
    query = Event.select().where(Event.service_request == request.id)
    hidden = timeline.hidden_event_types(user)
    if hidden:
        query = query.where(Event.type.not_in(hidden))
    return query.order_by(Event.id)
