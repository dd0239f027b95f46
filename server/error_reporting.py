"""Error reports to Sentry (SENTRY_DSN) that carry no secret and no personal data.

`send_default_pii=False` only keeps the caller's IP, cookies and auth headers out; everything else
an event can hold is closed off here, in three layers:

1. What is never collected: stack frames' local variables (a handler's frame holds the password
   being checked, the email, the Bearer token, the claims, the SQL parameters and the Settings; no
   list of names can foresee every variable) and request bodies (addresses, phone numbers and
   descriptions are personal data no name-based list recognises). An event keeps the exception,
   the stack (file, function, line, source) and the request's method, URL and request id, which is
   what finding a bug takes; the request id leads to the log lines.
2. What is dropped by name: sentry-sdk's EventScrubber, recursive, with its denylist extended with
   this project's names (email, refresh, params...), over request headers, cookies, extra, user,
   breadcrumbs' data and contexts.
3. What is masked by value in every string left (exception messages, log messages and their
   arguments, breadcrumbs, URLs): this process's own secrets (SECRET_KEY, Paystack keys, passwords in
   DATABASE_URL/REDIS_URL...), Bearer tokens and JWTs, emails, token-like query parameters, URL
   passwords, and the values PostgreSQL quotes in an error's DETAIL.

Every process kind reports (web, dispatcher, worker, cron), each event tagged with it; a failure kind
is reported once per REPEAT_WINDOW_SECONDS per process (OncePerKind), so a loop failing every turn is
one event, not one a second.
"""

import re
import threading
import time

from sentry_sdk.integrations.rq import RqIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

FILTERED = "[Filtered]"
_DIGITS = re.compile(r"/\d+(?=/|$)")
REPEAT_WINDOW_SECONDS = 3600  # one report per failure kind and process per hour
MIN_MASKED_SECRET = 6
# Names (dict keys, lowercased, compared whole) whose values never leave, besides sentry-sdk's own.
PROJECT_DENYLIST = [
    "email",
    "new_email",
    "sent_to_email",
    "email_host_password",
    "current_password",
    "new_password",
    "old_password",
    "password_hash",
    "refresh",
    "access",
    "access_token",
    "refresh_token",
    "jwt",
    "claims",
    "bearer",
    "secret_key",
    "paystack_secret_key",
    "paystack_webhook_secret",
    "webhook_secret",
    "dsn",
    "sentry_dsn",
    "database_url",
    "redis_url",
    "x-paystack-signature",
    "x_paystack_signature",
    "signature",
    "params",
    "parameters",
    "phone",
    "address",
    "first_name",
    "last_name",
    "full_name",
    "account_number",
    "account_name",
    "authorization_url",
    "access_code",
    "code",
    "raw",
    "body",
]
DENYLIST = DEFAULT_DENYLIST + [name for name in PROJECT_DENYLIST if name not in DEFAULT_DENYLIST]

# Value patterns, applied to every string of an event in this order.
PATTERNS = (
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + FILTERED),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), FILTERED),  # a JWT anywhere (URL, message)
    # A query parameter named like a credential (token=, reset_code=, api_key=...), in a URL or a
    # query string alone.
    (
        re.compile(
            r"(?i)((?:^|[?&;\s])[\w-]*(?:token|key|secret|password|code|signature|access|refresh|reference"
            r"|email)=)[^&\s#\"']+"
        ),
        r"\1" + FILTERED,
    ),
    (re.compile(r"(://[^:/@\s]*:)[^@\s/]+@"), r"\1" + FILTERED + "@"),  # user:password@host
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (
        re.compile(r"(Key \([^)]*\)=\().*?(\) (?:already exists|is (?:not present|still referenced)))"),
        r"\1" + FILTERED + r"\2",
    ),  # PostgreSQL's DETAIL quotes the row's values
)


def mask(text, secrets=()):
    """`text` with every known secret and every sensitive-looking value replaced."""
    for secret in secrets:
        text = text.replace(secret, FILTERED)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value, secrets=()):
    """A copy of an event (or any part of one) with every string masked and denylisted keys dropped."""
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {
            key: FILTERED if isinstance(key, str) and key.lower() in DENYLIST else scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value]
    return value


