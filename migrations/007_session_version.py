"""007_session_version: ending every session of a user at once (reset, change, deactivation, suspension).

Every token carries the user's session_version when issued (claim `sv`); bumping it refuses them all.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("user", session_version=pw.IntegerField(default=0))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("user", "session_version")
