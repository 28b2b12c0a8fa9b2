"""The embedded store: SQLite (one file, WAL), for one small park on one machine."""

from parkflow.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from parkflow.store.sqlite.store import SqliteStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]
