"""The base handler: identity, role checks, body/query parsing and JSON errors, done once.

Every HTTP method of every handler carries an `@endpoint(...)` declaration (who may call it,
what it reads, what it answers). A handler method without one fails at import, so nothing is
reachable by accident; the same declarations build the OpenAPI document.
"""
import json
import logging
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import tornado.web
from marshmallow import EXCLUDE, Schema, ValidationError

from models.actions.accounts import get_active_user
from models.users import Role
from server import tokens
from server.errors import ApiError, MalformedRequest, MethodNotAllowed, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from server.executor import run_sync

from .schemas.common import PageQuerySchema, paginate

log = logging.getLogger("serviceman.http")

ANYONE = "anyone"
SIGNED_IN = "signed_in"
_AUDIENCES = {ANYONE, SIGNED_IN, *Role.ALL}
HTTP_METHODS = ("get", "post", "patch", "put", "delete")


@dataclass(frozen=True)
class Endpoint:
    roles: tuple
    summary: str
    body: type = None
    query: type = None
    response: object = None
    status: int = 200
    paginated: bool = False
    errors: tuple = ()
    description: str = ""
    tags: tuple = field(default=())

    @property
    def requires_auth(self):
        return ANYONE not in self.roles


def endpoint(*, roles, summary, body=None, query=None, response=None, status=200, paginated=False,
             errors=(), description="", tags=()):
    """Declare who may call a handler method and what it reads and answers."""
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    unknown = set(roles) - _AUDIENCES
    if unknown or not roles:
        raise ValueError(f"@endpoint roles must be among {sorted(_AUDIENCES)}, got {roles}")
    for schema in (body, query):
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, Schema)):
            raise ValueError(f"@endpoint body/query must be a Schema class, got {schema!r}")
    if paginated and query is None:
        query = PageQuerySchema
    if paginated and not issubclass(query, PageQuerySchema):
        raise ValueError(f"a paginated @endpoint's query schema must extend PageQuerySchema, got {query!r}")
    spec = Endpoint(roles=roles, summary=summary, body=body, query=query, response=response, status=status,
                    paginated=paginated, errors=tuple(errors), description=description, tags=tuple(tags))

    def wrap(fn):
        fn.endpoint = spec
        return fn

    return wrap


def _http_error_code(status):
    return {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")


class BaseHandler(tornado.web.RequestHandler):
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in HTTP_METHODS:
            fn = cls.__dict__.get(name)
            if fn is not None and not hasattr(fn, "endpoint"):
                raise TypeError(f"{cls.__name__}.{name} has no @endpoint declaration")

    @property
    def config(self):
        return self.application.settings["config"]

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # Also called again by send_error (clear()): keep the id already logged for this request.
        self.request_id = getattr(self, "request_id", None) or \
            self.request.headers.get("X-Request-ID") or uuid.uuid4().hex
        self.set_header("X-Request-ID", self.request_id)
        origin = self.request.headers.get("Origin")
        if origin and origin in self.config.cors_allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Vary", "Origin")

    def allowed_methods(self):
        return [m.upper() for m in HTTP_METHODS if hasattr(getattr(self, m, None), "endpoint")] + ["OPTIONS"]

    def options(self, *args, **kwargs):
        """CORS preflight; answered for every route, allowed origins only get the headers."""
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)

    @property
    def spec(self):
        fn = getattr(self, self.request.method.lower(), None)
        return getattr(fn, "endpoint", None)

    async def prepare(self):
        self.current_user_obj = None
        if self.request.method == "OPTIONS":
            return
        spec = self.spec
        if spec is None:
            raise MethodNotAllowed(headers={"Allow": ", ".join(self.allowed_methods())})
        if spec.requires_auth:
            self.current_user_obj = await self._authenticate()
            if SIGNED_IN not in spec.roles and self.current_user_obj.role not in spec.roles:
                raise PermissionDenied()
        self.query = self._load_query(spec.query) if spec.query else {}
        self.body = self._load_body(spec.body) if spec.body else {}

    async def _authenticate(self):
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        claims = tokens.decode(self.config, token.strip(), tokens.ACCESS)
        if claims is None:
            raise NotAuthenticated("The access token is invalid or expired.", code="token_invalid")
        return await run_sync(get_active_user, int(claims["sub"]))

    @property
    def user(self):
        return self.current_user_obj

    def _load_query(self, schema_cls):
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        return self._load(schema_cls(unknown=EXCLUDE), raw)

    def _load_body(self, schema_cls):
        raw = self.request.body.strip()
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedRequest(f"The request body is not valid JSON: {exc}.") from exc
        if not isinstance(data, dict):
            raise MalformedRequest("The request body must be a JSON object.")
        return self._load(schema_cls(), data)

    @staticmethod
    def _load(schema, data):
        try:
            return schema.load(data)
        except ValidationError as exc:
            messages = exc.normalized_messages()
            fields = {k: (v if isinstance(v, list) else [v]) for k, v in messages.items()}
            raise ValidationFailed(fields=fields) from exc

    async def run(self, fn, *args, **kwargs):
        return await run_sync(fn, *args, **kwargs)

    async def respond(self, result=None, status=None, transform=None):
        """Dump `result` with the endpoint's response schema (paginated if declared) and finish."""
        spec = self.spec
        self.set_status(status or spec.status)
        if spec.status == 204 or spec.response is None:
            return self.finish()
        if spec.paginated:
            body = await self.run(paginate, result, spec.response, self.query, self._page_url, transform)
        else:
            body = await self.run(spec.response.dump, result)
        self.finish(json.dumps(body))

    def _page_url(self, page):
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        args["page"] = str(page)
        base = self.config.public_base_url or f"{self.request.protocol}://{self.request.host}"
        return f"{base}{self.request.path}?{urlencode(args)}"

    def log_exception(self, typ, value, tb):
        if isinstance(value, ApiError):
            return
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        log.error("request %s failed: %s %s", self.request_id, self.request.method, self.request.uri,
                  exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_status(exc.status)
            for name, value in exc.headers.items():
                self.set_header(name, value)
            body = exc.as_dict()
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            body = {"error": {"code": _http_error_code(status_code),
                              "message": exc.log_message or self._reason}}
        else:
            body = {"error": {"code": "internal_error",
                              "message": f"Something went wrong on our side (request id {self.request_id}).",
                              "request_id": self.request_id}}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))


class NotFoundHandler(BaseHandler):
    """Unknown routes answer the contract's 404 shape."""

    async def prepare(self):
        raise NotFound("No such endpoint.")
