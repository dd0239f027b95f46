"""The OpenAPI 3 document, built from the route table and each method's @endpoint declaration,
with the same marshmallow schemas that parse and render the bodies."""
import re
from decimal import Decimal

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN
from handlers.schemas.common import ErrorSchema

ERROR_TEXT = {
    400: "Malformed request (body not a JSON object, undecodable text)",
    401: "Not signed in, or the token is invalid or expired",
    403: "The caller's role may not do this", 404: "Not found, or not visible to the caller",
    409: "Wrong state for this action (`invalid_transition`)", 413: "The request body is too large",
    422: "Validation failed; per-field messages", 429: "Rate-limited; see Retry-After", 502: "Paystack unreachable",
}
_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")


def openapi_path(pattern):
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern)


def _path_parameter(name, regex):
    """An id (`\\d+`) is an integer; any other route group is a string matching the route's pattern."""
    schema = {"type": "integer"} if regex == r"\d+" else {"type": "string", "pattern": f"^{regex}$"}
    return {"in": "path", "name": name, "required": True, "schema": schema}


def _decimal_as_string(self, field, ret, **kwargs):
    """apispec documents every Decimal as a number; one dumped and loaded `as_string` ("5000.00") is a string."""
    if not isinstance(field, fields.Decimal) or not field.as_string:
        return {}
    places = None if field.places is None else -field.places.as_tuple().exponent
    fraction = r"(\.[0-9]+)?" if places is None else rf"\.[0-9]{{{places}}}" if places else ""
    out = {"type": "string", "pattern": rf"^-?[0-9]+{fraction}$"}
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
    return {"enum": [field.constant], **({"type": kind} if kind else {})}


def _error_statuses(ep, pattern):
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
    return sorted(statuses)


def _schema_name(schema):
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema") or cls.__name__


def _page_schema(item):
    return Schema.from_dict({
        "count": fields.Integer(required=True),
        "next": fields.String(allow_none=True, required=True),
        "previous": fields.String(allow_none=True, required=True),
        "results": fields.List(fields.Nested(type(item)), required=True),
    }, name=f"{_schema_name(item)}Page")


def _who(roles):
    if ANYONE in roles:
        return "Anyone."
    if SIGNED_IN in roles:
        return "Any signed-in user."
    return "Role: " + ", ".join(roles) + "."


def _operation(spec, handler, name, pattern, route_kwargs):
    ep = getattr(handler, name).endpoint
    # One handler may serve several routes (reject/suspend): its route arguments keep the id unique.
    variant = [str(v) for v in route_kwargs.values() if isinstance(v, str)]
    op = {
        "summary": ep.summary,
        "description": " ".join(filter(None, [_who(ep.roles), ep.description])),
        "tags": list(ep.tags),
        "operationId": ".".join([handler.__name__, name, *variant]),
        # Who may call it, as the description says in words: "anyone", "signed_in" or roles.
        "x-roles": list(ep.roles),
        "responses": {},
    }
    params = [_path_parameter(name, regex) for name, regex in _GROUP.findall(pattern)]
    if ep.query is not None:
        params.append({"in": "query", "schema": ep.query})
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
        schema = _page_schema(ep.response) if ep.paginated else type(ep.response)
        ok["content"] = {"application/json": {"schema": schema}}
    elif ep.status != 204:
        # A handler that writes its own body (docs, health) names its media type with `media_type`.
        media_type = getattr(handler, "media_type", "application/json")
        ok["content"] = {media_type: {"schema": {"type": "object" if media_type == "application/json" else "string"}}}
    op["responses"][str(ep.status)] = ok
    for status in _error_statuses(ep, pattern):
        op["responses"][str(status)] = {"description": ERROR_TEXT.get(status, "Error"),
                                        "content": {"application/json": {"schema": "Error"}}}
    return op


def build_spec(routes, title="Serviceman API", version="1.0.0"):
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(title=title, version=version, openapi_version="3.0.3", plugins=[marshmallow_plugin],
                   info={"description": "A real-time backend for on-demand service marketplaces. "
                                        "Errors always have the shape of the Error schema."})
    marshmallow_plugin.converter.add_attribute_function(_decimal_as_string)
    marshmallow_plugin.converter.add_attribute_function(_constant_type)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    for route in routes:
        pattern, handler = route[0], route[1]
        route_kwargs = route[2] if len(route) > 2 else {}
        operations = {name: _operation(spec, handler, name, pattern, route_kwargs) for name in HTTP_METHODS
                      if hasattr(getattr(handler, name, None), "endpoint")}
        if operations:
            spec.path(path=openapi_path(pattern), operations=operations)
    return spec.to_dict()
