"""The input boundary's rules, shared by HTTP bodies, query strings and websocket messages.

Every value a client sends passes through here before any schema or query sees it: JSON is parsed
with bounded depth and no non-standard constants, and text must be something PostgreSQL can store
and an email can carry (no NUL, no unpaired surrogate). Messages are ours, never the interpreter's.
"""
import json
import re

from server.errors import MalformedRequest, ValidationFailed

MAX_JSON_DEPTH = 32
# PostgreSQL `integer` columns; any id or count beyond it cannot exist or be stored.
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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
        raise MalformedRequest(
            f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
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
