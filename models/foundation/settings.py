"""Settings read from the environment only; `.env` is read in development.

One frozen object is built at start-up and passed around, so tests can build their own
without touching os.environ.
"""

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.foundation import settings_hardening

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # refused when ENV=production
EXAMPLE_SECRET_KEY = "change-me-development-only"  # .env.example's value: public, so refused too
ENVIRONMENTS = ("development", "test", "production")
# HS256 keys shorter than this can be brute-forced offline from any token a user holds.
MIN_SECRET_KEY_LENGTH = 32
MIN_BCRYPT_ROUNDS = 10
# Without Paystack keys outside production, the app serves its own Paystack stand-in here, signing
# webhooks with this (public, worthless) key: a newcomer walks the whole booking with no account.
LOCAL_CHECKOUT_PREFIX = "/dev/paystack"
LOCAL_CHECKOUT_SECRET_KEY = "sk_test_serviceman_local_checkout"
LOCAL_CHECKOUT_PUBLIC_KEY = "pk_test_serviceman_local_checkout"
# Rate limits in the `limits` notation, per client IP and per account (handlers/web/rate_limits.py). Generous
# enough for people behind one shared (carrier NAT) address; far too tight to guess passwords with.
RATE_LIMIT_DEFAULTS = {
    "login": "10/minute;50/hour;200/day",
    "register": "10/hour;50/day",
    "refresh": "30/minute;1000/day",
    "email": "5/hour;20/day",
    "payment_initialize": "20/minute;200/day",
    # Each bank account lookup spends the platform's Paystack quota and names the holder: a serviceman
    # needs a handful, ever.
    "bank_lookup": "5/minute;10/hour;20/day",
}
# With ENV=development and no CORS_ALLOWED_ORIGINS, the dev servers front-end developers start by
# default (Next/CRA, Vite, Vue CLI/webpack) may call the API: their first page works without a restart.
DEV_CORS_ORIGINS = tuple(f"http://{host}:{port}" for port in (3000, 5173, 8080) for host in ("localhost", "127.0.0.1"))
# REDIS_SSL_CERT_REQS: how a rediss:// server's TLS certificate is checked (redis-py's ssl_cert_reqs).
# "required" by default: encryption without verification lets whoever sits on the path pose as Redis.
# Heroku Redis presents self-signed certificates, which only "none" accepts (README, "Redis over TLS").
REDIS_SSL_CERT_REQS = ("required", "optional", "none")
# A field's metadata marks what Settings' repr must never print (error reports print frames' objects).
SECRET = {"secret": True}
URL_WITH_PASSWORD = {"url_password": True}


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; start-up stops with this message."""


def _bool(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


# Names of this machine: served in development without configuration (the test client, the browser).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _host_name(value: str) -> str:
    """A host name as compared: lower case, no IPv6 brackets, no trailing dot."""
    return value.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def _networks(value: str | None) -> tuple[settings_hardening.Network, ...]:
    """TRUSTED_PROXIES: IPs or CIDR networks; a typo must not silently trust (or distrust) a proxy."""
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item))  # strict: "10.0.0.1/8" is ambiguous, refuse it
        except ValueError as exc:
            raise ConfigurationError(f"TRUSTED_PROXIES entry {item!r} is not an IP address or network: {exc}") from exc
    return tuple(networks)


def _check_rate_limit(name: str, rule: str) -> None:
    from limits import parse_many

    if name not in RATE_LIMIT_DEFAULTS:
        raise ConfigurationError(f"unknown rate limit {name!r}")
    if not rule:
        return
    try:
        items = parse_many(rule)
    except ValueError as exc:
        raise ConfigurationError(
            f"RATE_LIMIT_{name.upper()} {rule!r} is not in the limits notation (e.g. 5/minute;100/day): " + str(exc)
        ) from exc
    if any(item.amount < 1 for item in items):
        raise ConfigurationError(
            f"RATE_LIMIT_{name.upper()} {rule!r} allows nothing; leave it empty to disable the limit instead"
        )


def _rate_limits(get: Callable[..., str | None]) -> dict[str, str]:
    """RATE_LIMIT_<NAME> for each limit: unset keeps the default, set but empty disables it."""
    return {
        name: (get(f"RATE_LIMIT_{name.upper()}", default) or "").strip()
        for name, default in RATE_LIMIT_DEFAULTS.items()
    }


def _cors_origins(env: str, value: str | None) -> tuple[str, ...]:
    """CORS_ALLOWED_ORIGINS; unset or empty in development, the usual local dev-server origins."""
    origins = tuple(_list(value))
    return origins or (DEV_CORS_ORIGINS if env == "development" else ())


def _key_mode(key: str, kind: str) -> str | None:
    """ "test" or "live" for a Paystack key of this kind ("sk" or "pk"), None when unrecognisable."""
    for mode in ("test", "live"):
        if key.startswith(f"{kind}_{mode}_"):
            return mode
    return None


def redis_url_with_cert_policy(url: str, cert_reqs: str) -> str:
    """A rediss:// URL carrying the certificate policy, so every client built from the URL (ours, RQ's,
    limits') applies it; a policy already in the URL (?ssl_cert_reqs=) wins. Other URLs are unchanged."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.scheme != "rediss" or any(name == "ssl_cert_reqs" for name, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode(query + [("ssl_cert_reqs", cert_reqs)])))


