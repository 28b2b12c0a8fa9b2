"""The service's operational state in SQL: detection runs and their results, alerts, their
history, silences and the notification outbox (tenants' contact preferences move here later).

One URL names the database (``PARKFLOW_DATABASE_URL``): a SQLite file by default, PostgreSQL
for a park that runs several service processes or wants backups with its other databases. The
schema is Alembic's, shipped in ``migrations/`` and applied by ``parkflow db upgrade``; the
service refuses a database that is not at the revision its code was written for.
"""

from service.state.db import Database, Fence, redacted
from service.state.migrate import current_revision, head_revision, require_current, upgrade

__all__ = [
    "Database",
    "Fence",
    "current_revision",
    "head_revision",
    "redacted",
    "require_current",
    "upgrade",
]
