"""One table of notification types: which event produces which notification, for whom, saying what.

Later workflow steps add a row here and a template folder in templates/email/<type>/.
"""

import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from models.foundation.naira import NairaView, format_naira
from models.service_requests import Event, ServiceRequest
from models.users import Role, User

from .email import one_line

_batch = threading.local()


@contextmanager
def admins_cached():
    """Within a batch of deliveries, look the active admins up once instead of once per event."""
    _batch.admins = None
    try:
        yield
    finally:
        del _batch.admins


def admins(event, request):
    batch = hasattr(_batch, "admins")
    if batch and _batch.admins is not None:
        return list(_batch.admins)
    ids = [u.id for u in User.select(User.id).where(User.role == Role.ADMIN, User.is_active == True)]
    if batch:
        _batch.admins = ids
    return ids


def client(event, request):
    return [request.client_id]


def assigned_servicemen(event, request):
    return [i for i in (request.primary_serviceman_id, request.backup_serviceman_id) if i]


def primary_serviceman(event, request):
    return [request.primary_serviceman_id] if request.primary_serviceman_id else []


def everyone_concerned(event, request):
    return client(event, request) + assigned_servicemen(event, request) + admins(event, request)


def vetted_serviceman(event, request):
    """The serviceman a vetting decision is about (account events carry no request)."""
    return [event.payload["serviceman_id"]]


def other_party(event, request):
    """In a price negotiation: the admins when the client spoke, the client when an admin did."""
    return admins(event, request) if event.actor_id == request.client_id else client(event, request)


@dataclass(frozen=True)
class NotificationType:
    name: str
    recipients: Callable[[Event, ServiceRequest], list]
    title: str  # str.format with the context below
    message: str
    notify_actor: bool = True  # False: whoever caused the event is not told about it