def _log_format(value: str | None) -> str:
    value = (value or "text").strip().lower()
    if value not in ("text", "json"):
        raise ConfigurationError(f"LOG_FORMAT must be text or json, not {value!r}")
    return value


def _redis_cert_reqs(value: str | None) -> str:
    value = (value or "required").strip().lower()
    if value not in REDIS_SSL_CERT_REQS:
        raise ConfigurationError(f"REDIS_SSL_CERT_REQS {value!r} is not one of {', '.join(REDIS_SSL_CERT_REQS)}")
    return value


def url_password(url: str) -> str:
    """The password in a URL (postgresql://user:password@host/db), or ""."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def _without_password(url: str) -> str:
    password = url_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _is_absolute_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, repr=False)
class Settings:
    env: str = "development"
    secret_key: str = field(default=DEV_SECRET_KEY, metadata=SECRET)
    database_url: str = field(default=f"sqlite:///{PROJECT_ROOT / 'serviceman.sqlite3'}", metadata=URL_WITH_PASSWORD)
    redis_url: str = field(default="", metadata=URL_WITH_PASSWORD)  # rediss://: with its certificate policy
    paystack_secret_key: str = field(default="", metadata=SECRET)
    paystack_public_key: str = ""
    paystack_webhook_secret: str = field(default="", metadata=SECRET)
    paystack_base_url: str = "https://api.paystack.co"
    paystack_callback_url: str = ""
    paystack_timeout: float = 10.0
    paystack_allow_test_keys: bool = False
    paystack_local_checkout: bool = False
    payment_reconcile_after: int = 600  # seconds a PENDING payment waits before it is re-verified
    payment_abandon_after: int = 24 * 3600  # seconds after which an unpaid attempt is FAILED
    payout_reconcile_after: int = 600  # seconds a sent (or unanswered) transfer waits before it is re-checked
    paystack_banks_ttl: int = 24 * 3600  # seconds Paystack's bank list is kept before it is asked again
    # The share of the booking fee kept (for the servicemen's trouble) when a client cancels after
    # servicemen were assigned; before assignment the fee is refunded in full.
    cancellation_fee_kept_percent_after_assignment: Decimal = Decimal("100")
    email_host: str = ""
    email_port: int = 587
    email_host_user: str = ""
    email_host_password: str = field(default="", metadata=SECRET)
    email_use_tls: bool = True
    default_from_email: str = "Serviceman <no-reply@serviceman.local>"
    cors_allowed_origins: tuple = ()
    sentry_dsn: str = field(default="", metadata=SECRET)  # its key lets anyone post events to our project
    # GET /metrics answers only a request bearing this token; unset: not served, nothing recorded.
    metrics_token: str = field(default="", metadata=SECRET)
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object a line (server/logs.py)
    time_zone: str = "Africa/Lagos"
    emergency_booking_fee: Decimal = Decimal("5000.00")
    standard_booking_fee: Decimal = Decimal("2000.00")
    bcrypt_rounds: int = 12
    db_pool_size: int = 8
    # How long the dispatcher, worker and cron wait at start-up for a database or Redis that does not
    # answer (down, restarting) before they exit; None: for ever (they are long-running processes).
    startup_wait_seconds: float | None = None
    # How long a web process serves a built public servicemen page (handlers/web/listing_cache.py) at most.
    # Changes committed by any process are seen at once (Redis mode: announced on Redis); this bounds
    # only what an unheard announcement or an edit made outside the application leaves. 0: never kept.
    listing_cache_seconds: float = 10.0
    # How long an Idempotency-Key's claim is its request's alone (models/actions/idempotency.py): a
    # process killed mid-request holds the key this long, a retry is 409 meanwhile. Keep it longer than
    # the slowest request (Paystack's timeout included): a retry after it runs the request again.
    idempotency_lease_seconds: float = 60.0
    ws_max_sockets_per_user: int = 10
    ws_ping_seconds: float = 20.0  # each socket pinged this often, closed when a ping goes unanswered; 0: never
    # On SIGTERM/SIGINT the web process lets its requests in progress finish for at most this long,
    # then exits (Heroku sends SIGKILL 30 s after SIGTERM: leave it room to close the rest).
    shutdown_grace_seconds: float = 20.0
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    email_verification_hours: int = 48  # lifetime of an email verification link
    password_reset_minutes: int = 60  # lifetime of a password reset link
    public_base_url: str = ""
    # Retention (models/actions/retention.py): days notifications and events are kept (0: for ever; an
    # open request's are always kept), and days a used or expired email link's row is kept.
    notification_retention_days: int = 365
    event_retention_days: int = 365
    one_time_token_retention_days: int = 7
    # Backups (workers/backup.py): pg_dump files in BACKUP_DIR, the cron process taking one on
    # BACKUP_SCHEDULE (a cron expression, UTC; "external": the platform takes them, e.g. Heroku
    # PGBackups); the newest BACKUP_KEEP_COUNT are always kept, older ones go after BACKUP_KEEP_DAYS.
    backup_dir: str = ""
    backup_schedule: str = ""
    backup_keep_count: int = 14
    backup_keep_days: int = 30
    # Host names requests may be addressed to (ALLOWED_HOSTS, as Django's); empty: the loopback names.
    # PUBLIC_BASE_URL's host is always accepted. See `accepts_host`.
    allowed_hosts: tuple = ()
    trusted_proxies: tuple = ()
    rate_limits: dict = field(default_factory=lambda: dict(RATE_LIMIT_DEFAULTS))  # name -> rule; "" disables
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        """Every setting but the secrets: a frame holding Settings may be printed in a log or an error
        report. A secret shows only whether it is set; a URL keeps everything but its password."""

        def shown(item: Any) -> str:
            value = getattr(self, item.name)
            if item.metadata.get("secret"):
                return "'***'" if value else "''"
            if item.metadata.get("url_password"):
                return repr(_without_password(value))
            return repr(value)

        return f"Settings({', '.join(f'{item.name}={shown(item)}' for item in fields(self))})"

    def secret_values(self) -> list[str]:
        """Every secret this process holds, for error reports to strip wherever they appear."""
        values = [getattr(self, item.name) for item in fields(self) if item.metadata.get("secret")]
        values += [url_password(getattr(self, item.name)) for item in fields(self) if item.metadata.get("url_password")]
        return sorted({value for value in values if value}, key=len, reverse=True)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def idempotency_lease(self) -> timedelta:
        return timedelta(seconds=self.idempotency_lease_seconds)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def origin(self) -> str:
        """Where this server is reached: PUBLIC_BASE_URL, else this machine on PORT (development)."""
        return self.public_base_url or f"http://127.0.0.1:{self.port}"

    @property
    def paystack_api_url(self) -> str:
        return f"{self.origin}{LOCAL_CHECKOUT_PREFIX}" if self.paystack_local_checkout else self.paystack_base_url

    @property
    def payment_callback_url(self) -> str:
        if self.paystack_callback_url or not self.paystack_local_checkout:
            return self.paystack_callback_url
        return f"{self.paystack_api_url}/done"

    @property
    def accepted_hosts(self) -> tuple[str, ...]:
        """PUBLIC_BASE_URL's host, and ALLOWED_HOSTS or else the loopback names."""
        own = (_host_name(urlsplit(self.public_base_url).hostname or ""),) if self.public_base_url else ()
        return own + (self.allowed_hosts or LOOPBACK_HOSTS)

    def accepts_host(self, host_name: str) -> bool:
        """Whether a request addressed to `host_name` (its Host header, port left off) is served. Links
        in development are built from the Host header, so a name nobody configured must not build them
        (Django refuses unknown hosts too). `*` accepts any; `.example.ng` the domain and its subdomains."""
        name = _host_name(host_name)
        return any(
            pattern == "*"
            or name == pattern
            or (pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)))
            for pattern in self.accepted_hosts
        )

    def public_url(self, path: str, request_origin: str) -> str:
        """`path` under PUBLIC_BASE_URL. Production always sets it, so the request's origin (its Host
        header is the client's to choose) only ever builds links in development and tests."""
        if self.public_base_url or self.is_production:
            return f"{self.public_base_url}{path}"
        return f"{request_origin}{path}"

    def check(self, refuse_production_problems: bool = True) -> Self:
        """Refuse settings that would be unsafe or broken; called once at start-up. `python -m server
        check --deploy` passes False to list production's problems with its own instead of stopping."""
        if self.env not in ENVIRONMENTS:
            raise ConfigurationError(f"ENV {self.env!r} is not one of {', '.join(ENVIRONMENTS)}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"TIME_ZONE {self.time_zone!r} is not a known time zone") from exc
        secret_mode = _key_mode(self.paystack_secret_key, "sk")
        public_mode = _key_mode(self.paystack_public_key, "pk")
        if secret_mode and public_mode and secret_mode != public_mode:
            raise ConfigurationError(
                f"PAYSTACK_SECRET_KEY is a {secret_mode} key but PAYSTACK_PUBLIC_KEY is a "
                f"{public_mode} key: use a pair from the same Paystack mode"
            )
        kept = self.cancellation_fee_kept_percent_after_assignment
        if not kept.is_finite() or not 0 <= kept <= 100:
            raise ConfigurationError(
                "CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT must be between 0 and 100, got "
                f"{self.cancellation_fee_kept_percent_after_assignment}"
            )
        for name, rule in self.rate_limits.items():
            _check_rate_limit(name, rule)
        if not 0 <= self.ws_ping_seconds <= 3600:  # nan fails too
            raise ConfigurationError(f"WS_PING_SECONDS must be between 0 and 3600, got {self.ws_ping_seconds}")
        if not 0 <= self.shutdown_grace_seconds <= 25:  # nan fails too; past 25 s Heroku's SIGKILL cuts it short
            raise ConfigurationError(
                f"SHUTDOWN_GRACE_SECONDS must be between 0 and 25, got {self.shutdown_grace_seconds}"
            )
        if not 0 <= self.listing_cache_seconds <= 60:  # nan fails too
            raise ConfigurationError(
                f"LISTING_CACHE_SECONDS must be between 0 and 60, got {self.listing_cache_seconds}"
            )
        if not 1 <= self.idempotency_lease_seconds <= 3600:  # nan fails too
            raise ConfigurationError(
                f"IDEMPOTENCY_LEASE_SECONDS must be between 1 and 3600, got {self.idempotency_lease_seconds}"
            )
        for name in (
            "notification_retention_days",
            "event_retention_days",
            "one_time_token_retention_days",
            "backup_keep_days",
        ):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name.upper()} must be 0 or more")
        if self.backup_keep_count < 1:
            raise ConfigurationError("BACKUP_KEEP_COUNT must be at least 1")
        if self.backup_schedule and self.backup_schedule != "external":  # external: the platform's own (PGBackups)
            from croniter import croniter

            if not croniter.is_valid(self.backup_schedule):
                raise ConfigurationError(
                    f"BACKUP_SCHEDULE {self.backup_schedule!r} is not a cron expression "
                    "(e.g. '30 2 * * *': every day at 02:30 UTC) or 'external'"
                )
        for name in ("email_verification_hours", "password_reset_minutes"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name.upper()} must be at least 1")
        if self.paystack_local_checkout and self.is_production:
            raise ConfigurationError("the local Paystack checkout never runs with ENV=production")
        if not self.is_production or not refuse_production_problems:
            return self
        problems = self.production_problems()
        if problems:
            raise ConfigurationError("ENV=production refuses to start: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What ENV=production refuses, as one sentence each (naming settings, never their values)."""
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", self.secret_key),
                ("DATABASE_URL", self.extra.get("database_url_set")),
                ("PAYSTACK_SECRET_KEY", self.paystack_secret_key),
                ("PAYSTACK_PUBLIC_KEY", self.paystack_public_key),
                ("PUBLIC_BASE_URL", self.public_base_url),
            )
            if not value
        ]
        problems: list[str | None] = [f"{name} is missing" for name in missing]
        if self.secret_key in (DEV_SECRET_KEY, EXAMPLE_SECRET_KEY):
            problems.append("SECRET_KEY is a published development value")
        elif self.secret_key and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            problems.append(f"SECRET_KEY is weak (shorter than {MIN_SECRET_KEY_LENGTH} characters)")
        elif self.secret_key:  # long enough, but 32 × "a" is as long as a random key
            problems.append(settings_hardening.secret_problem("SECRET_KEY", self.secret_key))
        if urlsplit(self.database_url).scheme.startswith("sqlite") and "DATABASE_URL" not in missing:
            problems.append("DATABASE_URL is SQLite (production needs PostgreSQL)")
        if self.bcrypt_rounds < MIN_BCRYPT_ROUNDS:
            problems.append(f"BCRYPT_ROUNDS={self.bcrypt_rounds} is below {MIN_BCRYPT_ROUNDS}")
        if (
            "test" in (_key_mode(self.paystack_secret_key, "sk"), _key_mode(self.paystack_public_key, "pk"))
            and not self.paystack_allow_test_keys
        ):
            problems.append(
                "the Paystack keys are test keys (set PAYSTACK_ALLOW_TEST_KEYS=true if that is "
                "intended, e.g. for a staging deployment)"
            )
        if self.public_base_url and not _is_absolute_http_url(self.public_base_url):
            problems.append(f"PUBLIC_BASE_URL {self.public_base_url!r} is not an absolute http(s) URL")
        problems.extend(
            settings_hardening.hardening_problems(
                self.paystack_secret_key,
                self.paystack_webhook_secret,
                self.trusted_proxies,
                self.public_base_url,
                (LOCAL_CHECKOUT_SECRET_KEY,),
            )
        )
        return [problem for problem in problems if problem]


