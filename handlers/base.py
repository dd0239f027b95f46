"""The base handler: identity, role checks, body/query parsing and JSON errors, done once.

Every HTTP method of every handler carries an `@endpoint(...)` declaration (its operationId, who may call it,
what it reads, what it answers). A handler method without one fails at import, so nothing is
reachable by accident; the same declarations build the OpenAPI document.
"""

import asyncio
import functools
import itertools
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import tornado.web
from marshmallow import RAISE, Schema, ValidationError

from handlers.web import idempotent, identity, proxies, rate_limits, route_names, sessions
from handlers.web.executor import DATABASE_UNAVAILABLE, database_unavailable, run_sync
from handlers.web.xsrf import SessionBoundXsrf
from models.db import is_connection_failure
from models.foundation import log_context, tokens
from models.foundation.errors import (
    ApiError,
    MalformedRequest,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UnknownHost,
    ValidationFailed,
)
from models.users import Role

from .inputs import INT32_MAX, flatten_errors, parse_json, refuse_control_characters, refuse_unstorable_text
from .schemas.common import PageQuerySchema, paginate

log = logging.getLogger("serviceman.http")

ANYONE = "anyone"
SIGNED_IN = "signed_in"
_AUDIENCES = {ANYONE, SIGNED_IN, *Role.ALL}
HTTP_METHODS = ("get", "post", "patch", "put", "delete")
# An operationId (what generated clients name their methods): readable camelCase; a handler serving
# several routes names its route argument in braces ("{action}Serviceman" -> rejectServiceman).
_OPERATION_ID = re.compile(r"^[a-z][A-Za-z0-9]*$")
_OPERATION_ID_FIELD = re.compile(r"\{(\w+)\}")
# operationId -> the method that declared it (module.qualname): an id declared twice fails at import.
_operation_ids = {}

