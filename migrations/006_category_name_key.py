"""006_category_name_key: a category name is unique regardless of case ("carpentry" beside "Carpentry")."""

import peewee as pw
from peewee_migrate import Migrator
from playhouse.migrate import SchemaMigrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    # Nullable while existing rows are filled in (NULLs never clash in a unique index), then NOT NULL.
    migrator.add_fields("category", name_key=pw.CharField(max_length=100, null=True, unique=True))

    def fill_keys():
        category = migrator.orm["category"]
        for row in category.select(category.id, category.name):
            category.update(name_key=row.name.strip().casefold()).where(category.id == row.id).execute()

    def require_keys():
        # Not migrator.add_not_null: it would mark the field NOT NULL before add_column has run.
        SchemaMigrator.from_database(database).add_not_null("category", "name_key").run()

    migrator.run(fill_keys)
    migrator.run(require_keys)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("category", "name_key")
