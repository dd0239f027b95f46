"""The OpenAPI 3 document, built from the route table and each method's @endpoint declaration,
with the same marshmallow schemas that parse and render the bodies.

Examples: every schema field carries its own (`metadata={"example": ...}`), which apispec writes on
the property and Swagger UI composes into each body's example; dates, times, money and constants
without one get a generic example here, and so do pagination and errors (one per status, from the
error classes themselves; a 422's names a field of the operation's own body or query)."""

import re
from decimal import Decimal

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, ValidationError, fields

from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN
from handlers.inputs import flatten_errors
from handlers.schemas.common import EXAMPLE_BOOKING_DATE, ErrorSchema
from handlers.web import idempotent
from models.actions.sync import CursorExpired
from models.foundation import errors

ERROR_TEXT = {
    400: "Malformed request (body not a JSON object, undecodable text)",
    401: "Not signed in, or the token is invalid or expired",
    403: "The caller's role may not do this",
    404: "Not found, or not visible to the caller",
    409: "Wrong state for this action (`invalid_transition`)",
    413: "The request body is too large",
    410: "The sync cursor is too old (`cursor_expired`): start again without `since`",
    422: "Validation failed; per-field messages",
    429: "Rate-limited; see Retry-After",
    502: "Paystack unreachable",
}
# Every signed-in POST, PATCH and DELETE (handlers/web/idempotent.py; the README's "For mobile developers").
IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": idempotent.HEADER,
    "required": False,
    "description": "Send a new random key (a UUID) with each new action and the same key with each retry of it: "
    "within 24 hours a retry with the same key and body gets the first answer (same status and "
    "body, `Idempotent-Replayed: true`) and changes nothing. 5xx and 429 answers are not stored.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x20-\\x7e]+$",
        "example": "3f0c9a9e-5b7d-4c1e-9f55-2f8f6b1d0a42",
    },
}
REPLAYED_HEADER = {
    "description": "`true` on an answer replayed for a retry with the same Idempotency-Key.",
    "schema": {"type": "string", "enum": ["true"]},
}
IDEMPOTENCY_ERROR_TEXT = {
    409: "; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running (see Retry-After)",
    422: "; or `idempotency_key_reused`: this Idempotency-Key was sent with another request",
}
_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")

TAGS = {
    "auth": "Registration, sign-in with JWT access and refresh tokens, sign-out, and the signed-in user's profile.",
    "catalog": "Service categories (plumbing, electrical, AC repair...) and the approved servicemen in each, "
    "with their ratings and reviews.",
    "requests": "Booking a serviceman: the booking-fee quote, creating and editing a request, cancelling it, "
    "and its timeline of events.",
    "payments": "Paystack checkout for the booking fee and the final cost (naira, `NGN`), the webhook, "
    "verification by reference, and payment history.",
    "pricing": "After inspection: the serviceman's estimate, the admin's markup, the client approving the final "
    "cost or negotiating it, and consulting the serviceman on a counter-offer.",
    "assignment": "The admins' queue of paid requests waiting for servicemen; assigning a primary and a backup, "
    "reassigning, promoting the backup, and a serviceman declining.",
    "jobs": "The work itself: starting it, marking it done, confirming completion, rating the serviceman; "
    "a serviceman's job list and earnings.",
    "notifications": "Dashboard notifications (also pushed on the websocket `/ws/` and sent by email): "
    "list, unread count, mark as read.",
    "admin": "Vetting servicemen (approve, reject, suspend, reinstate), creating admins, deactivating users, "
    "overriding a request's emergency flag.",
    "analytics": "Admin reports: revenue by month, top servicemen, most requested categories, request statistics.",
    "payouts": "Paying servicemen through Paystack Transfers: banks, the serviceman's payout account (resolved, "
    "stored masked), the payout ledger, admins approving payouts, and each payout's transfer attempts.",
    "docs": "This OpenAPI document, Swagger UI and the health check.",
    "refunds": "The cancellation policy (what cancelling now would refund and keep) and refunds through "
    "Paystack's Refund API: the admins' list, manual refunds of a verified payment, retrying a failed one.",
}

