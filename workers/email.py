"""Rendering notification emails (templates/email/<type>/) and sending them over SMTP.

No EMAIL_HOST: the email is written to the log instead, as readable text (headers decoded, the text
part only), which is what development wants.
"""
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from server.settings import PROJECT_ROOT

log = logging.getLogger("serviceman.email")
_env = Environment(
    loader=FileSystemLoader(PROJECT_ROOT / "templates" / "email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_email(notification):
    """(subject, text, html) for a notification, from its type's templates and its payload."""
    user = notification.user
    values = {"notification": notification, "user": user, "payload": notification.payload or {},
              "is_emergency": bool((notification.payload or {}).get("is_emergency"))}
    folder = notification.notification_type
    subject = _env.get_template(f"{folder}/subject.txt").render(values).strip()
    text = _env.get_template(f"{folder}/body.txt").render(values)
    html = _env.get_template(f"{folder}/body.html").render(values)
    return subject, text, html


def build_message(settings, notification):
    subject, text, html = render_email(notification)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.default_from_email
    message["To"] = notification.user.email
    message["Date"] = formatdate(usegmt=True)
    # Stable per notification, so a mail client shows a rare at-least-once resend as one message.
    message["Message-ID"] = f"<notification-{notification.id}@serviceman>"
    if message_is_emergency(notification):
        message["X-Priority"] = "1"
        message["Importance"] = "high"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def message_is_emergency(notification):
    return bool((notification.payload or {}).get("is_emergency"))


def render_folder(folder, values):
    """(subject, text, html) from templates/email/<folder>/ (account emails use this too)."""
    subject = _env.get_template(f"{folder}/subject.txt").render(values).strip()
    return subject, _env.get_template(f"{folder}/body.txt").render(values), \
        _env.get_template(f"{folder}/body.html").render(values)


LOGGED_HEADERS = ("From", "To", "Subject", "Date")


def readable(message):
    """The message as a person reads it: decoded headers and the text part, never MIME transfer encoding."""
    headers = "\n".join(f"{name}: {message[name]}" for name in LOGGED_HEADERS if message[name])
    return f"{headers}\n\n{message.get_body(('plain',)).get_content().rstrip()}"


def send_notification_email(settings, notification):
    """Send it over SMTP, or write it to the log without EMAIL_HOST; returns "smtp" or "log"."""
    return send_message(settings, build_message(settings, notification))


def send_message(settings, message):
    if not settings.email_host:
        log.info("email to %s (no EMAIL_HOST: delivered to this log)\n%s", message["To"], readable(message))
        return "log"
    with smtplib.SMTP(settings.email_host, settings.email_port, timeout=30) as smtp:
        if settings.email_use_tls:
            smtp.starttls()
        if settings.email_host_user:
            smtp.login(settings.email_host_user, settings.email_host_password)
        smtp.send_message(message)
    return "smtp"