def load_settings(
    environ: Mapping[str, str] | None = None, read_dotenv: bool = True, refuse_production_problems: bool = True
) -> Settings:
    """Build Settings from environment variables (and `.env` outside production)."""
    if environ is None:
        if read_dotenv and os.environ.get("ENV", "development") != "production":
            from dotenv import load_dotenv

            load_dotenv(PROJECT_ROOT / ".env", override=False)
        environ = os.environ
    get = environ.get
    defaults = Settings()
    local_checkout = (
        get("ENV", defaults.env) != "production" and not get("PAYSTACK_SECRET_KEY") and not get("PAYSTACK_PUBLIC_KEY")
    )
    secret_key = get("PAYSTACK_SECRET_KEY", "") or (LOCAL_CHECKOUT_SECRET_KEY if local_checkout else "")
    try:
        settings = Settings(
            env=get("ENV", defaults.env),
            secret_key=get("SECRET_KEY", "") or (defaults.secret_key if get("ENV") != "production" else ""),
            database_url=get("DATABASE_URL") or defaults.database_url,
            redis_url=redis_url_with_cert_policy(get("REDIS_URL", ""), _redis_cert_reqs(get("REDIS_SSL_CERT_REQS"))),
            paystack_secret_key=secret_key,
            paystack_public_key=get("PAYSTACK_PUBLIC_KEY", "") or (LOCAL_CHECKOUT_PUBLIC_KEY if local_checkout else ""),
            paystack_webhook_secret=get("PAYSTACK_WEBHOOK_SECRET") or secret_key,
            paystack_base_url=(get("PAYSTACK_BASE_URL") or defaults.paystack_base_url).rstrip("/"),
            paystack_callback_url=get("PAYSTACK_CALLBACK_URL", ""),
            paystack_timeout=float(get("PAYSTACK_TIMEOUT") or defaults.paystack_timeout),
            paystack_allow_test_keys=_bool(get("PAYSTACK_ALLOW_TEST_KEYS", "false")),
            paystack_local_checkout=local_checkout,
            payment_reconcile_after=int(get("PAYMENT_RECONCILE_AFTER") or defaults.payment_reconcile_after),
            payment_abandon_after=int(get("PAYMENT_ABANDON_AFTER") or defaults.payment_abandon_after),
            payout_reconcile_after=int(get("PAYOUT_RECONCILE_AFTER") or defaults.payout_reconcile_after),
            paystack_banks_ttl=int(get("PAYSTACK_BANKS_TTL") or defaults.paystack_banks_ttl),
            cancellation_fee_kept_percent_after_assignment=Decimal(
                get("CANCELLATION_FEE_KEPT_PERCENT_AFTER_ASSIGNMENT")
                or defaults.cancellation_fee_kept_percent_after_assignment
            ),
            email_host=get("EMAIL_HOST", ""),
            email_port=int(get("EMAIL_PORT") or defaults.email_port),
            email_host_user=get("EMAIL_HOST_USER", ""),
            email_host_password=get("EMAIL_HOST_PASSWORD", ""),
            email_use_tls=_bool(get("EMAIL_USE_TLS", "true")),
            default_from_email=get("DEFAULT_FROM_EMAIL") or defaults.default_from_email,
            cors_allowed_origins=_cors_origins(get("ENV", defaults.env), get("CORS_ALLOWED_ORIGINS")),
            sentry_dsn=get("SENTRY_DSN", ""),
            metrics_token=get("METRICS_TOKEN", ""),
            port=int(get("PORT") or defaults.port),
            log_format=_log_format(get("LOG_FORMAT")),
            log_level=(get("LOG_LEVEL") or defaults.log_level).upper(),
            time_zone=get("TIME_ZONE") or defaults.time_zone,
            emergency_booking_fee=Decimal(get("EMERGENCY_BOOKING_FEE") or defaults.emergency_booking_fee),
            standard_booking_fee=Decimal(get("STANDARD_BOOKING_FEE") or defaults.standard_booking_fee),
            bcrypt_rounds=int(get("BCRYPT_ROUNDS") or defaults.bcrypt_rounds),
            db_pool_size=int(get("DB_POOL_SIZE") or defaults.db_pool_size),
            startup_wait_seconds=float(wait) if (wait := get("STARTUP_WAIT_SECONDS")) else None,
            listing_cache_seconds=float(get("LISTING_CACHE_SECONDS") or defaults.listing_cache_seconds),
            idempotency_lease_seconds=float(get("IDEMPOTENCY_LEASE_SECONDS") or defaults.idempotency_lease_seconds),
            ws_ping_seconds=float(get("WS_PING_SECONDS") or defaults.ws_ping_seconds),
            shutdown_grace_seconds=float(get("SHUTDOWN_GRACE_SECONDS") or defaults.shutdown_grace_seconds),
            ws_max_sockets_per_user=int(get("WS_MAX_SOCKETS_PER_USER") or defaults.ws_max_sockets_per_user),
            email_verification_hours=int(get("EMAIL_VERIFICATION_HOURS") or defaults.email_verification_hours),
            password_reset_minutes=int(get("PASSWORD_RESET_MINUTES") or defaults.password_reset_minutes),
            public_base_url=get("PUBLIC_BASE_URL", "").rstrip("/"),  # paths are appended to it
            notification_retention_days=int(get("NOTIFICATION_RETENTION_DAYS") or defaults.notification_retention_days),
            event_retention_days=int(get("EVENT_RETENTION_DAYS") or defaults.event_retention_days),
            one_time_token_retention_days=int(
                get("ONE_TIME_TOKEN_RETENTION_DAYS") or defaults.one_time_token_retention_days
            ),
            backup_dir=get("BACKUP_DIR", ""),
            backup_schedule=get("BACKUP_SCHEDULE", "").strip(),
            backup_keep_count=int(get("BACKUP_KEEP_COUNT") or defaults.backup_keep_count),
            backup_keep_days=int(get("BACKUP_KEEP_DAYS") or defaults.backup_keep_days),
            allowed_hosts=tuple(_host_name(host) for host in _list(get("ALLOWED_HOSTS"))),
            trusted_proxies=_networks(get("TRUSTED_PROXIES")),
            rate_limits=_rate_limits(get),
            extra={"database_url_set": bool(get("DATABASE_URL"))},
        )
    except (ValueError, ArithmeticError) as exc:
        raise ConfigurationError(f"A numeric setting could not be read: {exc}") from exc
    return settings.check(refuse_production_problems)
