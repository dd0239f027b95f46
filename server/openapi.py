"""The OpenAPI 3 document, built from the route table and each method's @endpoint declaration,
with the same marshmallow schemas that parse and render the bodies."""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN
from handlers.schemas.common import ErrorSchema

ERROR_TEXT = {
    400: "Malformed JSON", 401: "Not signed in, or the token is invalid or expired",
    403: "The caller's role may not do this", 404: "Not found, or not visible to the caller",
    409: "Wrong state for this action (`invalid_transition`)", 422: "Validation failed; per-field messages",
    429: "Rate-limited; see Retry-After", 502: "Paystack unreachable",
}
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def openapi_path(pattern):
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern)


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
        "responses": {},
    }
    params = [{"in": "path", "name": g, "required": True, "schema": {"type": "integer"}}
              for g in _GROUP.findall(pattern)]
    if ep.query is not None:
        params.append({"in": "query", "schema": ep.query})
    if params:
        op["parameters"] = params
    if ep.requires_auth:
        op["security"] = [{"bearerAuth": []}]
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ep.body}}}
    ok = {"description": "Success" if ep.status != 204 else "Done; no body"}
    if ep.response is not None and ep.status != 204:
        schema = _page_schema(ep.response) if ep.paginated else type(ep.response)
        ok["content"] = {"application/json": {"schema": schema}}
    op["responses"][str(ep.status)] = ok
    for status in ep.errors:
        op["responses"][str(status)] = {"description": ERROR_TEXT.get(status, "Error"),
                                        "content": {"application/json": {"schema": "Error"}}}
    return op


def build_spec(routes, title="Serviceman API", version="1.0.0"):
    spec = APISpec(title=title, version=version, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "A real-time backend for on-demand service marketplaces. "
                                        "Errors always have the shape of the Error schema."})
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
