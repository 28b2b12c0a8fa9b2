"""Exchanges: the pipeline and its moves, dated prices, yearly emission factors and the
verified days of realised savings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("stage_ms", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("barrier", sa.String(16), nullable=True),
        sa.Column("legal_status", sa.String(32), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opportunity_id", sa.String(400), nullable=True),
        sa.Column("projection", sa.JSON(), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("supplier", sa.String(100), nullable=True),
        sa.Column("receiver", sa.String(100), nullable=True),
        sa.Column("resource", sa.String(100), nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("benefit", sa.String(16), nullable=True),
        sa.Column("from_meter", sa.String(100), nullable=True),
        sa.Column("to_meter", sa.String(100), nullable=True),
        sa.Column("metering", sa.JSON(), nullable=True),
        sa.Column("start_day", sa.Date(), nullable=True),
        sa.Column("end_day", sa.Date(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchanges"),
    )
    op.create_index("ix_exchanges_park_stage", "exchanges", ["park", "stage"])
    op.create_table(
        "exchange_moves",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("exchange_id", sa.String(100), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=True),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_moves"),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name="fk_exchange_moves_exchange_id_exchanges"
        ),
    )
    op.create_index("ix_exchange_moves_exchange_id_id", "exchange_moves", ["exchange_id", "id"])
    op.create_table(
        "exchange_prices",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("exchange_id", sa.String(100), nullable=False),
        sa.Column("item", sa.String(32), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("vnd_per_unit", sa.String(40), nullable=False),
        sa.Column("paid_by", sa.String(16), nullable=True),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_prices"),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name="fk_exchange_prices_exchange_id_exchanges"
        ),
    )
    op.create_index(
        "ix_exchange_prices_exchange_id_item_effective",
        "exchange_prices",
        ["exchange_id", "item", "effective"],
    )
    op.create_table(
        "exchange_factors",
        sa.Column("exchange_id", sa.String(100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("t_per_unit", sa.String(40), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name="fk_exchange_factors_exchange_id_exchanges"
        ),
        sa.PrimaryKeyConstraint("exchange_id", "year", name="pk_exchange_factors"),
    )
    op.create_table(
        "exchange_savings",
        sa.Column("exchange_id", sa.String(100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("hours_measured", sa.Integer(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("supplier_vnd", sa.BigInteger(), nullable=False),
        sa.Column("receiver_vnd", sa.BigInteger(), nullable=False),
        sa.Column("park_vnd", sa.BigInteger(), nullable=False),
        sa.Column("water_m3", sa.Float(), nullable=False),
        sa.Column("co2e_t", sa.Float(), nullable=False),
        sa.Column("landfill_t", sa.Float(), nullable=False),
        sa.Column("factor_year", sa.Integer(), nullable=True),
        sa.Column("check_quantity", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("disagrees", sa.Boolean(), nullable=False),
        sa.Column("unpriced_hours", sa.Integer(), nullable=False),
        sa.Column("computed_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name="fk_exchange_savings_exchange_id_exchanges"
        ),
        sa.PrimaryKeyConstraint("exchange_id", "day", name="pk_exchange_savings"),
    )
    op.create_index("ix_exchange_savings_park_day", "exchange_savings", ["park", "day"])


def downgrade() -> None:
    op.drop_table("exchange_savings")
    op.drop_table("exchange_factors")
    op.drop_table("exchange_prices")
    op.drop_table("exchange_moves")
    op.drop_table("exchanges")
