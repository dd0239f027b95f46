"""Account emails (verify your address, reset your password): jobs on the same queue, retries,
templates and SMTP sending as notification emails.

They are transactional, not notifications: no Notification row, nothing on the dashboard, and a
link that only the email ever holds.

    email_link_to_address(purpose, email)  look the address up, issue a token, send (reset, resend)
    email_verification_link(user_id)       issue a verification token and send it (registration)

The domain queues them by these dotted paths (models/actions/credentials.py): renaming or moving one
strands the jobs already queued in Redis, so an old path stays importable (tests/test_job_paths.py).

Both are retried on SMTP failure; a retry issues a fresh token, so the one email that arrives always
holds a working link.

The raw token exists only inside the job that sends it: it is issued there, never passed as a job
argument (RQ keeps arguments in Redis and logs them), never logged. Job descriptions carry no
arguments either (workers/transport.py), so the address a reset was asked for stays out of the logs.
"""

import logging
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlencode

from models.actions.credentials import ACCOUNT_EXISTS, PASSWORD_RESET, VERIFY_EMAIL, issue_token, lifetime, live_token
from models.users import User

from . import runtime
from .email import render_folder, send_message

log = logging.getLogger("serviceman.account_email")

# purpose -> (template folder, the path the link opens)
LINKS = {
    VERIFY_EMAIL: ("verify_email", "/api/auth/verify-email/"),
    PASSWORD_RESET: ("password_reset", "/reset-password/"),
}
# Emails that carry another purpose's token: "someone tried to register your address" holds a reset link.
TOKEN_PURPOSE = {ACCOUNT_EXISTS: PASSWORD_RESET}
FOLDERS = {ACCOUNT_EXISTS: "account_exists"}


def email_link_to_address(purpose, email):
    """Send a link to `email` if it names an account that should get one; otherwise nothing,
    silently (the request was answered the same either way)."""
    return _email_link(User.get_or_none(User.email == email.strip().lower()), purpose)


def email_verification_link(user_id):
    """Send a verification link to a new account, unless it was verified (or deactivated) meanwhile."""
    return _email_link(User.get_or_none(User.id == user_id), VERIFY_EMAIL)


def _email_link(user, purpose):
    """Issue a token for `user` and send it; the token id, or None when this user gets no link."""
    if user is None or not user.is_active:
        return None
    if purpose == VERIFY_EMAIL and user.email_verified_at is not None:
        return None
    token_id, raw = issue_token(runtime.settings(), user.id, TOKEN_PURPOSE.get(purpose, purpose))
    send_account_email(token_id, raw, folder=FOLDERS.get(purpose))
    return token_id


def link(settings, purpose, raw):
    _folder, path = LINKS[purpose]
    return f"{settings.origin}{path}?{urlencode({'token': raw})}"


def build_account_message(settings, row, raw, folder=None):
    folder = folder or LINKS[row.purpose][0]
    values = {
        "user": row.user,
        "link": link(settings, row.purpose, raw),
        "valid_for": _duration(lifetime(settings, row.purpose)),
    }
    subject, text, html = render_folder(folder, values)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.default_from_email
    message["To"] = row.user.email
    message["Date"] = formatdate(usegmt=True)
    # Stable per token, so a rare at-least-once resend shows as one message.
    message["Message-ID"] = f"<account-{row.id}@serviceman>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _duration(delta):
    minutes = int(delta.total_seconds() // 60)
    count, unit = (minutes // 60, "hour") if minutes % 60 == 0 else (minutes, "minute")
    return f"{count} {unit}{'' if count == 1 else 's'}"


def send_account_email(token_id, raw, folder=None):
    """Send the link unless it was used, superseded or expired meanwhile (then it would not work).
    Called inside the job that issued the token: never queued with the raw token as an argument."""
    row = live_token(token_id, raw)
    if row is None:
        return False
    send_message(runtime.settings(), build_account_message(runtime.settings(), row, raw, folder))
    log.info("%s email sent to user %s", folder or row.purpose, row.user_id)
    return True