def failure_kind(event):
    """What makes two events "the same failure". A logged error is its log call (logger and unformatted
    message: "dispatcher loop error") and its exception's type, wherever in the loop it was raised; an
    exception captured on its own is its type and the innermost frame of our code that raised it.
    Both within their transaction (a web route, a job)."""
    values = (event.get("exception") or {}).get("values") or []
    last = values[-1] if values else {}
    entry = event.get("logentry") or {}
    # A web request's report met outside a handler (an outage while signing in) has no transaction: its
    # route stands in, ids made alike.
    url = (event.get("request") or {}).get("url") or ""
    where_called = event.get("transaction") or _DIGITS.sub("/{id}", url.split("?", 1)[0].split("#", 1)[0])
    if entry:
        return (where_called, event.get("logger"), entry.get("message") or entry.get("formatted"), last.get("type"))
    frames = (last.get("stacktrace") or {}).get("frames") or []
    ours = [frame for frame in frames if frame.get("in_app")] or frames
    where = (ours[-1].get("module") or ours[-1].get("filename"), ours[-1].get("function")) if ours else None
    return (where_called, last.get("type"), where, None if values else event.get("message"))


class OncePerKind:
    """Lets the first event of each failure kind through and drops its repeats for `window` seconds: a
    loop that fails on every turn (a dispatcher whose database refuses a statement, a job failing on
    each attempt) is one report, not one a second. The next report of that kind after the window says
    how many were dropped (`extra.repeats_not_reported`). Sentry groups what it receives anyway; this
    keeps a failing loop from spending the project's quota and the operator's attention."""

    MAX_KINDS = 1000

    def __init__(self, window=REPEAT_WINDOW_SECONDS, clock=time.monotonic):
        self.window, self.clock = window, clock
        self.seen = {}  # kind -> [reported at, repeats dropped since]
        self.lock = threading.Lock()

    def admit(self, event):
        kind = repr(failure_kind(event))
        now = self.clock()
        with self.lock:
            seen = self.seen.get(kind)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return None
            dropped = seen[1] if seen is not None else 0
            self.seen[kind] = [now, 0]
            if len(self.seen) > self.MAX_KINDS:  # forget the kind reported longest ago
                del self.seen[min(self.seen, key=lambda key: self.seen[key][0])]
        if dropped:
            event.setdefault("extra", {})["repeats_not_reported"] = dropped
        return event


def sentry_options(settings, process="web", once_per_kind=None):
    """sentry_sdk.init's keyword arguments: the one place that decides what an error report holds.
    `process` (web, dispatcher, worker, cron, or a command's name) tags every event."""
    # A secret too short to be told apart from ordinary text is masked only where a pattern finds it.
    secrets = [secret for secret in settings.secret_values() if len(secret) >= MIN_MASKED_SECRET]
    once_per_kind = once_per_kind or OncePerKind()

    def before_send(event, hint):
        event = once_per_kind.admit(event)
        if event is None:
            return None
        tags = event.get("tags")
        if isinstance(tags, list):  # sentry-sdk may send [key, value] pairs
            tags = dict(tags)
        event["tags"] = {**(tags or {}), "process": process}
        return scrub(event, secrets)

    def before_breadcrumb(crumb, hint):
        return scrub(crumb, secrets)

    return {
        "dsn": settings.sentry_dsn,
        "environment": settings.env,
        "send_default_pii": False,
        "include_local_variables": False,
        "max_request_body_size": "never",
        "event_scrubber": EventScrubber(denylist=DENYLIST, recursive=True, pii_denylist=DEFAULT_PII_DENYLIST),
        "before_send": before_send,
        "before_breadcrumb": before_breadcrumb,
        # Job failures are reported by the worker itself, every attempt, without the job's arguments
        # (workers/worker.py); RQ's integration reports only the last attempt, with them.
        "disabled_integrations": [RqIntegration()],
    }


def init(settings, process="web"):
    """Report errors to Sentry when SENTRY_DSN is set; called once per process, at start-up. The
    release is sentry-sdk's own guess: SENTRY_RELEASE, else Heroku's slug commit (SOURCE_VERSION,
    HEROKU_SLUG_COMMIT), else the checkout's git revision."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(**sentry_options(settings, process))
    return True
