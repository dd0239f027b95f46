"""One table of notification types: which event produces which notification, for whom, saying what.

Later workflow steps add a row here and a template folder in templates/email/<type>/.
"""
from dataclasses import dataclass
from typing import Callable

from models.service_requests import Event, ServiceRequest
from models.users import Role, User


def admins(event, request):
    return [u.id for u in User.select(User.id).where(User.role == Role.ADMIN, User.is_active == True)]  # noqa: E712


def client(event, request):
    return [request.client_id]


def assigned_servicemen(event, request):
    return [i for i in (request.primary_serviceman_id, request.backup_serviceman_id) if i]


def primary_serviceman(event, request):
    return [request.primary_serviceman_id] if request.primary_serviceman_id else []


def everyone_concerned(event, request):
    return client(event, request) + assigned_servicemen(event, request) + admins(event, request)


@dataclass(frozen=True)
class NotificationType:
    name: str
    recipients: Callable[[Event, ServiceRequest], list]
    title: str          # str.format with the context below
    message: str
    notify_actor: bool = True  # False: whoever caused the event is not told about it


NOTIFICATION_TYPES = {t.name: t for t in [
    NotificationType(
        "request_created", client,
        "Booking #{request_id} received",
        "Your {category} booking for {booking_date} is saved. Pay the booking fee of NGN {booking_fee} "
        "to send it to our team."),
    NotificationType(
        "request_cancelled", everyone_concerned,
        "Booking #{request_id} cancelled",
        "The {category} booking for {booking_date} was cancelled by the {by_role}. {reason}",
        notify_actor=False),
    NotificationType(
        "payment_received", admins,
        "Booking #{request_id}: booking fee paid",
        "{client_name} paid the NGN {payload[amount]} booking fee for the {category} job on {booking_date} "
        "at {address}. It is waiting for servicemen to be assigned."),
    NotificationType(
        "payment_confirmed", lambda event, request: admins(event, request) + primary_serviceman(event, request),
        "Booking #{request_id}: final payment confirmed",
        "{client_name} paid the final cost of NGN {payload[amount]} for the {category} job on {booking_date} "
        "at {address}. The job can start once an admin says so."),
    NotificationType(
        "payment_receipt", client,
        "Receipt: NGN {payload[amount]} for booking #{request_id}",
        "We received NGN {payload[amount]} for the {payload[purpose]} of your {category} booking for "
        "{booking_date}. Reference {payload[reference]}, paid {payload[paid_at]}."),
    NotificationType(
        "payment_review", admins,
        "Booking #{request_id}: a payment needs review",
        "Paystack reported {payload[reported_amount_kobo]} kobo in {payload[reported_currency]} for reference "
        "{payload[reference]}, but NGN {payload[amount]} was due for the {payload[purpose]}. The booking did not "
        "move; check the payment in Paystack's dashboard."),
    NotificationType(
        "payment_needs_refund", admins,
        "Booking #{request_id}: a payment to refund",
        "NGN {payload[amount]} ({payload[purpose]}, reference {payload[reference]}) was paid but cannot be used: "
        "{payload[reason]}. It is kept as paid and flagged for a refund."),
    NotificationType(
        "emergency_changed", assigned_servicemen,
        "Booking #{request_id} is {emergency_word}",
        "The {category} job on {booking_date} at {address} is now {emergency_word}."),
]}


def context(event, request):
    """The values titles, messages and email templates may use."""
    payload = event.payload or {}
    return {
        "request_id": request.id,
        "category": request.category.name,
        "booking_date": request.booking_date.isoformat(),
        "booking_fee": f"{request.booking_fee:.2f}",
        "address": request.address,
        "description": request.description,
        "client_name": request.client.full_name,
        "client_phone": request.client.phone,
        "is_emergency": bool(payload.get("is_emergency")),
        "emergency_word": "an EMERGENCY" if payload.get("is_emergency") else "no longer an emergency",
        "by_role": payload.get("by_role", "admin"),
        "reason": payload.get("reason", ""),
        "status": request.status,
        "payload": payload,
    }


def render(kind, event, request):
    """(title, message) for one event; emergencies are highlighted in the title."""
    values = context(event, request)
    title = kind.title.format(**values)
    if values["is_emergency"]:
        title = f"[EMERGENCY] {title}"
    return title, kind.message.format(**values).strip(), values


def recipients(kind, event, request):
    ids = list(dict.fromkeys(kind.recipients(event, request)))  # de-duplicated, order kept
    if not kind.notify_actor and event.actor_id in ids:
        ids.remove(event.actor_id)
    return ids
