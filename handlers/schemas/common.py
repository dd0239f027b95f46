"""Shared schema pieces: money, pagination, the error shape.

Every field of a body or response schema carries a realistic `metadata={"example": ...}` (one
booking in Lagos tells the story, with the ids and emails `make run`'s demo data has (models/demo_data.py):
client #2 Ada Obi books plumber #3 Emeka Okafor (category #1, Plumbing; backup #4 Tunde Adebayo), request #1,
so "Try it out" works as it is on a fresh `make run`); Swagger UI builds each operation's example from
them, and tests/test_docs.py fails for a field without one. Dates, times and money without an example of
their own get a generic one from server/openapi.py."""

import re

from marshmallow import Schema, fields, validate
from marshmallow.validate import Range

from handlers.inputs import INT32_MAX, INT32_MIN
from models.foundation import clock

# The deepest page anyone may ask for: far beyond any real list, far below a database's OFFSET limit.
MAX_PAGE = 1_000_000
MAX_MONEY = 1_000_000_000  # naira; the money columns hold 12 digits before the point
# Two weeks ahead of the day the document is built: a booking date that is always bookable, and no emergency.
EXAMPLE_BOOKING_DATE = clock.EXAMPLE_BOOKING_DATE


def Integer(*, validate=None, **kwargs):
    """An integer a client sends: always within the database's integer columns, so an id or count
    out of range is a 422, never a database error. Every loaded integer field uses this."""
    extra = [] if validate is None else list(validate) if isinstance(validate, (list, tuple)) else [validate]
    return fields.Integer(validate=[Range(min=INT32_MIN, max=INT32_MAX), *extra], **kwargs)


class Boolean(fields.Boolean):
    """A boolean a client sends in a JSON body: `true` or `false` only, as the document says
    (marshmallow's own also takes 1, "yes", "on"...). Query strings keep fields.Boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def Id(**kwargs):
    """A row id sent by a client (`category_id`, `serviceman_id`)."""
    return Integer(strict=True, **kwargs)


# What the contract documents for money (server/openapi.py writes each field's pattern into the
# document): ASCII digits, two places. Not Decimal()'s grammar, which also takes "1e3", " 100 ",
# "+5" and any script's digits ("٣٣"): a client must not depend on what the document forbids.
MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
PERCENTAGE_PATTERN = r"^-?[0-9]+(\.[0-9]{1,2})?$"


class DecimalString(fields.Decimal):
    """A decimal sent as a JSON string matching `pattern` whole; dumped as a string with `places`."""

    default_error_messages = {"pattern": "Not a decimal string of the documented form ({example})."}

    def __init__(self, *, pattern, example, **kwargs):
        super().__init__(as_string=True, **kwargs)
        self.pattern, self.example = re.compile(pattern), example

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or self.pattern.fullmatch(value) is None:
            raise self.make_error("pattern", example=self.example)
        return super()._deserialize(value, attr, data, **kwargs)


def Money(**kwargs):
    """Naira as a decimal string with two places ("5000.00"), in and out."""
    return DecimalString(places=2, pattern=MONEY_PATTERN, example='"5000.00"', **kwargs)


def Percentage(**kwargs):
    """A percentage sent as "15", "12.5" or "12.50"; answered with two places."""
    return DecimalString(places=2, pattern=PERCENTAGE_PATTERN, example='"15" or "12.50"', **kwargs)


class PageQuerySchema(Schema):
    page = Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = Integer(load_default=20, validate=validate.Range(min=1, max=100))


def paginate(query, item_schema, page_args, page_url, transform=None):
    """`{count, next, previous, results}` for a Peewee query and the page asked for;
    `transform` turns one page of rows into the items to dump (batch lookups per page).
    A schema made `with_rows` (schemas/rows.py) dumps plain rows of the query's model instead."""
    page, size = page_args["page"], page_args["page_size"]
    rows = getattr(item_schema, "row_dumper", None) if transform is None else None
    items = list(query.paginate(page, size)) if rows is None else rows.fetch(query.paginate(page, size))
    count = _count(query, page, size, len(items))
    if transform is not None:
        items = transform(items)
    return {
        "count": count,
        "next": page_url(page + 1) if page * size < count else None,
        "previous": page_url(page - 1) if page > 1 else None,
        "results": item_schema.dump(items, many=True) if rows is None else rows.dump(items),
    }


def _count(query, page, size, on_page):
    """A page that is not full (other than one past the end) tells the count: most users' lists fit
    on one page, and this saves them the COUNT's round trip (not atomic with the page either way)."""
    if 0 < on_page < size or (on_page == 0 and page == 1):
        return (page - 1) * size + on_page
    return query.count()


# "fields" is a field name here and the marshmallow module's name, hence from_dict.
ErrorBodySchema = Schema.from_dict(
    {
        "code": fields.String(required=True, metadata={"example": "validation_error"}),
        "message": fields.String(required=True, metadata={"example": "Some fields are not valid."}),
        "fields": fields.Dict(
            keys=fields.String(),
            values=fields.List(fields.String()),
            metadata={
                "description": "Per-field messages, `{name: [messages]}`; list items and nested fields have "
                "dotted names.",
                "example": {"category_ids.0": ["Not a valid integer."]},
            },
        ),
        "request_id": fields.String(
            metadata={
                "description": "Only on 500s: quote it when reporting the failure.",
                "example": "3f2c9a7e41b84d0c9e5b2a6d7c1f0e88",
            }
        ),
    },
    name="ErrorBody",
)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


# Said by every serviceman action's documentation (models/actions/standing.py is the rule).
APPROVED_ONLY = (
    " Only an APPROVED serviceman acts: a suspended one gets 403 `account_suspended`, one not approved "
    "yet (or rejected) 403 `account_not_approved`."
)
