"""The operational tables, as SQLAlchemy Core: what the repositories query and what the
migrations must produce (a test compares the two).

Times are epoch milliseconds (BIGINT), as everywhere in parkflow. Ids that leave the database
(an alert's, a notification's) are UUIDs as text, so the same id works on both backends and in
a payload. The detection results (``service/results.py``) are still in their own SQLite file;
when they move here they get tables of their own in a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite assigns rowids only to an INTEGER PRIMARY KEY; PostgreSQL's history outgrows 2^31.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(400), nullable=False),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("tenant", sa.String(100)),
    sa.Column("severity", sa.String(16), nullable=False),
    # NULL while the condition is pending (holds, not yet for N evaluations) and never opened
    sa.Column("status", sa.String(16)),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("holds", sa.Integer, nullable=False),
    sa.Column("clears", sa.Integer, nullable=False),
    sa.Column("opened_ms", sa.BigInteger),
    sa.Column("acknowledged_ms", sa.BigInteger),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("resolved_ms", sa.BigInteger),
    sa.Column("last_notified_ms", sa.BigInteger),
    sa.Column("evaluated_ms", sa.BigInteger, nullable=False),
    # One row per (kind, subject), whatever its state: a condition that returns re-opens its
    # alert, so "one open alert per (kind, subject)" is this key, kept by the database even
    # when two evaluators race. Each episode is in the history.
    sa.UniqueConstraint("kind", "subject"),
    sa.Index(None, "status", "kind"),
    sa.Index(None, "park", "tenant"),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16)),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("silenced", sa.Boolean, nullable=False),
    sa.Index(None, "alert_id", "id"),
)

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(64)),
    sa.Column("subject", sa.String(400)),
    sa.Column("until_ms", sa.BigInteger, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.CheckConstraint("kind IS NOT NULL OR subject IS NOT NULL", name="kind_or_subject"),
    sa.Index(None, "until_ms"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # the idempotency key a channel sees: a notification retried is the same notification
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("history_id", _SERIAL, sa.ForeignKey("alert_history.id"), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("recipient", sa.String(400), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    sa.Column("sent_ms", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Index(None, "sent_ms", "next_attempt_ms"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("park", sa.String(100)),
    sa.Column("tenant", sa.String(100)),
    # HMAC-SHA256 of the key under the server's pepper, hex: the key itself is never stored
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_ms", sa.BigInteger),
    sa.UniqueConstraint("digest"),
    sa.CheckConstraint(
        "(role = 'operator' AND tenant IS NULL)"
        " OR (role = 'tenant' AND park IS NOT NULL AND tenant IS NOT NULL)",
        name="role_scope",
    ),
)
