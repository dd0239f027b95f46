"""The input boundary's rules, shared by HTTP bodies, query strings and websocket messages.

Every value a client sends passes through here before any schema or query sees it: JSON is parsed
with bounded depth and no non-standard constants, and text must be something PostgreSQL can store
and an email can carry (no NUL, no unpaired surrogate). Messages are ours, never the interpreter's.

Text fields are single-line unless their schema says otherwise (MultiLineText): a name, phone, address
or title holding a line break or any other control character is refused, because such text ends up in
email headers, log lines and one-line labels, where a CR/LF splits what follows into something else.
"""

import json
import re

from marshmallow import fields

from models.foundation.errors import MalformedRequest, ValidationFailed

MAX_JSON_DEPTH = 32
# PostgreSQL `integer` columns; any id or count beyond it cannot exist or be stored.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators (line breaks to many readers).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Free text may break lines (LF, or CRLF as some clients send it) and hold tabs; nothing else.
_MULTILINE_CONTROL = re.compile("\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
SINGLE_LINE_ERROR = "Must be a single line without control characters."
MULTI_LINE_ERROR = "Must not contain control characters other than line breaks and tabs."


def _refuse_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(raw):
    """The JSON value in `raw` (bytes or str), or MalformedRequest with a message of our own."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise MalformedRequest("The request body is not valid UTF-8.") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
    except (ValueError, RecursionError):
        # Over-long integers, NaN/Infinity or nesting deep enough to exhaust the parser.
        raise MalformedRequest("The request body is not valid JSON or exceeds the allowed limits.") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise MalformedRequest(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
    return value


def _depth(value):
    """Nesting depth, without recursion (the value may be as deep as the parser allowed)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _walk(value, path=""):
    """(path, text) for every string in a parsed JSON value, object keys included."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                yield child_path, key
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{index}" if where else str(index)) for index, child in enumerate(item))


def unstorable_text_error(text):
    """The reason `text` cannot be accepted, or None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Must not contain the NUL character."
    return "Must not contain unpaired surrogate characters."


def refuse_unstorable_text(value, path=""):
    """422 naming the first field (dotted path) holding text that cannot be stored."""
    for where, text in _walk(value, path):
        reason = unstorable_text_error(text)
        if reason:
            name = _printable(where) or "body"
            raise ValidationFailed(fields={name: [reason]})


class MultiLineText(fields.String):
    """Free text that may span lines (descriptions, messages, reasons, reviews): line breaks and tabs
    are kept (CRLF stored as LF), any other control character is refused at the boundary."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).replace("\r\n", "\n")


class SecretText(fields.String):
    """A password: hashed or compared, never shown or put in a header, so taken byte for byte."""


def control_character_error(field, text):
    """Why `text` may not go into this text field, or None."""
    if isinstance(field, SecretText):
        return None
    if isinstance(field, MultiLineText):
        return MULTI_LINE_ERROR if _MULTILINE_CONTROL.search(text) else None
    return SINGLE_LINE_ERROR if _CONTROL.search(text) else None


def refuse_control_characters(schema, data):
    """422 naming every field of `data` (raw, before `schema` loads it) whose text holds a control
    character its field does not allow. Every text field of every body and query schema passes here
    (handlers/base.py), nested and list items included, so a new field is single-line by default."""
    problems = {}
    _check_object(schema, data, "", problems)
    if problems:
        raise ValidationFailed(fields=problems)


def _check_object(schema, data, prefix, problems):
    if not isinstance(data, dict):
        return  # not an object: the schema's own error says so
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key in data and not field.dump_only:
            _check_value(field, data[key], f"{prefix}{key}", problems)


def _check_value(field, value, path, problems):
    if isinstance(field, fields.Nested):
        items = enumerate(value) if field.many and isinstance(value, list) else [(None, value)]
        for index, item in items:
            _check_object(field.schema, item, path + ("." if index is None else f".{index}."), problems)
    elif isinstance(field, fields.List) and isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(field.inner, item, f"{path}.{index}", problems)
    elif isinstance(field, fields.Dict) and isinstance(value, dict):
        for key, item in value.items():
            if field.key_field is not None:
                _check_value(field.key_field, key, f"{path}.{key}", problems)
            if field.value_field is not None:
                _check_value(field.value_field, item, f"{path}.{key}", problems)
    elif isinstance(field, fields.String) and isinstance(value, str):
        reason = control_character_error(field, value)
        if reason:
            problems[_printable(path)] = [reason]


def _printable(path):
    return _UNSTORABLE.sub("\ufffd", path)[:200]


def flatten_errors(messages, prefix=""):
    """marshmallow's nested messages as the contract's `{name: [messages]}`: list items and
    nested objects become dotted names (`category_ids.0`)."""
    flat = {}
    if isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
        return flat
    if isinstance(messages, str):
        flat[prefix or "_schema"] = [messages]
        return flat
    items = messages.items() if isinstance(messages, dict) else enumerate(messages)
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten_errors(value, name))
    return flat
