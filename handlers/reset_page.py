"""`/reset-password/?token=`: the page the password reset email links to.

A plain HTML form (no script) that posts back to itself; the reset token in the form is what
authorises the change, so no other CSRF defence is needed. Not part of the JSON API (and its
schema): apps may instead read the token from the link and call POST /api/auth/password-reset/confirm/.
"""
import html

import tornado.web
from marshmallow import ValidationError

from models.actions import credentials
from models.foundation.errors import ApiError
from handlers.web.executor import run_sync

from .auth import redacted_summary
from .base import set_security_headers
from .inputs import flatten_errors, unstorable_text_error
from .schemas.accounts import PasswordResetConfirmSchema

PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")
MAX_FORM_BYTES = 4096

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Choose a new password · Serviceman</title></head>
<body style="font-family: Arial, sans-serif; color: #1f2933; max-width: 420px; margin: 40px auto; padding: 0 16px;">
<h1 style="font-size: 20px; color: #0b6e4f;">Serviceman</h1>
{body}
</body></html>"""

FORM = """<h2 style="font-size: 18px;">Choose a new password</h2>
{error}
<form method="post" action="/reset-password/">
<input type="hidden" name="token" value="{token}">
<p><label>New password<br><input type="password" name="password" autocomplete="new-password" required minlength="8"
 maxlength="128" style="width: 100%; padding: 8px;"></label></p>
<p><label>The same again<br><input type="password" name="password_again" autocomplete="new-password" required
 style="width: 100%; padding: 8px;"></label></p>
<p><button type="submit" style="background: #0b6e4f; color: #fff; border: 0; padding: 10px 16px;">Set my new
 password</button></p>
<p style="font-size: 13px; color: #7b8794;">Every device signed in to your account will be signed out.</p>
</form>"""


def _error(message):
    return f'<p role="alert" style="color: #c0392b;">{html.escape(message)}</p>'


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
            return self._page(_error("Open the link from your password reset email to choose a new password."))
        self._page(FORM.format(token=html.escape(token), error=""))

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
            return self._form(token, " ".join(fields.get("password") or fields.get("token") or ["Not valid."]),
                              status=422)
        try:
            await run_sync(credentials.confirm_password_reset, self.application.settings["config"],
                           self.application.settings["pipeline"].transport, data["token"], data["password"])
        except ApiError as exc:
            if exc.code.startswith("token_"):  # the link itself is bad: a new form would not help
                self.set_status(exc.status)
                return self._page(_error(exc.message))
            return self._form(token, exc.message, status=exc.status)
        self._page("<h2 style=\"font-size: 18px;\">Your password is changed</h2><p>Sign in with your new password. "
                   "Every device that was signed in has been signed out.</p>")

    def _field(self, name):
        # Exactly as typed: get_body_argument would silently drop control characters from a password.
        return self.request.body_arguments.get(name, [b""])[0].decode("utf-8")

    def _form(self, token, message, status):
        self.set_status(status)
        self._page(FORM.format(token=html.escape(token), error=_error(message)))

    def _page(self, body):
        self.finish(PAGE.format(body=body))

    def write_error(self, status_code, **kwargs):
        self._page(_error("This request could not be handled. Open the link from your email again."))


default_handlers = [(r"/reset-password/?", ResetPasswordPage)]
