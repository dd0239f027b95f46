"""`/reset-password/?token=`: the page the password reset email links to.

A plain HTML form (no script) that posts back to itself; the reset token in the form is what
authorises the change, so no other CSRF defence is needed. Not part of the JSON API (and its
schema): apps may instead read the token from the link and call POST /api/auth/password-reset/confirm/.
"""

import tornado.web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from marshmallow import ValidationError

from handlers.web.executor import run_sync
from models.actions import credentials
from models.foundation.errors import ApiError
from models.foundation.settings import PROJECT_ROOT

from .auth import redacted_summary
from .base import set_security_headers
from .inputs import flatten_errors, unstorable_text_error
from .schemas.accounts import PasswordResetConfirmSchema

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
MAX_FORM_BYTES = 4096

_pages = Environment(
    loader=FileSystemLoader(PROJECT_ROOT / "templates" / "pages"),
    autoescape=select_autoescape(enabled_extensions=("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(token=None, error="", done=False):
    """templates/pages/reset_password.html: the form (`token`, with an `error` above it when one is
    given), only an error (no token: the link itself is bad), or `done`. Everything is escaped."""
    return _pages.get_template("reset_password.html").render(token=token, error=error, done=done)


class ResetPasswordPage(tornado.web.RequestHandler):
    def set_default_headers(self):
        set_security_headers(self, self.application.settings["config"], PAGE_CSP)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")  # the token is in the URL and the form

    def _request_summary(self):
        return redacted_summary(self)

    def prepare(self):
        self.request.connection.set_max_body_size(MAX_FORM_BYTES)

    def get(self):
        token = self.get_query_argument("token", "")
        if not token:
            return self.finish(
                render_page(error="Open the link from your password reset email to choose a new password.")
            )
        self.finish(render_page(token=token))

    async def post(self):
        try:
            token, password, again = (self._field(name) for name in ("token", "password", "password_again"))
        except UnicodeDecodeError:
            return self._form("", "The form was not sent as UTF-8 text.", status=422)
        reason = unstorable_text_error(password) or unstorable_text_error(token)
        if reason:
            return self._form("", reason, status=422)
        if password != again:
            return self._form(token, "The two passwords are not the same.", status=422)
        try:
            data = PasswordResetConfirmSchema().load({"token": token, "password": password})
        except ValidationError as exc:
            fields = flatten_errors(exc.normalized_messages())
            return self._form(
                token, " ".join(fields.get("password") or fields.get("token") or ["Not valid."]), status=422
            )
        try:
            await run_sync(
                credentials.confirm_password_reset,
                self.application.settings["config"],
                self.application.settings["pipeline"].transport,
                data["token"],
                data["password"],
            )
        except ApiError as exc:
            if exc.code.startswith("token_"):  # the link itself is bad: a new form would not help
                self.set_status(exc.status)
                return self.finish(render_page(error=exc.message))
            return self._form(token, exc.message, status=exc.status)
        self.finish(render_page(done=True))

    def _field(self, name):
        # Exactly as typed: get_body_argument would silently drop control characters from a password.
        return self.request.body_arguments.get(name, [b""])[0].decode("utf-8")

    def _form(self, token, message, status):
        self.set_status(status)
        self.finish(render_page(token=token, error=message))

    def write_error(self, status_code, **kwargs):
        self.finish(render_page(error="This request could not be handled. Open the link from your email again."))


default_handlers = [(r"/reset-password/?", ResetPasswordPage)]
