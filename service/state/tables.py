"""The operational tables, as SQLAlchemy Core: what the repositories query and what the
migrations must produce (a test compares the two).

Times are epoch milliseconds (BIGINT), as everywhere in parkflow. Ids that leave the database
(an alert's, a notification's) are UUIDs as text, so the same id works on both backends and in
a payload. The detection results (``service/results.py``: runs, their surpluses, opportunities,
plan and the events between runs) are here too, each finding's full record as JSON text beside
the columns the queries filter and sort on.
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
    # what the last observation that carried them knew (an opportunity's parties, a
    # surplus's figures): a notice that the condition ended is rendered from them
    sa.Column("facts", sa.JSON),
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
    # the URL, mailbox or topic: with the channel, the key of its row in ``endpoints``
    sa.Column("endpoint", sa.String(2100), nullable=False, server_default=""),
    sa.Column("recipient", sa.String(400), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    sa.Column("sent_ms", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Index(None, "sent_ms", "next_attempt_ms"),
    sa.Index(None, "channel", "endpoint", "alert_id", "sent_ms"),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    # Delivery state of one URL, mailbox or topic, shared by all its notifications: one that
    # fails is backed off as a whole (not once per queued notification) and disabled on time.
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("endpoint", sa.String(2100), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("failing_since_ms", sa.BigInteger),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    sa.Column("disabled_ms", sa.BigInteger),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("last_error", sa.Text),
)

consents = sa.Table(
    "consents",
    metadata,
    # One row per opportunity and party: who recorded the party's consent to be introduced,
    # when, and whether it was withdrawn (and by whom). Both parties' rows, neither
    # withdrawn, let alerts name the counterpart.
    sa.Column("opportunity_id", sa.String(400), primary_key=True),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("given_ms", sa.BigInteger, nullable=False),
    sa.Column("given_by", sa.String(200), nullable=False),
    sa.Column("withdrawn_ms", sa.BigInteger),
    sa.Column("withdrawn_by", sa.String(200)),
    sa.Column("note", sa.Text),
)


# -- detection results (service/results.py); money in integer dong, as the plan books it ------
# Run and event ids only grow (SQLite AUTOINCREMENT, a PostgreSQL sequence): a reader of events
# pages by id, and an id is never reused after a failed run is deleted by hand.

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("started_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("n_surpluses", sa.Integer, nullable=False),
    sa.Column("n_opportunities", sa.Integer, nullable=False),
    # the one park a leased replica ran detection for; NULL: every park of the registry
    sa.Column("park", sa.String(100)),
    sa.Column("replica", sa.String(200)),  # the leased replica that ran it (None: not leased)
    sa.Index(None, "status", "id"),
    sa.Index(None, "park", "status", "id"),
    sqlite_autoincrement=True,
)

surpluses = sa.Table(
    "surpluses",
    metadata,
    sa.Column("run_id", _SERIAL, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("id", sa.String(400), primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("size", sa.Float, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

opportunities = sa.Table(
    "opportunities",
    metadata,
    sa.Column("run_id", _SERIAL, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("id", sa.String(400), primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("from_tenant", sa.String(100), nullable=False),
    sa.Column("to_tenant", sa.String(100), nullable=False),
    sa.Column("size", sa.Float, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("run_id", _SERIAL, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("subject_id", sa.String(400), nullable=False),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("tenants", sa.Text, nullable=False),  # a JSON list
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("before", sa.Float),
    sa.Column("after", sa.Float),
    sa.Index(None, "created_ms"),
    sqlite_autoincrement=True,
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("run_id", _SERIAL, sa.ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    sa.Column("park_vnd_per_year", sa.BigInteger, nullable=False),
    sa.Column("co2e_avoided_t_per_year", sa.Float, nullable=False),
    sa.Column("water_saved_m3_per_year", sa.Float, nullable=False),
    sa.Column("landfill_diverted_t_per_year", sa.Float, nullable=False),
    sa.Column("capex_vnd", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # optimal, or what kept a part from it
    sa.Column("n_links", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

plan_links = sa.Table(
    "plan_links",
    metadata,
    sa.Column("run_id", _SERIAL, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("opportunity_id", sa.String(400), primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("park_vnd_per_year", sa.BigInteger, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
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

# -- exchanges: the pipeline, what is registered, and the verified days (revision 0004) -------

exchanges = sa.Table(
    "exchanges",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("stage_ms", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("barrier", sa.String(16)),
    sa.Column("legal_status", sa.String(32), nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("opportunity_id", sa.String(400)),
    # the opportunity's figures; from agreed on frozen (the M&V baseline)
    sa.Column("projection", sa.JSON),
    sa.Column("frozen", sa.Boolean, nullable=False),
    # what is registered: NULL until the parties and the metering are known
    sa.Column("supplier", sa.String(100)),
    sa.Column("receiver", sa.String(100)),
    sa.Column("resource", sa.String(100)),
    sa.Column("unit", sa.String(32)),
    sa.Column("benefit", sa.String(16)),
    sa.Column("from_meter", sa.String(100)),
    sa.Column("to_meter", sa.String(100)),
    sa.Column("metering", sa.JSON),
    sa.Column("start_day", sa.Date),
    sa.Column("end_day", sa.Date),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "park", "stage"),
)

exchange_moves = sa.Table(
    "exchange_moves",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("exchange_id", sa.String(100), sa.ForeignKey("exchanges.id"), nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("from_stage", sa.String(16)),
    sa.Column("to_stage", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Index(None, "exchange_id", "id"),
)

# Money per unit as Decimal text: exact on both backends (SQLite has no exact decimal type).
exchange_prices = sa.Table(
    "exchange_prices",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("exchange_id", sa.String(100), sa.ForeignKey("exchanges.id"), nullable=False),
    sa.Column("item", sa.String(32), nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("vnd_per_unit", sa.String(40), nullable=False),
    sa.Column("paid_by", sa.String(16)),
    sa.Column("hours", sa.JSON, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index(None, "exchange_id", "item", "effective"),
)

exchange_factors = sa.Table(
    "exchange_factors",
    metadata,
    sa.Column("exchange_id", sa.String(100), sa.ForeignKey("exchanges.id"), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("t_per_unit", sa.String(40), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
)

exchange_savings = sa.Table(
    "exchange_savings",
    metadata,
    sa.Column("exchange_id", sa.String(100), sa.ForeignKey("exchanges.id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("park", sa.String(100), nullable=False),
    sa.Column("hours_measured", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Float, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("supplier_vnd", sa.BigInteger, nullable=False),
    sa.Column("receiver_vnd", sa.BigInteger, nullable=False),
    sa.Column("park_vnd", sa.BigInteger, nullable=False),
    sa.Column("water_m3", sa.Float, nullable=False),
    sa.Column("co2e_t", sa.Float, nullable=False),
    sa.Column("landfill_t", sa.Float, nullable=False),
    sa.Column("factor_year", sa.Integer),
    sa.Column("check_quantity", sa.Float),
    sa.Column("loss", sa.Float),
    sa.Column("disagrees", sa.Boolean, nullable=False),
    sa.Column("unpriced_hours", sa.Integer, nullable=False),
    sa.Column("computed_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "park", "day"),
)


# -- parks leased to replicas (service/leases.py, revision 0006) --------------------------------

park_leases = sa.Table(
    "park_leases",
    metadata,
    sa.Column("park", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200)),  # NULL: released, free to take
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    # bumped whenever the park changes hands: a writer checks the epoch it took the park at,
    # so a replica that lost the park (paused past its lease) cannot write over its taker
    sa.Column("epoch", sa.BigInteger, nullable=False),
)

lease_holders = sa.Table(
    "lease_holders",
    metadata,
    # each replica's heartbeat: a replica holding nothing yet still counts in the fair share
    sa.Column("holder", sa.String(200), primary_key=True),
    sa.Column("seen_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)