NOTIFICATION_TYPES = {
    t.name: t
    for t in [
        NotificationType(
            "request_created",
            client,
            "Booking #{request_id} received",
            "Your {category} booking for {booking_date} is saved. Pay the booking fee of {booking_fee} "
            "to send it to our team.",
        ),
        NotificationType(
            "request_cancelled",
            everyone_concerned,
            "Booking #{request_id} cancelled",
            "The {category} booking for {booking_date} was cancelled by the {by_role}. {reason}",
            notify_actor=False,
        ),
        NotificationType(
            "payment_received",
            admins,
            "Booking #{request_id}: booking fee paid",
            "{client_name} paid the {naira[amount]} booking fee for the {category} job on {booking_date} "
            "at {address}. It is waiting for servicemen to be assigned.",
        ),
        NotificationType(
            "payment_confirmed",
            lambda event, request: admins(event, request) + primary_serviceman(event, request),
            "Booking #{request_id}: final payment confirmed",
            "{client_name} paid the final cost of {naira[amount]} for the {category} job on {booking_date} "
            "at {address}. The job can start once an admin says so.",
        ),
        NotificationType(
            "payment_receipt",
            client,
            "Receipt: {naira[amount]} for booking #{request_id}",
            "We received {naira[amount]} for the {payload[purpose]} of your {category} booking for "
            "{booking_date}. Reference {payload[reference]}, paid {payload[paid_at]}.",
        ),
        NotificationType(
            "payment_review",
            admins,
            "Booking #{request_id}: a payment needs review",
            "Paystack reported {payload[reported_amount_kobo]} kobo in {payload[reported_currency]} for reference "
            "{payload[reference]}, but {naira[amount]} was due for the {payload[purpose]}. The booking did not "
            "move; check the payment in Paystack's dashboard.",
        ),
        NotificationType(
            "payment_needs_refund",
            admins,
            "Booking #{request_id}: a payment to refund",
            "{naira[amount]} ({payload[purpose]}, reference {payload[reference]}) was paid but cannot be used: "
            "{payload[reason]}. It is kept as paid and flagged for a refund.",
        ),
        NotificationType(
            "refund_started",
            client,
            "Booking #{request_id}: refund of {naira[amount]} started",
            "We have asked Paystack to return {naira[amount]} to the card or account that paid for your "
            "{category} booking for {booking_date}. {payload[reason]} Banks usually take a few working days; we will "
            "tell you when it lands. Reference {payload[reference]}.",
        ),
        NotificationType(
            "refund_processed",
            client,
            "Booking #{request_id}: {naira[amount]} refunded",
            "Paystack has returned {naira[amount]} to the card or account that paid for your {category} booking "
            "for {booking_date}. Reference {payload[reference]}.",
        ),
        NotificationType(
            "refund_failed",
            admins,
            "Booking #{request_id}: a refund of {naira[amount]} failed",
            "Refund #{payload[refund_id]} of {naira[amount]} to {client_name} (payment #{payload[payment_id]}, "
            "reference {payload[reference]}) failed: {payload[failure_reason]} Retry it from the refunds list once "
            "the cause is fixed.",
        ),
        NotificationType(
            "refund_needs_attention",
            admins,
            "Booking #{request_id}: a refund of {naira[amount]} needs the customer's bank account",
            "Paystack could not return {naira[amount]} to the card or account that paid (refund "
            "#{payload[refund_id]}, payment #{payload[payment_id]}, reference {payload[reference]}). Ask "
            "{client_name} for a bank account and retry the refund with it from the refunds list.",
        ),
        NotificationType(
            "emergency_changed",
            assigned_servicemen,
            "Booking #{request_id} is {emergency_word}",
            "The {category} job on {booking_date} at {address} is now {emergency_word}.",
        ),
        NotificationType(
            # Those placed by this event (both at assignment; the newcomer on a reassignment), as recorded.
            "serviceman_assigned",
            lambda event, request: event.payload.get("serviceman_ids") or assigned_servicemen(event, request),
            "Booking #{request_id}: you are assigned to a {category} job on {booking_date}",
            "Client: {client_name}, {client_phone}. Address: {address}. Booking date: {booking_date}. The job: "
            "{description} Primary: {payload[primary_name]}; backup: {payload[backup_name]}.",
        ),
        NotificationType(
            # The admins, asked for a new backup, and the backup the decline made primary.
            "assignment_declined",
            lambda event, request: (
                admins(event, request)
                + ([event.payload["promoted_serviceman_id"]] if event.payload.get("promoted_serviceman_id") else [])
            ),
            "Booking #{request_id}: the {payload[declined_as]} serviceman declined",
            "{payload[serviceman_name]} declined the {category} job on {booking_date} at {address}. Reason: {reason}\n"
            "{payload[outcome]}",
            notify_actor=False,
        ),
        NotificationType(
            "assignment_removed",
            lambda event, request: [event.payload["serviceman_id"]],
            "Booking #{request_id}: you are no longer on this job",
            "An admin removed you from the {category} job on {booking_date} at {address}. You need not go.",
        ),
        NotificationType(
            "estimate_submitted",
            admins,
            "Booking #{request_id}: estimate of {naira[amount]}",
            "{payload[serviceman_name]} inspected the {category} job for {client_name} on {booking_date} and estimates "
            "{naira[amount]}. {payload[notes]} Set the markup to send the final cost to the client.",
        ),
        NotificationType(
            "final_cost_set",
            client,
            "Booking #{request_id}: your final cost is {naira[final_cost]}",
            "The cost of your {category} job on {booking_date} is {naira[final_cost]}: service "
            "{naira[service_cost]} plus platform fee {naira[platform_fee]}. Approve it, or make a counter-offer.",
        ),
        NotificationType(
            "cost_approved",
            admins,
            "Booking #{request_id}: final cost of {naira[final_cost]} approved",
            "{client_name} approved {naira[final_cost]} for the {category} job on {booking_date}. "
            "The final payment is now due.",
        ),
        NotificationType(
            # One type for every move (payload[action]: proposed, countered, accepted, rejected).
            "negotiation_message",
            other_party,
            "Booking #{request_id}: price {payload[action]} ({naira[amount]})",
            "The {by_role} {payload[action]} {naira[amount]} for the {category} job on {booking_date}. "
            "{payload[message]}",
            notify_actor=False,
        ),
        NotificationType(
            # The serviceman asked is the one recorded on the event, whoever is primary by delivery time.
            "serviceman_consulted",
            lambda event, request: [event.payload["serviceman_id"]],
            "Booking #{request_id}: is {naira[offer_amount]} acceptable?",
            "The price on the table for the {category} job on {booking_date} is {naira[offer_amount]} (your "
            "estimate: {naira[estimate_amount]}). {payload[message]} Please reply whether it is acceptable.",
        ),
        NotificationType(
            "consultation_replied",
            admins,
            "Booking #{request_id}: the serviceman finds the offer {payload[verdict]}",
            "{payload[serviceman_name]} says {naira[offer_amount]} for the {category} job on {booking_date} is "
            "{payload[verdict]}. {payload[message]}",
        ),
        NotificationType(
            "work_started",
            primary_serviceman,
            "Booking #{request_id}: go ahead with the job",
            "The final payment for the {category} job on {booking_date} at {address} is confirmed. Please proceed; "
            "the client is {client_name} ({client_phone}).",
        ),
        NotificationType(
            "job_completed",
            admins,
            "Booking #{request_id}: job marked done",
            "{payload[serviceman_name]} marked the {category} job for {client_name} on {booking_date} as done. "
            "Check with the client, then confirm the completion.",
        ),
        NotificationType(
            "job_confirmed",
            client,
            "Booking #{request_id}: job completed",
            "Your {category} job of {booking_date} is confirmed complete. Please rate your serviceman.",
        ),
        NotificationType(
            # The serviceman rated is the one recorded on the event, whoever is primary by delivery time.
            "rating_received",
            lambda event, request: [event.payload["serviceman_id"]],
            "Booking #{request_id}: you were rated {payload[rating]}/5",
            "{client_name} rated the {category} job of {booking_date} {payload[rating]} out of 5. {payload[review]}",
        ),
        NotificationType(
            "booking_reminder",
            lambda event, request: client(event, request) + assigned_servicemen(event, request),
            "Reminder: booking #{request_id} is tomorrow",
            "The {category} booking is tomorrow, {booking_date}, at {address}: {description}",
        ),
        NotificationType(
            # Payouts: the serviceman paid is the one recorded on the payout (failures reach the admins too).
            "payout_sent",
            lambda event, request: [event.payload["serviceman_id"]],
            "Booking #{request_id}: {naira[amount]} is on its way to you",
            "We sent {naira[amount]} for the {category} job of {booking_date} to {payload[account]}. "
            "Transfer reference {payload[reference]}; we will tell you when it lands.",
        ),
        NotificationType(
            "payout_paid",
            lambda event, request: [event.payload["serviceman_id"]],
            "Booking #{request_id}: {naira[amount]} paid into your account",
            "{naira[amount]} for the {category} job of {booking_date} has landed in {payload[account]}. "
            "Transfer reference {payload[reference]}.",
        ),
        NotificationType(
            "payout_failed",
            lambda event, request: [event.payload["serviceman_id"]] + admins(event, request),
            "Booking #{request_id}: the {naira[amount]} payout {payload[outcome]}",
            "The transfer of {naira[amount]} for the {category} job of {booking_date} "
            "(reference {payload[failed_reference]}) {payload[outcome]}: {payload[reason]}. The payout is owed "
            "again and goes out once an admin approves it.",
        ),
        NotificationType(
            "payout_needs_otp",
            admins,
            "Booking #{request_id}: the {naira[amount]} payout waits for an OTP",
            "Paystack holds the transfer of {naira[amount]} (reference {payload[reference]}) until the OTP it "
            "sent to the business's phone is entered. Finalize it from the payouts list with that OTP, or turn off "
            "OTP for transfers in Paystack's dashboard.",
        ),
        # Serviceman vetting: account events, no request (record_account_event).
        NotificationType(
            "serviceman_applied",
            admins,
            "New serviceman application: {payload[serviceman_name]}",
            "{payload[serviceman_name]} ({payload[email]}, {payload[phone]}) applied to work in {payload[categories]} "
            "with {payload[years_of_experience]} years of experience. Review the application to approve or reject it.",
        ),
        NotificationType(
            "serviceman_approved",
            vetted_serviceman,
            "You are approved on Serviceman",
            "Welcome aboard, {payload[serviceman_name]}: your application is approved. Clients can now find and "
            "book you in {payload[categories]}, and our team can assign you jobs.",
        ),
        NotificationType(
            "serviceman_rejected",
            vetted_serviceman,
            "Your Serviceman application was not approved",
            "We could not approve your application. Reason: {reason} If you can put this right, contact our team "
            "and we will look at it again.",
        ),
        NotificationType(
            "serviceman_suspended",
            vetted_serviceman,
            "Your Serviceman account is suspended",
            "Your account is suspended. Reason: {reason} While suspended you are not listed and get no new jobs; "
            "our team will contact you about any job you were assigned.",
        ),
        NotificationType(
            "serviceman_reinstated",
            vetted_serviceman,
            "Your Serviceman account is active again",
            "Your suspension is lifted: clients can find and book you again, and our team can assign you jobs.",
        ),
        NotificationType(
            # One per open job of a serviceman just suspended, on that job's timeline: someone must take it over.
            "assigned_serviceman_suspended",
            admins,
            "Booking #{request_id}: the {payload[assigned_as]} serviceman is suspended",
            "{payload[serviceman_name]}, {payload[assigned_as]} on the {category} job for {client_name} on "
            "{booking_date} at {address} ({status}), was suspended. Reason: {reason} Reassign the job or promote "
            "the backup.",
        ),
    ]
}


def context(event, request):
    """The values titles, messages and email templates may use."""
    payload = event.payload or {}
    if request is None:  # an account event: only what its payload says
        return {
            "is_emergency": False,
            "reason": payload.get("reason", ""),
            "payload": payload,
            "naira": NairaView(payload),
        }
    return {
        "request_id": request.id,
        "category": request.category.name,
        "booking_date": request.booking_date.isoformat(),
        "booking_fee": format_naira(request.booking_fee),
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
        "naira": NairaView(payload),  # {naira[amount]}: a payload amount as people read it (₦22,000.00)
    }


def render(kind, event, request):
    """(title, message) for one event; emergencies are highlighted in the title."""
    values = context(event, request)
    title = one_line(kind.title.format(**values))  # a label and an email subject: never two lines
    if values["is_emergency"]:
        title = f"[EMERGENCY] {title}"
    return title, kind.message.format(**values).strip(), values


def recipients(kind, event, request):
    ids = list(dict.fromkeys(kind.recipients(event, request)))  # de-duplicated, order kept
    if not kind.notify_actor and event.actor_id in ids:
        ids.remove(event.actor_id)
    return ids
