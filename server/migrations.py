"""peewee-migrate wiring: `python -m server migrate` and the test session apply the same migrations."""

import logging

from peewee_migrate import Router

from models.foundation.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def router(db):
    return Router(db, migrate_dir=MIGRATIONS_DIR, logger=logging.getLogger("serviceman.migrate"))


def migrate(db):
    """Apply every migration not applied yet; returns the names applied."""
    return router(db).run()
