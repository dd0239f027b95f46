"""Shared schema pieces: money, pagination, the error shape."""
from marshmallow import Schema, fields, validate


def Money(**kwargs):
    """Naira as a decimal string with two places ("5000.00")."""
    return fields.Decimal(places=2, as_string=True, **kwargs)


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def paginate(query, item_schema, page_args, page_url, transform=None):
    """`{count, next, previous, results}` for a Peewee query and the page asked for;
    `transform` turns one page of rows into the items to dump (batch lookups per page)."""
    page, size = page_args["page"], page_args["page_size"]
    count, items = query.count(), list(query.paginate(page, size))
    if transform is not None:
        items = transform(items)
    return {
        "count": count,
        "next": page_url(page + 1) if page * size < count else None,
        "previous": page_url(page - 1) if page > 1 else None,
        "results": item_schema.dump(items, many=True),
    }


# "fields" is a field name here and the marshmallow module's name, hence from_dict.
ErrorBodySchema = Schema.from_dict({
    "code": fields.String(required=True, metadata={"example": "validation_error"}),
    "message": fields.String(required=True),
    "fields": fields.Dict(keys=fields.String(), values=fields.List(fields.String())),
    "request_id": fields.String(),
}, name="ErrorBody")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)
