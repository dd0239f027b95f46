"""Base model and the portable field types every table uses."""

import json
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import peewee

from models.foundation.clock import utcnow

from .db import database

CENTS = Decimal("0.01")


class UTCDateTimeField(peewee.DateTimeField):
    """Stored as naive UTC (both backends), returned as aware UTC datetimes."""

    def db_value(self, value: Any) -> Any:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if value is not None and getattr(value, "tzinfo", None) is None and not isinstance(value, str):
            value = value.replace(tzinfo=UTC)
        return value


class MoneyField(peewee.DecimalField):
    """Naira with two places; always a Decimal quantized to kobo precision."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("auto_round", True)
        super().__init__(*args, **kwargs)

    def python_value(self, value: Any) -> Decimal | None:
        value = super().python_value(value)
        return None if value is None else value.quantize(CENTS, rounding=ROUND_HALF_UP)


class JSONField(peewee.TextField):
    """JSON stored as text so SQLite and PostgreSQL behave the same."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, default=str, sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    if TYPE_CHECKING:  # peewee adds this primary key itself; declared for the type checker only
        id = peewee.AutoField()

    class Meta:
        database = database
        legacy_table_names = False


class TimestampedModel(BaseModel):
    created_at = UTCDateTimeField(default=utcnow, index=True)
