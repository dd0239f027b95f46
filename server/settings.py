"""Settings read from the environment only; `.env` is read in development.

One frozen object is built at start-up and passed around, so tests can build their own
without touching os.environ.
"""
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # refused when ENV=production


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; start-up stops with this message."""


def _bool(value):
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _list(value):
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    secret_key: str = DEV_SECRET_KEY
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'serviceman.sqlite3'}"
    redis_url: str = ""
    paystack_secret_key: str = ""
    paystack_public_key: str = ""
    paystack_webhook_secret: str = ""
    paystack_base_url: str = "https://api.paystack.co"
    paystack_callback_url: str = ""
    email_host: str = ""
    email_port: int = 587
    email_host_user: str = ""
    email_host_password: str = ""
    email_use_tls: bool = True
    default_from_email: str = "Serviceman <no-reply@serviceman.local>"
    cors_allowed_origins: tuple = ()
    sentry_dsn: str = ""
    port: int = 8000
    log_level: str = "INFO"
    time_zone: str = "Africa/Lagos"
    emergency_booking_fee: Decimal = Decimal("5000.00")
    standard_booking_fee: Decimal = Decimal("2000.00")
    bcrypt_rounds: int = 12
    db_pool_size: int = 8
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    public_base_url: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_production(self):
        return self.env == "production"

    @property
    def zone(self):
        return ZoneInfo(self.time_zone)

    def check(self):
        """Refuse settings that would be unsafe or broken; called once at start-up."""
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"TIME_ZONE {self.time_zone!r} is not a known time zone") from exc
        if not self.is_production:
            return self
        missing = []
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY:
            missing.append("SECRET_KEY")
        if not self.extra.get("database_url_set"):
            missing.append("DATABASE_URL")
        if not self.paystack_secret_key:
            missing.append("PAYSTACK_SECRET_KEY")
        if not self.paystack_public_key:
            missing.append("PAYSTACK_PUBLIC_KEY")
        if missing:
            raise ConfigurationError(
                "ENV=production needs these settings, which are missing: " + ", ".join(missing)
            )
        return self


def load_settings(environ=None, read_dotenv=True):
    """Build Settings from environment variables (and `.env` outside production)."""
    if environ is None:
        if read_dotenv and os.environ.get("ENV", "development") != "production":
            from dotenv import load_dotenv

            load_dotenv(PROJECT_ROOT / ".env", override=False)
        environ = os.environ
    get = environ.get
    defaults = Settings()
    try:
        settings = Settings(
            env=get("ENV", defaults.env),
            secret_key=get("SECRET_KEY", "") or (defaults.secret_key if get("ENV") != "production" else ""),
            database_url=get("DATABASE_URL") or defaults.database_url,
            redis_url=get("REDIS_URL", ""),
            paystack_secret_key=get("PAYSTACK_SECRET_KEY", ""),
            paystack_public_key=get("PAYSTACK_PUBLIC_KEY", ""),
            paystack_webhook_secret=get("PAYSTACK_WEBHOOK_SECRET") or get("PAYSTACK_SECRET_KEY", ""),
            paystack_base_url=get("PAYSTACK_BASE_URL") or defaults.paystack_base_url,
            paystack_callback_url=get("PAYSTACK_CALLBACK_URL", ""),
            email_host=get("EMAIL_HOST", ""),
            email_port=int(get("EMAIL_PORT") or defaults.email_port),
            email_host_user=get("EMAIL_HOST_USER", ""),
            email_host_password=get("EMAIL_HOST_PASSWORD", ""),
            email_use_tls=_bool(get("EMAIL_USE_TLS", "true")),
            default_from_email=get("DEFAULT_FROM_EMAIL") or defaults.default_from_email,
            cors_allowed_origins=tuple(_list(get("CORS_ALLOWED_ORIGINS"))),
            sentry_dsn=get("SENTRY_DSN", ""),
            port=int(get("PORT") or defaults.port),
            log_level=(get("LOG_LEVEL") or defaults.log_level).upper(),
            time_zone=get("TIME_ZONE") or defaults.time_zone,
            emergency_booking_fee=Decimal(get("EMERGENCY_BOOKING_FEE") or defaults.emergency_booking_fee),
            standard_booking_fee=Decimal(get("STANDARD_BOOKING_FEE") or defaults.standard_booking_fee),
            bcrypt_rounds=int(get("BCRYPT_ROUNDS") or defaults.bcrypt_rounds),
            db_pool_size=int(get("DB_POOL_SIZE") or defaults.db_pool_size),
            public_base_url=get("PUBLIC_BASE_URL", ""),
            extra={"database_url_set": bool(get("DATABASE_URL"))},
        )
    except (ValueError, ArithmeticError) as exc:
        raise ConfigurationError(f"A numeric setting could not be read: {exc}") from exc
    return settings.check()