# Request body limits by endpoint class, enforced before the body is read whole.
NO_BODY_LIMIT = 1024  # endpoints that read no body still tolerate a stray `{}` from clients
AUTH_BODY_LIMIT = 8 * 1024
JSON_BODY_LIMIT = 64 * 1024
# The largest any endpoint may declare; the HTTP server refuses anything bigger outright.
MAX_BODY_LIMIT = 1024 * 1024
# A body over its endpoint's limit but within this is read and dropped before its 413: the connection
# stays, and a proxy in front (nginx sends a body whole before it reads the answer) gets the 413, not a
# connection closed under it (its 502). Past this the body is refused unread and the connection closes.
DRAIN_LIMIT = JSON_BODY_LIMIT
# A refusal sent before the body is read ends the connection (it cannot be read past): say so.
CLOSE = {"Connection": "close"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Request ids this process gives: a random prefix per process and a counter, unique across processes
# and restarts like a uuid4, without reading the system's randomness per request (2% of a 304 poll).
_ID_PREFIX, _ID_NUMBERS = uuid.uuid4().hex[:16], itertools.count(1)


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
    max_body: int = NO_BODY_LIMIT
    rate_limit: str = None
    operation_id: str = ""
    idempotency: str = None

    @property
    def requires_auth(self):
        return ANYONE not in self.roles

    def operation_id_for(self, route_kwargs):
        """The operationId on one route: the template's `{name}` filled from the route's arguments."""
        return self.operation_id.format(**{k: v for k, v in route_kwargs.items() if isinstance(v, str)})


def _check_operation_id(operation_id):
    if not isinstance(operation_id, str) or not _OPERATION_ID.match(_OPERATION_ID_FIELD.sub("x", operation_id)):
        raise ValueError(
            f"@endpoint operation_id must be camelCase (a route argument as {{name}}), got {operation_id!r}"
        )
    return operation_id


def _claim_operation_id(operation_id, fn):
    """Register `fn` as the one method declaring `operation_id` (re-declaring the same method, as a
    module reload does, is fine)."""
    owner = f"{fn.__module__}.{fn.__qualname__}"
    if _operation_ids.setdefault(operation_id, owner) != owner:
        raise ValueError(
            f"@endpoint operation_id {operation_id!r} of {owner} is already {_operation_ids[operation_id]}'s"
        )


def endpoint(
    *,
    operation_id,
    roles,
    summary,
    body=None,
    query=None,
    response=None,
    status=200,
    paginated=False,
    errors=(),
    description="",
    tags=(),
    max_body=None,
    rate_limit=None,
    idempotency=idempotent.ATOMIC,
):
    """Declare who may call a handler method and what it reads and answers. `operation_id` names it in
    the OpenAPI document (and generated clients), unique across the API. `max_body` (bytes)
    defaults by class: small for anonymous (auth) bodies, larger for signed-in JSON bodies.
    `rate_limit` names one of settings.rate_limits, checked per client IP and per account after the
    body is read and before the handler does any work. `idempotency` says how a signed-in POST, PATCH
    or DELETE honours an Idempotency-Key (handlers/web/idempotent.py): ATOMIC (the default), AFTER
    (endpoints whose actions commit in steps around Paystack calls), or None (answers holding tokens,
    never stored: the key is ignored)."""
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
    if max_body is None:
        max_body = NO_BODY_LIMIT if body is None else AUTH_BODY_LIMIT if ANYONE in roles else JSON_BODY_LIMIT
    if not 0 < max_body <= MAX_BODY_LIMIT:
        raise ValueError(f"@endpoint max_body must be between 1 and {MAX_BODY_LIMIT} bytes, got {max_body}")
    spec = Endpoint(
        roles=roles,
        summary=summary,
        body=body,
        query=query,
        response=response,
        status=status,
        paginated=paginated,
        errors=tuple(errors),
        description=description,
        tags=tuple(tags),
        max_body=max_body,
        rate_limit=rate_limits.check_names(rate_limit),
        operation_id=_check_operation_id(operation_id),
        idempotency=idempotent.check_mode(idempotency),
    )

    def wrap(fn):
        _claim_operation_id(spec.operation_id, fn)

        @functools.wraps(fn)
        async def handle(self, *args, **kwargs):
            # The body arrives after prepare() (it is streamed, to be refused early when too big).
            self.body = self._load_body(spec.body) if spec.body else {}
            if await idempotent.begin(self, spec):
                return  # a retry: the stored answer was sent
            if spec.rate_limit:
                await self.application.settings["rate_limits"].check_attempt(
                    spec.rate_limit, self.config, self.client_ip, self.user, self.body
                )
            return await fn(self, *args, **kwargs)

        handle.endpoint = spec
        return handle

    return wrap


def _http_error_code(status):
    return {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")


# On every response: no MIME sniffing, no framing, no Referer leaking ids in URLs to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
# JSON loads nothing and renders nothing, so a response opened as a page may do nothing either.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def _next_request_id():
    return f"{_ID_PREFIX}{next(_ID_NUMBERS):016x}"


def set_security_headers(handler, config, csp):
    """Shared by BaseHandler, the docs' static assets and the websocket handshake."""
    handler.clear_header("Server")  # Tornado's name and version help only an attacker
    for name, value in SECURITY_HEADERS.items():
        handler.set_header(name, value)
    handler.set_header("Content-Security-Policy", csp)
    if config.is_production:  # development is plain HTTP on localhost: never pin it to HTTPS
        handler.set_header("Strict-Transport-Security", HSTS)


@functools.cache
def _query_schema(schema_cls):
    """One instance per query schema: building one (its fields deep-copied) cost more than the load
    itself on every list request; a schema keeps no state between loads. An unknown parameter is a
    422 naming it, as an unknown body field is: a misspelt or unsupported filter (`?after_id=`) is
    never silently ignored."""
    return schema_cls(unknown=RAISE)


UNKNOWN_PARAMETER = "Unknown query parameter."


@tornado.web.stream_request_body
class BaseHandler(SessionBoundXsrf, tornado.web.RequestHandler):
    content_security_policy = API_CSP
    idempotency_claim = None  # an Idempotency-Key this request holds (handlers/web/idempotent.py)
    _storing_answer = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in HTTP_METHODS:
            fn = cls.__dict__.get(name)
            if fn is not None and not hasattr(fn, "endpoint"):
                raise TypeError(f"{cls.__name__}.{name} has no @endpoint declaration")

    @property
    def config(self):
        return self.application.settings["config"]

    @property
    def transport(self):
        """The process's pipeline transport (server/pipeline.py), for the domain calls that announce or queue."""
        return self.application.settings["pipeline"].transport

    @functools.cached_property
    def _client_address(self):
        return proxies.client_address(self.request, self.config)

    @property
    def client_ip(self):
        """The caller's IP: the socket's, or the one a TRUSTED_PROXIES peer forwarded."""
        return self._client_address[0]

    @property
    def client_protocol(self):
        return self._client_address[1]

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        set_security_headers(self, self.config, self.content_security_policy)
        # Every answer is someone's data or tokens: no browser or proxy cache keeps a copy.
        self.set_header("Cache-Control", "no-store")
        # Also called again by send_error (clear()): keep the id already logged for this request.
        self.request_id = getattr(self, "request_id", None) or self._client_request_id() or _next_request_id()
        self.set_header("X-Request-ID", self.request_id)
        origin = self.request.headers.get("Origin")
        if origin and origin in self.config.cors_allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Vary", "Origin")

    def compute_etag(self):
        # Every answer is no-store: an ETag (a SHA-1 of each body, 3% of a list page's CPU) serves no cache.
        return None

    def allowed_methods(self):
        return [m.upper() for m in HTTP_METHODS if hasattr(getattr(self, m, None), "endpoint")] + ["OPTIONS"]

    def options(self, *args, **kwargs):
        """CORS preflight; answered for every route, allowed origins only get the headers."""
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)

    @property
    def route_template(self):
        """The route this request matched, as a template (`/api/service-requests/{request_id}/`)."""
        return route_names.route_of(self, self.application.settings.get("route_templates", {}))

    @property
    def spec(self):
        fn = getattr(self, self.request.method.lower(), None)
        return getattr(fn, "endpoint", None)

    def _client_request_id(self):
        """A client's X-Request-ID is kept only when it is a short plain token (it is echoed and logged)."""
        value = self.request.headers.get("X-Request-ID", "")
        return value if _REQUEST_ID.match(value) else None

    async def prepare(self):
        self.current_user_obj = None
        self.idempotency_claim = None
        self._body_chunks, self._body_size, self._refusal = [], 0, None
        # Every line this request causes names it (this task's context; the thread pool copies it).
        log_context.request_id.set(self.request_id)
        log_context.route.set(self.route_template)
        spec = self.spec
        too_large = self._limit_body(spec.max_body if spec else NO_BODY_LIMIT)
        if too_large is not None:
            return self._refuse_after_body(too_large)
        if self.request.method == "OPTIONS":
            return
        try:
            await self.admit(spec)
        except Exception as exc:
            self._refuse_after_body(exc)

    async def admit(self, spec):
        """Who may call and with what query, checked before the body is read."""
        if spec is None:
            raise MethodNotAllowed(headers={"Allow": ", ".join(self.allowed_methods())})
        self._check_path_ids()
        if spec.requires_auth:
            self.current_user_obj = await self._authenticate()
            if self.current_user_obj is None:  # admitted on its token alone: any signed-in caller (handlers/sync.py)
                if SIGNED_IN not in spec.roles:
                    raise PermissionDenied()
            else:
                log_context.user_id.set(self.current_user_obj.id)
                if SIGNED_IN not in spec.roles and self.current_user_obj.role not in spec.roles:
                    raise PermissionDenied()
        self.query = self._load_query(spec.query) if spec.query else self._no_query()

    def _limit_body(self, limit):
        """A declared body over the limit: the 413 to answer once it is read (within DRAIN_LIMIT), or
        refused now, unread (past it; a chunked one is cut off there: data_received), which closes the
        connection, and the answer says so. (The HTTP server's MAX_BODY_LIMIT still bounds what Tornado reads.)"""
        self.max_body = limit
        length = self.request.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            raise MalformedRequest("The Content-Length header is not a number.", headers=CLOSE)
        if int(length) > max(limit, DRAIN_LIMIT):
            raise self._too_large()
        return self._too_large(close=False) if int(length) > limit else None

    def _too_large(self, close=True):
        message = f"The request body may be at most {self.max_body} bytes."
        return PayloadTooLarge(message, headers=CLOSE if close else None)

    def _refuse_after_body(self, error):
        """Answer `error` once the body is read (and dropped), in place of the method. A response
        sent while the body is unread makes Tornado drop the connection (the only way it has to skip a
        body), so the client's next request on it would fail; HTTP keeps it if the body is consumed."""
        self._refusal = error

        async def refuse(*args, **kwargs):
            raise error

        setattr(self, self.request.method.lower(), refuse)  # Tornado calls it after the body

    def data_received(self, chunk):
        self._body_size += len(chunk)
        if self._body_size > max(self.max_body, DRAIN_LIMIT):
            # A chunked body past what is ever read: answer 413 now; the rest is never read, the connection closes.
            if not self._finished:
                error = self._too_large()
                self.send_error(error.status, exc_info=(type(error), error, None))
        elif self._body_size > self.max_body:
            self._body_chunks = []  # over the endpoint's limit: read to the end and dropped, then 413
            if self._refusal is None:
                self._refuse_after_body(self._too_large(close=False))
        elif self._refusal is None:
            self._body_chunks.append(chunk)

    def _check_path_ids(self):
        """Ids in paths beyond the database's integer range cannot name anything: 404, not a query."""
        for name, value in self.path_kwargs.items():
            if name.endswith("_id") and value.isdigit() and (len(value) > 10 or int(value) > INT32_MAX):
                raise NotFound()

    async def _authenticate(self):
        """The active user of the session the request presents (NotAuthenticated if it ended)."""
        return await identity.user_at_version(*self._presented_session())

    def _presented_session(self):
        """(user id, session version, dashboard session id or None) of the request's valid access
        token or signed cookie, checked without the database (whether that session still stands is
        the database's to say: _authenticate)."""
        if "Authorization" not in self.request.headers and sessions.has_session_cookie(self):
            return self._presented_cookie()
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        claims = tokens.decode(self.config, token.strip(), tokens.ACCESS)
        if claims is None:
            raise NotAuthenticated("The access token is invalid or expired.", code="token_invalid")
        return int(claims["sub"]), tokens.session_version(claims), None

    def _presented_cookie(self):
        """The dashboard's signed cookie (handlers/web/sessions.py); a change also needs the XSRF token."""
        session = sessions.read_session(self)
        if session is None:
            raise NotAuthenticated("The session is invalid or expired; sign in again.", code="session_invalid")
        if self.request.method not in sessions.SAFE_METHODS:
            try:
                self.check_xsrf_cookie()  # the X-XSRFToken header must be this session's (handlers/web/xsrf.py)
            except tornado.web.HTTPError as exc:
                raise PermissionDenied(
                    "The XSRF token is missing or wrong; reload the page.", code="xsrf_failed"
                ) from exc
        return session

    @property
    def user(self):
        return self.current_user_obj

    @property
    def raw_body(self):
        """The request body as received (for signature checks); `self.body` is the parsed one."""
        if self._body_size > self.max_body:
            raise self._too_large()
        return b"".join(self._body_chunks)

    def _load_query(self, schema_cls):
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        refuse_unstorable_text(raw)
        return self._load(_query_schema(schema_cls), raw)

    def _no_query(self):
        """An endpoint that reads no query string refuses one, naming each parameter."""
        if self.request.query_arguments:
            names = {key: [UNKNOWN_PARAMETER] for key in self.request.query_arguments}
            refuse_unstorable_text(names)
            raise ValidationFailed(fields=names)
        return {}

    def _load_body(self, schema_cls):
        raw = self.raw_body.strip()
        data = parse_json(raw) if raw else {}
        if not isinstance(data, dict):
            raise MalformedRequest("The request body must be a JSON object.")
        refuse_unstorable_text(data)
        return self._load(schema_cls(), data)

    @staticmethod
    def _load(schema, data):
        refuse_control_characters(schema, data)
        try:
            return schema.load(data)
        except ValidationError as exc:
            raise ValidationFailed(fields=flatten_errors(exc.normalized_messages())) from exc

    async def run(self, fn, *args, **kwargs):
        if self.idempotency_claim is not None and self.spec.idempotency == idempotent.ATOMIC:
            fn, args = idempotent.atomically, (self.idempotency_claim, self.spec, fn, *args)
        return await run_sync(fn, *args, **kwargs)

    def finish(self, chunk=None):
        """With an Idempotency-Key claimed, the answer is stored before it is sent: a retry that
        follows it always finds it (handlers/web/idempotent.py)."""
        if self._storing_answer is not None:
            return self._storing_answer  # finish() again (Tornado's, after an error) while storing
        if self.idempotency_claim is None:
            return super().finish(chunk)
        if chunk is not None:
            self.write(chunk)
        self._storing_answer = asyncio.ensure_future(self._store_then_finish())
        return self._storing_answer

    async def _store_then_finish(self):
        await idempotent.answered(self)
        await super().finish()

    async def respond(self, result=None, status=None, transform=None):
        """Dump `result` with the endpoint's response schema (paginated if declared) and finish."""
        spec = self.spec
        self.set_status(status or spec.status)
        if spec.status == 204 or spec.response is None:
            return self.finish()
        # Rendering is not a domain call: run_sync, not self.run, which would put it in a transaction of
        # its own with the Idempotency-Key's mark (handlers/web/idempotent.py) and render it twice.
        if spec.paginated:
            body = await run_sync(paginate, result, spec.response, self.query, self._page_url, transform)
        else:
            body = await run_sync(spec.response.dump, result)
        self.finish(json.dumps(body))

    def _page_url(self, page):
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        args["page"] = str(page)
        origin = f"{self.client_protocol}://{self.request.host}"
        return self.config.public_url(f"{self.request.path}?{urlencode(args)}", origin)

    def log_exception(self, typ, value, tb):
        if isinstance(value, ApiError) and value.code == DATABASE_UNAVAILABLE:
            log.warning(
                "request %s answered 503: the database cannot be reached (%s)",
                self.request_id,
                type(value.__cause__).__name__,
            )
            return
        if isinstance(value, ApiError):
            return
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        log.error(
            "request %s failed: %s %s",
            self.request_id,
            self.request.method,
            self.request.uri,
            exc_info=(typ, value, tb),
        )

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is not None and not isinstance(exc, ApiError) and is_connection_failure(exc):
            exc = database_unavailable()  # raised outside the domain pool (which converts its own)
        if isinstance(exc, ApiError):
            self.set_status(exc.status)
            for name, value in exc.headers.items():
                self.set_header(name, value)
            body = exc.as_dict()
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            if status_code == 405:  # a method Tornado knows nothing of (TRACE): still say which are allowed
                self.set_header("Allow", ", ".join(self.allowed_methods()))
            # Tornado's own messages may quote what the client sent (undecodable bytes and all).
            body = {"error": {"code": _http_error_code(status_code), "message": self._reason}}
        else:
            body = {
                "error": {
                    "code": "internal_error",
                    "message": f"Something went wrong on our side (request id {self.request_id}).",
                    "request_id": self.request_id,
                }
            }
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))


class NotFoundHandler(BaseHandler):
    """Unknown routes answer the contract's 404 shape."""

    async def admit(self, spec):
        raise NotFound("No such endpoint.")


class UnknownHostHandler(BaseHandler):
    """Every request addressed to a host name the settings do not accept (`Settings.accepts_host`)."""

    async def prepare(self):
        self.current_user_obj = None
        self._body_chunks, self._body_size, self._refusal = [], 0, None
        self.max_body = NO_BODY_LIMIT
        self._refuse_after_body(UnknownHost())
