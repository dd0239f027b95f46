"""The web dashboard under `/app/`: sign-in, sign-out and one server-rendered page per task.

Pages are Jinja2 templates (templates/dashboard/) around plain scripts (static/dashboard/) that call
the same REST API and websocket as any client, with the cookie session and the XSRF header instead
of a Bearer token. A page is one row of PAGES: its path, template, role and (optional) nav label.
Not part of the API: these routes stay out of route_table() and the OpenAPI document.
"""

import functools
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jinja2
import tornado.web

from handlers.web import identity, proxies, sessions
from handlers.web.executor import run_sync
from handlers.web.xsrf import SessionBoundXsrf
from models.actions.accounts import login_web
from models.actions.sessions import end_web_session
from models.foundation.errors import NotAuthenticated, RateLimited
from models.foundation.settings import PROJECT_ROOT
from models.users import Role

from .base import API_CSP, set_security_headers

APP = "/app/"
SIGN_IN = "/app/sign-in/"
SIGN_OUT = "/app/sign-out/"
TEMPLATES = PROJECT_ROOT / "templates" / "dashboard"
STATIC = PROJECT_ROOT / "static"
ANY_ROLE = Role.ALL


@dataclass(frozen=True)
class Page:
    path: str
    template: str
    roles: tuple
    nav: str = ""  # the label in the navigation bar; empty: reached by links only
    script: str = ""  # static/dashboard/<script>.js beside app.js


PAGES = (
    Page("/app/client/", "client/requests.html", (Role.CLIENT,), "My bookings", "client"),
    Page("/app/client/book/", "client/book.html", (Role.CLIENT,), "Book a serviceman", "client"),
    Page(r"/app/client/requests/(?P<request_id>\d+)/", "client/request.html", (Role.CLIENT,), "", "client"),
    Page("/app/admin/", "admin/queue.html", (Role.ADMIN,), "Assignment queue", "admin"),
    Page("/app/admin/requests/", "admin/requests.html", (Role.ADMIN,), "All requests", "admin"),
    Page(r"/app/admin/requests/(?P<request_id>\d+)/", "admin/request.html", (Role.ADMIN,), "", "admin"),
    Page("/app/admin/servicemen/", "admin/servicemen.html", (Role.ADMIN,), "Servicemen", "admin"),
    Page("/app/admin/analytics/", "admin/analytics.html", (Role.ADMIN,), "Analytics", "admin"),
    Page("/app/admin/refunds/", "admin/refunds.html", (Role.ADMIN,), "Refunds", "admin"),
    Page("/app/admin/payouts/", "admin/payouts.html", (Role.ADMIN,), "Payouts", "admin"),
    Page("/app/serviceman/", "serviceman/jobs.html", (Role.SERVICEMAN,), "My jobs", "serviceman"),
    Page(r"/app/serviceman/jobs/(?P<request_id>\d+)/", "serviceman/job.html", (Role.SERVICEMAN,), "", "serviceman"),
    Page("/app/serviceman/payouts/", "serviceman/payouts.html", (Role.SERVICEMAN,), "Payouts", "serviceman"),
    Page("/app/notifications/", "notifications.html", ANY_ROLE, "Notifications"),
)
HOME = {Role.CLIENT: "/app/client/", Role.ADMIN: "/app/admin/", Role.SERVICEMAN: "/app/serviceman/"}


def nav_for(role):
    return [(page.path, page.nav) for page in PAGES if page.nav and role in page.roles]