# Generic examples for fields whose example does not depend on their meaning (Date before DateTime:
# it is one). Money gets its own in `_decimal_as_string`, a Constant its value.
TYPE_EXAMPLES = ((fields.Date, EXAMPLE_BOOKING_DATE), (fields.DateTime, "2026-11-20T09:30:00+00:00"))
# A page of `{count, next, previous, results}`: the second of three at the default page size.
PAGE_EXAMPLE = {"count": 42, "page": 2, "page_size": 20}
EXAMPLE_ORIGIN = "https://api.example.com"
# Path ids in example URLs and path parameters: the demo data's, as in handlers/schemas (request #1,
# Plumbing #1, Emeka #3); any other id (a negotiation's, a notification's) is 1, the first one made.
EXAMPLE_IDS = {"request_id": 1, "category_id": 1, "serviceman_id": 3}
# Each status's example error, as the base handler renders it (422: see `_validation_example`).
ERROR_EXAMPLES = {
    error.status: error
    for error in (
        errors.MalformedRequest(),
        errors.NotAuthenticated(),
        errors.PermissionDenied(),
        errors.NotFound(),
        errors.InvalidTransition(),
        errors.PayloadTooLarge(),
        errors.RateLimited(),
        errors.UpstreamUnavailable(),
        errors.ServiceUnavailable(),
        CursorExpired(),
    )
}


def openapi_path(pattern):
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern)


def _path_parameter(name, regex):
    """An id (`\\d+`) is an integer; any other route group is a string matching the route's pattern."""
    if regex == r"\d+":
        return {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"type": "integer"},
            "example": EXAMPLE_IDS.get(name, 1),
        }
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string", "pattern": f"^{regex}$"}}


def _decimal_as_string(self, field, ret, **kwargs):
    """apispec documents every Decimal as a number; one dumped and loaded `as_string` ("5000.00") is a string."""
    if not isinstance(field, fields.Decimal) or not field.as_string:
        return {}
    places = None if field.places is None else -field.places.as_tuple().exponent
    fraction = r"(\.[0-9]+)?" if places is None else rf"\.[0-9]{{{places}}}" if places else ""
    # A field with a pattern of its own (handlers/schemas/common.py DecimalString) is checked against it on load.
    pattern = getattr(field, "pattern", None)
    out = {"type": "string", "pattern": pattern.pattern if pattern is not None else rf"^-?[0-9]+{fraction}$"}
    # A Range validator was rendered for a number; bounds on a string are apispec's `x-` keywords.
    for bound in ("minimum", "maximum"):
        if bound in ret:
            out[f"x-{bound}"] = ret.pop(bound)
    if "example" not in ret:
        bounds = [Decimal(out.get("x-minimum", "-Infinity")), Decimal(out.get("x-maximum", "Infinity"))]
        example = min(max(Decimal(5000), bounds[0]), bounds[1])
        out["example"] = str(example if field.places is None else example.quantize(field.places))
    return out


def _constant_type(self, field, ret, **kwargs):
    """A Constant field always answers its one value."""
    if not isinstance(field, fields.Constant) or field.constant is None:
        return {}
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    kind = kinds.get(type(field.constant))
    return {"enum": [field.constant], "example": field.constant, **({"type": kind} if kind else {})}


def _nested_before_null(self, field, ret, **kwargs):
    """apispec writes a nullable nested object as `anyOf: [null object, $ref]`; Swagger UI shows the
    first branch's example (an empty object), so the nested schema's goes first."""
    branches = ret.get("anyOf", [])
    if len(branches) == 2 and branches[0] == {"type": "object", "nullable": True}:
        return {"anyOf": branches[::-1]}
    return {}


def _type_example(self, field, ret, **kwargs):
    """A generic example for a date or time field without one of its own."""
    if "example" in ret:
        return {}
    for kind, example in TYPE_EXAMPLES:
        if isinstance(field, kind):
            return {"example": example}
    return {}


