"""`python -m server check --deploy`: the production checklist in one command (as Django's).

It judges the settings as production would, whatever ENV says, and lists every problem in one run
(start-up stops at the same ones, but only with ENV=production): what production refuses (weak or
published secrets, SQLite, test keys, an http:// base URL, TRUSTED_PROXIES that would trust anyone),
and what it allows but an operator must not forget: backups, error reporting and its scrubbing, email,
the Redis pipeline, host and origin lists that accept anything, sockets nobody pings. Then the same
database, migration and Redis checks as `check`. Each problem names the setting and what to do,
never a secret's value.
"""

import shutil
from urllib.parse import urlsplit

from models import bind
from server import error_reporting
from server.startup import StartupError, check_migrated, check_redis
from workers.backup import EXTERNAL, backup_settings_problem

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _environment(settings):
    if settings.is_production:
        return []
    return [
        f"ENV is {settings.env!r}: production runs with ENV=production (which refuses to start on most of what follows)"
    ]


def _backups(settings):
    if not settings.backup_schedule:
        return [
            "no backup schedule: set BACKUP_SCHEDULE (a cron expression, e.g. '30 2 * * *') and BACKUP_DIR "
            "for the cron process to take pg_dump backups, or, when the platform takes them (Heroku "
            f"PGBackups: heroku pg:backups:schedule), BACKUP_SCHEDULE={EXTERNAL}"
        ]
    problem = backup_settings_problem(settings)
    return [problem] if problem else []


def _error_reporting(settings):
    if not settings.sentry_dsn:
        return ["SENTRY_DSN is not set: errors in the web, dispatcher, worker and cron processes reach no one"]
    import sentry_sdk  # optional: only with SENTRY_DSN

    # What server/error_reporting.py sets up, and what this process's client really runs with (a second
    # sentry_sdk.init elsewhere would replace the scrubbing).
    client = sentry_sdk.get_client()
    unscrubbed = []
    for options in (error_reporting.sentry_options(settings), client.options if client.is_active() else {}):
        if not options:
            continue
        unscrubbed += [
            name
            for name, wanted in (
                ("send_default_pii", False),
                ("include_local_variables", False),
                ("max_request_body_size", "never"),
            )
            if options.get(name) != wanted and name not in unscrubbed
        ]
        for name in ("before_send", "event_scrubber"):
            if options.get(name) is None and name not in unscrubbed:
                unscrubbed.append(name)
    if unscrubbed:
        return [
            f"error reports are not scrubbed ({', '.join(unscrubbed)}): Sentry must be set up by "
            "server/error_reporting.py only, or reports carry passwords, tokens and email addresses"
        ]
    return []


def _hosts_and_origins(settings):
    problems = []
    if "*" in settings.allowed_hosts:
        problems.append("ALLOWED_HOSTS contains '*': any Host header is served; list your host names")
    clear = [
        origin
        for origin in settings.cors_allowed_origins
        if origin == "*" or (urlsplit(origin).scheme == "http" and urlsplit(origin).hostname not in LOOPBACK)
    ]
    if clear:
        problems.append(
            f"CORS_ALLOWED_ORIGINS has {', '.join(clear)}: list only https:// origins of your own front ends"
        )
    return problems


def _pipeline_and_email(settings):
    problems = []
    if not settings.redis_url:
        problems.append(
            "REDIS_URL is not set: the whole pipeline runs inside one web process (no dispatcher, "
            "worker or cron process, no second web process)"
        )
    if not settings.email_host:
        problems.append("EMAIL_HOST is not set: emails (verification, password resets) are only logged")
    elif not settings.email_use_tls and settings.email_host not in LOOPBACK:
        problems.append(
            f"EMAIL_USE_TLS is false for {settings.email_host}: reset links would cross the network in clear"
        )
    if settings.ws_ping_seconds == 0:
        problems.append(
            "WS_PING_SECONDS is 0: dead sockets are never noticed, and a proxy cuts idle ones at its "
            "read timeout (docs/deploy/nginx.conf expects pings every 20 s)"
        )
    return problems


def _servers(settings):
    problems = []
    try:
        bind(settings.database_url)
        check_migrated(settings.database_url)
    except StartupError as exc:
        problems.append(str(exc))
    if settings.redis_url:
        try:
            check_redis(settings.redis_url)
        except StartupError as exc:
            problems.append(str(exc))
    return problems


def deploy_problems(settings, check_servers=True):
    """Every problem of `settings` for a production deployment, one sentence each; [] when none."""
    problems = _environment(settings)
    # What ENV=production refuses, checked whatever ENV is: TRUSTED_PROXIES that would trust anyone
    # (wider than a private /8 or a public /24) is among them (models/foundation/settings_hardening.py).
    problems += settings.production_problems()
    problems += _backups(settings)
    problems += _error_reporting(settings)
    problems += _hosts_and_origins(settings)
    problems += _pipeline_and_email(settings)
    if shutil.which("pg_restore") is None and settings.backup_schedule and settings.backup_schedule != EXTERNAL:
        problems.append("pg_restore is not installed here: a backup you cannot restore is not a backup")
    if check_servers:
        problems += _servers(settings)
    return problems
