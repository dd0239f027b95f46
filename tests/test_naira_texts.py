"""Money in texts for people reads as the dashboard shows it, `₦22,000.00`; JSON keeps `"22000.00"`.

Given one formatter (models/foundation/naira.py, the same output as the dashboard's `Dash.money`), when a
notification's title and message and its email are rendered, then every amount is written with it
and no text for people says `NGN 22000.00`; the notification's payload (what the API and socket
send) keeps the decimal string.
"""

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from models import Event
from models.foundation.naira import format_naira
from models.foundation.settings import PROJECT_ROOT
from workers.email import render_folder
from workers.notification_types import NOTIFICATION_TYPES, render

from .factories import ServiceRequestFactory

RECEIPT = {
    "payment_id": 7,
    "reference": "SM-7-F-abc",
    "amount": "22000.00",
    "currency": "NGN",
    "payment_type": "FINAL_PAYMENT",
    "purpose": "final payment",
    "paid_at": "2026-12-07T10:00:00+00:00",
}


@pytest.mark.parametrize(
    "value, text",
    [
        ("22000.00", "₦22,000.00"),
        (Decimal("1234567.895"), "₦1,234,567.90"),
        (0, "₦0.00"),
        ("-500.5", "-₦500.50"),
        ("not an amount", "not an amount"),
    ],
)
def test_one_formatter_writes_naira_as_the_dashboard_does(value, text):
    assert format_naira(value) == text


def test_a_receipts_title_message_and_email_write_the_amount_for_people_and_the_payload_keeps_the_decimal():
    request = ServiceRequestFactory(booking_fee=Decimal("2000.00"))
    event = Event.create(
        service_request=request.id,
        type="payment_receipt",
        payload={**RECEIPT, "service_request_id": request.id, "is_emergency": False},
    )

    title, message, _ = render(NOTIFICATION_TYPES["payment_receipt"], event, request)
    notification = SimpleNamespace(message=message, title=title, payload=event.payload)
    subject, text, html = render_folder(
        "payment_receipt",
        {"notification": notification, "user": request.client, "payload": event.payload, "is_emergency": False},
    )

    assert title == f"Receipt: ₦22,000.00 for booking #{request.id}"
    assert "We received ₦22,000.00 for the final payment" in message
    assert "Amount:     ₦22,000.00" in text and "<strong>₦22,000.00</strong>" in html
    assert event.payload["amount"] == "22000.00"


def test_no_text_for_people_prints_a_bare_decimal_after_ngn():
    texts = [kind.title + kind.message for kind in NOTIFICATION_TYPES.values()]
    texts += [path.read_text() for path in Path(PROJECT_ROOT, "templates", "email").rglob("*.*")]
    assert not [text for text in texts if "NGN {" in text or "NGN {{" in text]