def _error_statuses(ep, pattern, method):
    """The statuses the base handler itself answers for this endpoint, and the ones it declares:
    401 without a valid token, 403 for the wrong role, 404 for an id naming nothing (or a path
    segment that is no id), 400/413/422 for a body that is not JSON, too large or not valid,
    400/422 for a query string that is undecodable or not valid."""
    statuses = set(ep.errors)
    if ep.requires_auth:
        statuses.add(401)
        if SIGNED_IN not in ep.roles:
            statuses.add(403)
    if _GROUP.search(pattern):
        statuses.add(404)
    if ep.body is not None:
        statuses |= {400, 413, 422}
    if ep.query is not None:
        statuses |= {400, 422}
    if ep.rate_limit:
        statuses.add(429)
    if idempotent.applies(ep, method.upper()):
        statuses |= {409, 422}  # idempotency_key_in_use; idempotency_key_reused or a malformed key
    return sorted(statuses)


def _schema_name(schema):
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema") or cls.__name__


def _page_url(path, page):
    path = re.sub(r"\{(\w+)\}", lambda m: str(EXAMPLE_IDS.get(m.group(1), 1)), path)
    return f"{EXAMPLE_ORIGIN}{path}?page={page}&page_size={PAGE_EXAMPLE['page_size']}"


def _page_schema(item, path):
    """The page wrapper of one list (each paginated item type is listed by one path)."""
    page = PAGE_EXAMPLE["page"]
    return Schema.from_dict(
        {
            "count": fields.Integer(
                required=True,
                metadata={"description": "Items in the whole list, all pages.", "example": PAGE_EXAMPLE["count"]},
            ),
            "next": fields.String(
                allow_none=True,
                required=True,
                metadata={
                    "description": "The next page's URL; null on the last page.",
                    "example": _page_url(path, page + 1),
                },
            ),
            "previous": fields.String(
                allow_none=True,
                required=True,
                metadata={
                    "description": "The previous page's URL; null on the first page.",
                    "example": _page_url(path, page - 1),
                },
            ),
            "results": fields.List(fields.Nested(type(item)), required=True),
        },
        name=f"{_schema_name(item)}Page",
    )


def _validation_example(ep):
    """A 422 for this operation, as its own schema words it: the body's (else the query's) required
    fields left out, or else the first field that refuses a wrong value (an object in a body, "x" in
    a query string)."""
    schema_cls, wrong = (ep.body, {}) if ep.body is not None else (ep.query, "x")
    if schema_cls is None:  # it reads nothing but the Idempotency-Key header
        return errors.ValidationFailed(fields={idempotent.HEADER: [idempotent.KEY_ERROR]})
    names = [field.data_key or name for name, field in schema_cls().fields.items() if not field.dump_only]
    for attempt in [{}, *({name: wrong} for name in names)]:
        try:
            schema_cls().load(attempt)
        except ValidationError as exc:
            return errors.ValidationFailed(fields=flatten_errors(exc.normalized_messages()))
    return errors.ValidationFailed()


def _error_response(ep, status, idempotency=False):
    error = _validation_example(ep) if status == 422 else ERROR_EXAMPLES.get(status)
    media = {"schema": "Error"}
    if error is not None:
        media["example"] = error.as_dict()
    text = ERROR_TEXT.get(status, "Error")
    if idempotency and status in IDEMPOTENCY_ERROR_TEXT:
        text += IDEMPOTENCY_ERROR_TEXT[status]
    response = {"description": text, "content": {"application/json": media}}
    if status == 429 or (idempotency and status == 409):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds until the next attempt may succeed.",
                "schema": {"type": "integer", "example": 42},
            }
        }
    return response


def _who(roles):
    if ANYONE in roles:
        return "Anyone."
    if SIGNED_IN in roles:
        return "Any signed-in user."
    return "Role: " + ", ".join(roles) + "."


