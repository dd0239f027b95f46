"""Service categories (plumbing, electrical, ...)."""

from typing import Any

import peewee

from .base import TimestampedModel


def category_name_key(name: str) -> str:
    return name.strip().casefold()


class Category(TimestampedModel):
    name = peewee.CharField(max_length=100, unique=True)
    # The name folded to lower case: names are unique regardless of case, enforced by this index.
    name_key = peewee.CharField(max_length=100, unique=True)
    description = peewee.TextField(default="")
    is_active = peewee.BooleanField(default=True, index=True)

    def save(self, *args: Any, **kwargs: Any) -> int:
        self.name_key = category_name_key(self.name)
        return super().save(*args, **kwargs)