@functools.lru_cache(maxsize=1)
def templates():
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page_csp(host):
    # Only our own scripts and styles; the API and the socket on this host; forms post here only.
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def safe_next(target):
    """Where to go after signing in: a dashboard path of ours, never another site."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith(APP) or "\\" in target or "//" in parts.path:
        return APP
    return target


class DashboardHandler(SessionBoundXsrf, tornado.web.RequestHandler):
    """Session, headers and templates shared by every dashboard page."""

    @property
    def config(self):
        return self.application.settings["config"]

    @property
    def transport(self):
        return self.application.settings["pipeline"].transport

    @property
    def client_protocol(self):
        return proxies.client_address(self.request, self.config)[1]

    def set_default_headers(self):
        set_security_headers(self, self.config, page_csp(self.request.host))
        self.set_header("Cache-Control", "no-store")  # pages name the signed-in user

    async def load_user(self):
        """The session's user, or None (no cookie, a tampered or expired one, or a session that ended)."""
        session = sessions.read_session(self)
        if session is None:
            return None
        try:
            return await identity.user_at_version(*session)
        except NotAuthenticated:
            return None

    def render_page(self, template, **context):
        for name in ("user", "page", "ids"):
            context.setdefault(name, None)
        context.setdefault("nav", nav_for(context["user"].role) if context["user"] else [])
        html = (
            templates()
            .get_template(template)
            .render(
                xsrf_token=self.xsrf_token.decode(),
                static=self.static_url,
                current_path=self.request.path,
                sign_out=SIGN_OUT,
                **context,
            )
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(html)

    def write_error(self, status_code, **kwargs):
        self.render_page("error.html", status=status_code, reason=self._reason)


class SignInHandler(DashboardHandler):
    async def get(self):
        if await self.load_user() is not None:
            return self.redirect(safe_next(self.get_query_argument("next", APP)))
        self.render_page("sign_in.html", next=safe_next(self.get_query_argument("next", APP)), error="", email="")

    async def post(self):
        self.check_xsrf_cookie()
        email = self.get_body_argument("email", "")[:254]
        password = self.get_body_argument("password", "")[:1024]
        target = safe_next(self.get_body_argument("next", APP))
        try:
            # The same limits and the same constant-time check as POST /api/auth/login/.
            await self.application.settings["rate_limits"].check_attempt(
                "login", self.config, proxies.client_address(self.request, self.config)[0], None, {"email": email}
            )
            user, web_session = await run_sync(login_web, self.config, email, password)
        except (NotAuthenticated, RateLimited) as exc:
            self.set_status(exc.status)
            for name, value in exc.headers.items():  # Retry-After
                self.set_header(name, value)
            return self.render_page("sign_in.html", next=target, error=exc.message, email=email)
        sessions.start_session(self, user, web_session)
        self.redirect(target)


class SignOutHandler(DashboardHandler):
    async def post(self):
        self.check_xsrf_cookie()  # a foreign page must not sign anyone out
        session = sessions.read_session(self)
        if session is not None:  # ended on the server: a copy of the cookie opens nothing any more
            user_id, _, web_session = session
            await run_sync(end_web_session, self.transport, user_id, web_session)
        sessions.end_session(self)
        self.redirect(SIGN_IN)


class HomeHandler(DashboardHandler):
    """`/app/`: each role's main page."""

    async def get(self):
        user = await self.load_user()
        self.redirect(HOME[user.role] if user else SIGN_IN)


class PageHandler(DashboardHandler):
    def initialize(self, page):
        self.page = page

    async def get(self, **path_args):
        user = await self.load_user()
        if user is None:
            return self.redirect(f"{SIGN_IN}?{urlencode({'next': self.request.uri})}")
        if user.role not in self.page.roles:
            raise tornado.web.HTTPError(403, reason=f"This page is not for {user.role}s.")
        self.render_page(self.page.template, user=user, page=self.page, ids=path_args, home=HOME[user.role])


class DashboardAssetHandler(tornado.web.StaticFileHandler):
    """static/: the dashboard's scripts, styles and vendored files, with the API's security headers."""

    def set_default_headers(self):
        set_security_headers(self, self.application.settings["config"], API_CSP)


def dashboard_routes():
    return [
        (r"/app/?", HomeHandler),
        (r"/app/sign-in/?", SignInHandler),
        (r"/app/sign-out/?", SignOutHandler),
        *[(page.path, PageHandler, {"page": page}) for page in PAGES],
    ]


def dashboard_settings(settings):
    """Application settings the dashboard needs: the cookie key, the XSRF cookie's flags, static/."""
    return {
        "cookie_secret": settings.secret_key,
        # The page hands the token to its scripts, so the cookie itself need not be readable by them.
        "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Strict", "secure": settings.is_production},
        "static_path": str(STATIC),
        "static_handler_class": DashboardAssetHandler,
    }
