"""`python -m server check --deploy`: given a deployment's settings, it names every weak setting, a missing
backup schedule, unscrubbed error reporting and a proxy list that would trust anyone, each as one line
naming the setting (never a secret's value), and exits non-zero; a sound configuration passes."""

import os
import subprocess
import sys

import pytest

from models.foundation.settings import PROJECT_ROOT, load_settings
from server import deploy_check, error_reporting

from .conftest import TEST_DATABASE_URL, TEST_REDIS_URL

# Made-up values shaped like real ones (random-looking, as production's strength checks require).
SOUND = {
    "ENV": "production",
    "SECRET_KEY": "Xq3vT8nB1kZ6wR0mJ5yC9pL2sF7hD4gAeU1oI6tN3bV8",
    "DATABASE_URL": "postgresql://serviceman@db.internal:5432/serviceman",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "PAYSTACK_SECRET_KEY": "sk_live_7d2e9a4c1f8b3e6d0c5a2f9e4b7d1c8a3f6e0b9d",
    "PAYSTACK_PUBLIC_KEY": "pk_live_x",
    "PUBLIC_BASE_URL": "https://api.serviceman.ng",
    "TRUSTED_PROXIES": "127.0.0.1",
    "SENTRY_DSN": "https://0123456789abcdef@o1.ingest.sentry.io/1",
    "EMAIL_HOST": "smtp.serviceman.ng",
    "BACKUP_SCHEDULE": "30 2 * * *",
    "BACKUP_DIR": "/var/backups/serviceman",
}


def problems(**override):
    environ = {key: value for key, value in {**SOUND, **override}.items() if value is not None}
    settings = load_settings(environ=environ, refuse_production_problems=False)
    return deploy_check.deploy_problems(settings, check_servers=False)


def test_a_sound_production_configuration_passes():
    assert problems() == []


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"ENV": "test"}, "ENV is 'test'"),
        ({"SECRET_KEY": "a" * 40}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "change-me-development-only"}, "SECRET_KEY is a published development value"),
        ({"DATABASE_URL": "sqlite:///serviceman.sqlite3"}, "DATABASE_URL is SQLite"),
        ({"BCRYPT_ROUNDS": "8"}, "BCRYPT_ROUNDS=8 is below 10"),
        (
            {
                "PAYSTACK_SECRET_KEY": "sk_test_8e1d4b7a0c3f6e9d2b5a8c1f4e7d0a3b6c9f2e5d",
                "PAYSTACK_PUBLIC_KEY": "pk_test_x",
            },
            "the Paystack keys are test keys",
        ),
        ({"PAYSTACK_WEBHOOK_SECRET": "abcd" * 10}, "PAYSTACK_WEBHOOK_SECRET is weak"),
        ({"PUBLIC_BASE_URL": "http://api.serviceman.ng"}, "is plain http"),
        ({"TRUSTED_PROXIES": "0.0.0.0/0"}, "TRUSTED_PROXIES trusts 0.0.0.0/0"),
        ({"TRUSTED_PROXIES": "127.0.0.1,::/0"}, "TRUSTED_PROXIES trusts ::/0"),
        ({"BACKUP_SCHEDULE": None}, "no backup schedule"),
        ({"BACKUP_DIR": None}, "BACKUP_SCHEDULE is set but BACKUP_DIR is not"),
        ({"SENTRY_DSN": None}, "SENTRY_DSN is not set"),
        ({"REDIS_URL": None}, "REDIS_URL is not set"),
        ({"EMAIL_HOST": None}, "EMAIL_HOST is not set"),
        ({"EMAIL_USE_TLS": "false"}, "EMAIL_USE_TLS is false for smtp.serviceman.ng"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS contains '*'"),
        ({"CORS_ALLOWED_ORIGINS": "http://app.serviceman.ng"}, "CORS_ALLOWED_ORIGINS has http://app.serviceman.ng"),
        ({"WS_PING_SECONDS": "0"}, "WS_PING_SECONDS is 0"),
    ],
)
def test_each_weak_setting_is_named(override, expected):
    found = problems(**override)
    assert len(found) == 1, found
    assert expected in found[0], found
    for name, value in override.items():
        if "SECRET" in name and value:
            assert value not in found[0]  # a secret, however weak, is never echoed


def test_platform_backups_are_an_answer():
    assert problems(BACKUP_SCHEDULE="external", BACKUP_DIR=None) == []


def test_unscrubbed_error_reporting_is_named(monkeypatch):
    unscrubbed = dict(
        error_reporting.sentry_options(load_settings(environ=SOUND)),
        send_default_pii=True,
        include_local_variables=True,
        before_send=None,
    )
    monkeypatch.setattr(error_reporting, "sentry_options", lambda settings: unscrubbed)

    found = problems()
    assert len(found) == 1 and found[0].startswith("error reports are not scrubbed"), found
    assert "send_default_pii" in found[0] and "include_local_variables" in found[0] and "before_send" in found[0]


def test_every_problem_at_once_and_exit_status_from_the_command_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in SOUND and not key.startswith("TEST_")}
    env.update(
        SOUND,
        TRUSTED_PROXIES="0.0.0.0/0",
        SECRET_KEY="a" * 40,
        BACKUP_SCHEDULE="",
        SENTRY_DSN="",
        DATABASE_URL=f"sqlite:///{tmp_path}/empty.sqlite3",
        REDIS_URL="",
        LOG_LEVEL="WARNING",
    )

    finished = subprocess.run(
        [sys.executable, "-m", "server", "check", "--deploy"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1, finished
    lines = finished.stdout.splitlines()
    for expected in (
        "SECRET_KEY is weak",
        "DATABASE_URL is SQLite",
        "TRUSTED_PROXIES trusts 0.0.0.0/0",
        "no backup schedule",
        "SENTRY_DSN is not set",
        "REDIS_URL is not set",
        "has no tables yet",
    ):
        assert any(line.startswith("deploy: ") and expected in line for line in lines), (expected, lines)
    assert finished.stderr.strip().endswith(f"check --deploy: {len(lines)} problem(s) (README: Deployment)")
    assert "a" * 40 not in finished.stdout + finished.stderr


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgres") or not TEST_REDIS_URL,
    reason="a passing check --deploy needs PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL)",
)
def test_a_sound_deployment_passes_from_the_command_line(database, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env.update(
        SOUND, DATABASE_URL=TEST_DATABASE_URL, REDIS_URL=TEST_REDIS_URL, BACKUP_DIR=str(tmp_path), LOG_LEVEL="WARNING"
    )

    finished = subprocess.run(
        [sys.executable, "-m", "server", "check", "--deploy"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (finished.returncode, finished.stdout.strip()) == (0, "ok: no deployment problem found"), finished