def _operation(spec, handler, name, pattern, route_kwargs):
    ep = getattr(handler, name).endpoint
    op = {
        "summary": ep.summary,
        "description": " ".join(filter(None, [_who(ep.roles), ep.description])),
        "tags": list(ep.tags),
        # Declared with the endpoint; one handler serving several routes (reject/suspend) names its
        # route argument in the id, which keeps it unique.
        "operationId": ep.operation_id_for(route_kwargs),
        # Who may call it, as the description says in words: "anyone", "signed_in" or roles.
        "x-roles": list(ep.roles),
        "responses": {},
    }
    params = [_path_parameter(name, regex) for name, regex in _GROUP.findall(pattern)]
    if ep.query is not None:
        params.append({"in": "query", "schema": ep.query})
    if idempotent.applies(ep, name.upper()):
        params.append(IDEMPOTENCY_KEY_PARAMETER)
    # A handler's own request headers and answers (GET /api/sync/'s If-None-Match, ETag and 304).
    params += list(getattr(handler, "header_parameters", ()))
    if params:
        op["parameters"] = params
    if ep.requires_auth:
        op["security"] = [{"bearerAuth": []}]
    if ep.body is not None:
        # An absent or empty body reads as `{}`: it is required only when some field is.
        required = any(f.required for f in ep.body().fields.values())
        op["requestBody"] = {"required": required, "content": {"application/json": {"schema": ep.body}}}
    ok = {"description": "Success" if ep.status != 204 else "Done; no body"}
    if ep.response is not None and ep.status != 204:
        schema = _page_schema(ep.response, openapi_path(pattern)) if ep.paginated else type(ep.response)
        ok["content"] = {"application/json": {"schema": schema}}
    elif ep.status != 204:
        # A handler that writes its own body (docs, health) names its media type with `media_type`
        # and shows what it answers with `response_example`.
        media_type = getattr(handler, "media_type", "application/json")
        media = {"schema": {"type": "object" if media_type == "application/json" else "string"}}
        if getattr(handler, "response_example", None) is not None:
            media["example"] = handler.response_example
        ok["content"] = {media_type: media}
    op["responses"][str(ep.status)] = ok
    if getattr(handler, "response_headers", None):
        ok["headers"] = dict(handler.response_headers)
    if getattr(handler, "not_modified", None):
        op["responses"]["304"] = {"description": handler.not_modified, "headers": dict(handler.response_headers)}
    idempotency = idempotent.applies(ep, name.upper())
    if idempotency:
        ok["headers"] = {idempotent.REPLAYED: REPLAYED_HEADER}
    for status in _error_statuses(ep, pattern, name):
        op["responses"][str(status)] = _error_response(ep, status, idempotency)
    return op


def build_spec(routes, title="Serviceman API", version="1.0.0"):
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.0.3",
        plugins=[marshmallow_plugin],
        info={
            "description": "A real-time backend for on-demand service marketplaces. "
            "Errors always have the shape of the Error schema. Live notifications "
            "arrive on the websocket `/ws/`, described by the AsyncAPI document at "
            "[/api/asyncapi.json](/api/asyncapi.json). With `make run`, the demo "
            "accounts (e.g. `client@demo.serviceman.ng`, `admin@demo.serviceman.ng`, "
            "password `demo-password-123`) sign in with the login example as it is; "
            "paste its `access` into Authorize (kept across reloads)."
        },
    )
    marshmallow_plugin.converter.add_attribute_function(_decimal_as_string)
    marshmallow_plugin.converter.add_attribute_function(_constant_type)
    marshmallow_plugin.converter.add_attribute_function(_type_example)
    marshmallow_plugin.converter.add_attribute_function(_nested_before_null)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    for route in routes:
        pattern, handler = route[0], route[1]
        route_kwargs = route[2] if len(route) > 2 else {}
        operations = {
            name: _operation(spec, handler, name, pattern, route_kwargs)
            for name in HTTP_METHODS
            if hasattr(getattr(handler, name, None), "endpoint")
        }
        if operations:
            spec.path(path=openapi_path(pattern), operations=operations)
    document = spec.to_dict()
    # Tags in the order above (Swagger UI's sections), each with its description.
    used = {tag for item in document["paths"].values() for op in item.values() for tag in op.get("tags", ())}
    document["tags"] = [{"name": name, "description": text} for name, text in TAGS.items() if name in used]
    document["tags"] += [{"name": name} for name in sorted(used - set(TAGS))]
    return document
