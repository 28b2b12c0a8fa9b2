"""Detection results: runs, their surpluses, opportunities and plan, and the events between
runs (until this revision in a SQLite file of their own, ``PARKFLOW_STATE_PATH``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=f"fk_{table}_run_id_runs")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("n_surpluses", sa.Integer(), nullable=False),
        sa.Column("n_opportunities", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_status_id", "runs", ["status", "id"])
    op.create_table(
        "surpluses",
        sa.Column("run_id", _SERIAL, nullable=False),
        sa.Column("id", sa.String(400), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("size", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _run_fk("surpluses"),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_surpluses"),
    )
    op.create_table(
        "opportunities",
        sa.Column("run_id", _SERIAL, nullable=False),
        sa.Column("id", sa.String(400), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("from_tenant", sa.String(100), nullable=False),
        sa.Column("to_tenant", sa.String(100), nullable=False),
        sa.Column("size", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _run_fk("opportunities"),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_opportunities"),
    )
    op.create_table(
        "run_events",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("run_id", _SERIAL, nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(400), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("tenants", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("before", sa.Float(), nullable=True),
        sa.Column("after", sa.Float(), nullable=True),
        _run_fk("run_events"),
        sa.PrimaryKeyConstraint("id", name="pk_run_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_run_events_created_ms", "run_events", ["created_ms"])
    op.create_table(
        "plans",
        sa.Column("run_id", _SERIAL, autoincrement=False, nullable=False),
        sa.Column("park_vnd_per_year", sa.BigInteger(), nullable=False),
        sa.Column("co2e_avoided_t_per_year", sa.Float(), nullable=False),
        sa.Column("water_saved_m3_per_year", sa.Float(), nullable=False),
        sa.Column("landfill_diverted_t_per_year", sa.Float(), nullable=False),
        sa.Column("capex_vnd", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("n_links", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _run_fk("plans"),
        sa.PrimaryKeyConstraint("run_id", name="pk_plans"),
    )
    op.create_table(
        "plan_links",
        sa.Column("run_id", _SERIAL, nullable=False),
        sa.Column("opportunity_id", sa.String(400), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("park_vnd_per_year", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _run_fk("plan_links"),
        sa.PrimaryKeyConstraint("run_id", "opportunity_id", name="pk_plan_links"),
    )


def downgrade() -> None:
    op.drop_table("plan_links")
    op.drop_table("plans")
    op.drop_table("run_events")
    op.drop_table("opportunities")
    op.drop_table("surpluses")
    op.drop_index("ix_runs_status_id", table_name="runs")
    op.drop_table("runs")
