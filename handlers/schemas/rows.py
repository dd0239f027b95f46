"""The hot lists dumped from plain rows: the same JSON as the schema's dump, without its machinery.

On a page of 20 bookings, building 20 model instances and walking marshmallow's per-field
`serialize` -> `get_value` -> `getattr` chain was over half of the list's Python CPU (cProfile,
bench/README.md). The schema stays the contract (OpenAPI, docs, every other response); `RowDumper`
reads its fields once, selects exactly the model columns they read, and turns each value the
database returns into JSON with the column's own `python_value` and then the field's own
`_serialize`, both skipped only where they are the identity (an int in an integer column dumped by
an Integer, a str in a text column by a String, a bool by a Boolean, None anywhere). Anything it
cannot reproduce exactly (method fields, nested schemas, dump hooks, an attribute that is not a
column) fails at import.
"""

import peewee
from marshmallow import fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from .common import DecimalString

# Field classes whose `_serialize` returns a value of this type unchanged (and None as None).
_IDENTITY = {fields.Integer: int, fields.String: str, fields.Boolean: bool}
# Column classes whose `python_value` returns a value of that same type unchanged.
_PLAIN_COLUMNS = {
    int: (peewee.AutoField, peewee.IntegerField, peewee.BigIntegerField),
    str: (peewee.CharField, peewee.TextField),
    bool: (peewee.BooleanField,),
}
# Field classes whose `_serialize` depends on the value alone (not on the object it came from).
_VALUE_ONLY = (
    fields.Integer,
    fields.String,
    fields.Boolean,
    fields.Decimal,
    DecimalString,
    fields.DateTime,
    fields.Date,
    fields.Dict,
)


def _converter(name, field, column):
    """`(kind, convert)`: a value of type `kind` (None for no such type) is dumped as it is; any
    other non-None value goes through the column's python_value and the field's _serialize."""
    serialize, to_python = field._serialize, column.python_value
    stored = column.rel_field if isinstance(column, peewee.ForeignKeyField) else column
    kind = _IDENTITY.get(type(field))
    if kind is not None and (getattr(field, "as_string", False) or type(stored) not in _PLAIN_COLUMNS[kind]):
        kind = None
    return kind, lambda value: serialize(to_python(value), name, None)


def _column(model, attribute):
    """The model field a schema attribute reads: a column, or a foreign key's `<name>_id`."""
    field = model._meta.fields.get(attribute)
    if field is None:
        field = next((f for f in model._meta.refs if f.object_id_name == attribute), None)
    if field is None:
        raise TypeError(f"{model.__name__} has no column behind the schema attribute {attribute!r}")
    return field


class RowDumper:
    def __init__(self, schema, model):
        if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]:
            raise TypeError(f"{type(schema).__name__} has dump hooks; dump its rows with the schema")
        self.model = model
        self.keys, self.columns, converters = [], [], []
        for name, field in schema.dump_fields.items():
            if type(field) not in _VALUE_ONLY:
                raise TypeError(f"{type(schema).__name__}.{name}: {type(field).__name__} is not supported here")
            column = _column(model, field.attribute or name)
            self.keys.append(field.data_key or name)
            self.columns.append(column)
            converters.append(_converter(name, field, column))
        self._plain = [(i, kind, convert) for i, (kind, convert) in enumerate(converters) if kind is not None]
        self._converted = [(i, convert) for i, (kind, convert) in enumerate(converters) if kind is None]

    def select(self, query):
        """The query narrowed to the columns the schema reads, in the schema's order."""
        if query.model is not self.model:
            raise TypeError(f"a {self.model.__name__} row dumper was given a {query.model.__name__} query")
        return query.select(*self.columns)

    def fetch(self, query):
        """The rows as the database driver returns them: `dump` converts each value once."""
        return self.model._meta.database.execute(self.select(query)).fetchall()

    def dump(self, rows):
        # The loops are inlined: a call per value was most of the cost of a page.
        keys, plain, converted = self.keys, self._plain, self._converted
        items = []
        for row in rows:
            values = list(row)
            for i, kind, convert in plain:
                value = values[i]
                if value is not None and type(value) is not kind:
                    values[i] = convert(value)
            for i, convert in converted:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            items.append(dict(zip(keys, values, strict=True)))
        return items


def with_rows(schema, model):
    """`schema` (an instance), able to dump pages of `model` rows without instances (see paginate)."""
    schema.row_dumper = RowDumper(schema, model)
    return schema
