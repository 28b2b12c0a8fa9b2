"""Migrations run in-process: ``parkflow db upgrade`` and ``db current`` call these, and the
service calls ``require_current`` before it touches a table, so an old schema is a clear
message at start, not a missing column in the middle of the night."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from parkflow.errors import ConfigError
from service.state.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The revision this code was written for."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def current_revision(db: Database) -> str | None:
    """The database's revision (``None``: never migrated)."""
    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Apply the missing revisions in one transaction; returns (before, after)."""
    before = current_revision(db)
    config = _config()
    with db.transaction() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return before, current_revision(db) or ""


def require_current(db: Database) -> None:
    """Raise ``ConfigError`` unless the database is at this code's revision."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current is not None and current not in known:
        problem = (
            f"database at {db.shown} is at revision {current}, which this parkflow does not"
            f" know (written by a newer release?); this release needs {head}"
        )
    else:
        problem = (
            f"database at {db.shown} is at revision {current or 'none (never migrated)'},"
            f" needs {head}: run `parkflow db upgrade`"
        )
    raise ConfigError("database", [problem])
