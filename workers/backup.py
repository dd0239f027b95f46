"""Database backups: `pg_dump --format=custom` files in BACKUP_DIR, and their restore.

    python -m server backup [--dir DIR]          one dump now, then the old ones pruned
    python -m server restore FILE [--database-url URL]
                                                 pg_restore --exit-on-error into a new or empty database
                                                 (the server command migrates it afterwards)

A dump is written as `<name>.partial` and renamed when pg_dump succeeded, so a half-written file is
never taken for a backup (nor pruned as one). Pruning keeps the newest BACKUP_KEEP_COUNT whatever their
age, and deletes the older ones once older than BACKUP_KEEP_DAYS. The password travels to pg_dump and
pg_restore in PGPASSWORD, never on their command line (which `ps` shows to every user of the machine).

The `cron` process takes a backup on BACKUP_SCHEDULE (`BackupSchedule`), in a thread of its own: a
dump may take minutes, and must neither hold up the periodic jobs nor a worker's deliveries.
"""

import logging
import os
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("serviceman.backup")

PREFIX, SUFFIX = "serviceman-", ".dump"
_NAME = re.compile(rf"^{PREFIX}(\d{{8}}T\d{{6}}Z){re.escape(SUFFIX)}$")
EXTERNAL = "external"  # BACKUP_SCHEDULE=external: the platform takes them (Heroku PGBackups)


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed, or cannot run here; the message says why in one line."""


def libpq_target(database_url):
    """(URL without its password, environment with PGPASSWORD) for pg_dump/pg_restore's --dbname."""
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("postgres"):
        raise BackupError(
            "backups need PostgreSQL (DATABASE_URL is not a postgresql:// URL); "
            "a SQLite database is one file: copy it while the server is stopped"
        )
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    url = urlunsplit(("postgresql", netloc, parts.path, parts.query, ""))
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    return url, env


def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed on this machine (Debian: apt-get install postgresql-client)")
    return path


def _run(command, env, what):
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        # pg_dump/pg_restore messages name objects and the server, never the password
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{what} failed (exit {result.returncode}): {lines[-1] if lines else 'no message'}")
    return result


def backup_time(path):
    """When a backup file was taken (from its name), or None for a file that is not one of ours."""
    match = _NAME.match(Path(path).name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def list_backups(directory):
    """Our backup files in `directory`, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [path for path in directory.iterdir() if path.is_file() and backup_time(path) is not None]
    return sorted(found, key=backup_time, reverse=True)


def prune(directory, keep_count, keep_days, now=None):
    """Delete backups beyond the newest `keep_count` that are older than `keep_days`; the deleted paths."""
    now = now or datetime.now(UTC)
    deleted = []
    for path in list_backups(directory)[keep_count:]:
        if now - backup_time(path) > timedelta(days=keep_days):
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def take_backup(database_url, directory, keep_count, keep_days, now=None):
    """Dump the database into `directory` (created if missing), then prune; the new file's path."""
    now = now or datetime.now(UTC)
    url, env = libpq_target(database_url)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{now:%Y%m%dT%H%M%SZ}{SUFFIX}"
    partial = final.with_name(final.name + ".partial")
    try:
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={url}",
            ],
            env,
            "pg_dump",
        )
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    for old in prune(directory, keep_count, keep_days, now):
        log.info("backup %s deleted (retention)", old.name)
    log.info("backup %s taken (%d bytes)", final.name, final.stat().st_size)
    return final


def restore_backup(path, database_url):
    """pg_restore `path` into `database_url`'s database, which must exist and hold no table (a restore
    over existing rows would mix two databases). One transaction: on the first error nothing is left."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    url, env = libpq_target(database_url)
    _run(
        [
            _tool("pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            f"--dbname={url}",
            str(path),
        ],
        env,
        "pg_restore",
    )


def backup_settings_problem(settings):
    """Why the cron process cannot take backups with these settings, or None (none asked for, or fine)."""
    if not settings.backup_schedule or settings.backup_schedule == EXTERNAL:
        return None
    if not settings.backup_dir:
        return "BACKUP_SCHEDULE is set but BACKUP_DIR is not: say where the backups go"
    if shutil.which("pg_dump") is None:
        return "BACKUP_SCHEDULE is set but pg_dump is not installed on this machine (apt-get install postgresql-client)"
    return None


class BackupSchedule:
    """BACKUP_SCHEDULE for the cron process: `tick()` starts a backup in a thread when one fell due (at
    most one at a time; a run that is still going when the next falls due makes that one skip)."""

    def __init__(self, settings, now=None):
        from croniter import croniter

        self.settings = settings
        self.iterator = croniter(settings.backup_schedule, now or datetime.now(UTC))
        self.next_at = self.iterator.get_next(datetime)
        self.thread = None
        self.last_result = None

    @classmethod
    def from_settings(cls, settings):
        if not settings.backup_schedule or settings.backup_schedule == EXTERNAL:
            return None
        problem = backup_settings_problem(settings)
        if problem:
            raise BackupError(problem)
        return cls(settings)

    def seconds_until_due(self, now=None):
        return max(0.0, (self.next_at - (now or datetime.now(UTC))).total_seconds())

    def tick(self, now=None):
        """Start the backup that fell due; True when one was started."""
        now = now or datetime.now(UTC)
        if now < self.next_at:
            return False
        while self.next_at <= now:  # a cron process asleep through several runs takes one, not all
            self.next_at = self.iterator.get_next(datetime)
        if self.thread is not None and self.thread.is_alive():
            log.warning("backup due but the previous one is still running: skipped")
            return False
        self.thread = threading.Thread(target=self._run, name="backup", daemon=True)
        self.thread.start()
        return True

    def _run(self):
        s = self.settings
        try:
            self.last_result = take_backup(s.database_url, s.backup_dir, s.backup_keep_count, s.backup_keep_days)
        except Exception as exc:  # reported (Sentry sees logged errors); the next run tries again
            self.last_result = exc
            log.error("scheduled backup failed: %s", exc, exc_info=not isinstance(exc, BackupError))

    def join(self, timeout=None):
        if self.thread is not None:
            self.thread.join(timeout)
