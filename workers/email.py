"""Rendering notification emails (templates/email/<type>/) and sending them over SMTP.

No EMAIL_HOST: the email is written to the log instead, as readable text (headers decoded, the text
part only), which is what development wants.
Each thread keeps one SMTP connection open between emails (a worker sends hundreds a second; a
handshake, STARTTLS and login per email would cost more than the email), and opens a new one when
the server has dropped it.
"""

import logging
import os
import re
import smtplib
import threading
from email.charset import QP, Charset
from email.header import Header, decode_header, make_header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.foundation import metrics
from models.foundation.naira import format_naira
from models.foundation.settings import PROJECT_ROOT

log = logging.getLogger("serviceman.email")
# Line breaks and other control characters: a header holding one is refused by the email package
# (or, worse, read as a second header). The input boundary refuses them in names; rows stored
# before it did, or written by other paths, must still never stop an email.
_CONTROL_RUN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_env = Environment(
    loader=FileSystemLoader(PROJECT_ROOT / "templates" / "email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["naira"] = format_naira  # {{ payload.amount | naira }}: ₦22,000.00, as the dashboard shows it


def render_email(notification):
    """(subject, text, html) for a notification, from its type's templates and its payload."""
    user = notification.user
    values = {
        "notification": notification,
        "user": user,
        "payload": notification.payload or {},
        "is_emergency": bool((notification.payload or {}).get("is_emergency")),
    }
    return render_folder(notification.notification_type, values)


def _header(value):
    return value if value.isascii() else Header(value, "utf-8")


def _text_part(body, subtype):
    """Plain 7bit when it can be; otherwise quoted-printable, which stays readable (and greppable)."""
    if body.isascii() and all(len(line) <= 78 for line in body.splitlines()):
        return MIMEText(body, subtype, "us-ascii")
    charset = Charset("us-ascii" if body.isascii() else "utf-8")
    charset.body_encoding = QP
    return MIMEText(body, subtype, charset)


def build_message(settings, notification):
    """multipart/alternative, text then HTML. Built with the email package's compat32 classes:
    EmailMessage's header objects and content manager cost three times as much per email, and
    a worker builds hundreds a second."""
    subject, text, html = render_email(notification)
    message = MIMEMultipart("alternative")
    message["Subject"] = _header(subject)
    message["From"] = _header(settings.default_from_email)
    message["To"] = notification.user.email
    message["Date"] = formatdate(usegmt=True)
    # Stable per notification, so a mail client shows a rare at-least-once resend as one message.
    message["Message-ID"] = f"<notification-{notification.id}@serviceman>"
    if message_is_emergency(notification):
        message["X-Priority"] = "1"
        message["Importance"] = "high"
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def message_is_emergency(notification):
    return bool((notification.payload or {}).get("is_emergency"))


def one_line(text):
    """`text` as a single header-safe line: each run of control characters becomes one space."""
    return _CONTROL_RUN.sub(" ", text).strip()


def render_folder(folder, values):
    """(subject, text, html) from templates/email/<folder>/ (account emails use this too)."""
    subject = one_line(_env.get_template(f"{folder}/subject.txt").render(values))
    return (
        subject,
        _env.get_template(f"{folder}/body.txt").render(values),
        _env.get_template(f"{folder}/body.html").render(values),
    )


LOGGED_HEADERS = ("From", "To", "Subject", "Date")


def readable(message):
    """The message as a person reads it: decoded headers and the text part, never MIME transfer encoding."""
    headers = "\n".join(
        f"{name}: {make_header(decode_header(str(message[name])))}" for name in LOGGED_HEADERS if message[name]
    )
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode(text.get_content_charset() or "utf-8", "replace")
    return f"{headers}\n\n{body.rstrip()}"


def send_notification_email(settings, notification):
    """Send it over SMTP, or write it to the log without EMAIL_HOST; returns "smtp" or "log"."""
    return send_message(settings, build_message(settings, notification))


def send_message(settings, message):
    """Send over SMTP, or write it to the log without EMAIL_HOST; returns "smtp" or "log"."""
    if not settings.email_host:
        log.info("email to %s (no EMAIL_HOST: delivered to this log)\n%s", message["To"], readable(message))
        return "log"
    try:
        _send_smtp(settings, message)
    except Exception:
        metrics.email_handed_over(ok=False)
        raise
    metrics.email_handed_over(ok=True)
    return "smtp"


class SmtpConnections(threading.local):
    """This thread's open SMTP connection, and the server settings it was opened with."""

    smtp = None
    key = None
    pid = None

    def get(self, settings):
        """(connection, reused): reused is False for one opened just now."""
        key = (settings.email_host, settings.email_port, settings.email_use_tls, settings.email_host_user)
        if self.pid != os.getpid():  # a forked child: the socket is the parent's; leave it to the parent
            self.smtp = self.key = None
        if self.smtp is not None and self.key == key:
            return self.smtp, True
        self.close()
        smtp = smtplib.SMTP(settings.email_host, settings.email_port, timeout=30)
        try:
            if settings.email_use_tls:
                smtp.starttls()
            if settings.email_host_user:
                smtp.login(settings.email_host_user, settings.email_host_password)
        except BaseException:
            smtp.close()
            raise
        self.smtp, self.key, self.pid = smtp, key, os.getpid()
        return smtp, False

    def close(self):
        smtp, self.smtp, self.key = self.smtp, None, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


connections = SmtpConnections()


def _send_smtp(settings, message):
    """Send over this thread's connection. A refusal (4xx/5xx) leaves the connection usable and is
    raised; a broken connection is dropped, and a reused one (the server may close idle ones) gets
    one retry on a fresh connection."""
    smtp, reused = connections.get(settings)
    try:
        smtp.send_message(message)
    except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
        raise
    except OSError:  # SMTPServerDisconnected, a reset or a timeout: this connection is finished
        connections.close()
        if not reused:
            raise
        smtp, _ = connections.get(settings)
        smtp.send_message(message)
