"""Service categories (plumbing, electrical, ...)."""
import peewee

from .base import TimestampedModel


class Category(TimestampedModel):
    name = peewee.CharField(max_length=100, unique=True)
    description = peewee.TextField(default="")
    is_active = peewee.BooleanField(default=True, index=True)
