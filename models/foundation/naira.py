"""Money as people read it: `₦22,000.00`, the way the dashboard shows it (static/dashboard/app.js
`Dash.money`). Every text written for a person (notification titles and messages, emails, error and
policy messages) formats amounts here; JSON keeps the decimal string ("22000.00")."""

from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

SIGN = "₦"
CENTS = Decimal("0.01")


def format_naira(value: object) -> str:
    """`₦22,000.00` (negative: `-₦500.00`) from a Decimal, number or decimal string; text that is not
    an amount is returned as it is, so a malformed payload never stops a notification."""
    try:
        amount = Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{'-' if amount < 0 else ''}{SIGN}{abs(amount):,.2f}"


class NairaView(Mapping[str, str]):
    """A payload seen through `format_naira`, for str.format templates: `{naira[amount]}`."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> str:
        return format_naira(self._values[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
