"""Forecasts, 1-minute and 15-minute aggregates, rollup state and spool replay progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = op.get_context().version_table_schema
    op.create_table(
        "forecasts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("feeder", sa.Text),
        sa.Column("issued", sa.Double, nullable=False),
        sa.Column("target_time", sa.Double, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("model", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("ix_forecasts_point_target_time", "forecasts", ["point", "target_time"], schema=schema)
    op.create_index("ix_forecasts_issued", "forecasts", ["issued"], schema=schema)
    for name in ("measurements_1min", "measurements_15min"):
        op.create_table(
            name,
            sa.Column("point", sa.Text, primary_key=True),
            sa.Column("bucket", sa.Double, primary_key=True),
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("min", sa.Double),
            sa.Column("max", sa.Double),
            sa.Column("avg", sa.Double),
            sa.Column("last_time", sa.Double, nullable=False),
            sa.Column("last_quality", sa.Integer, nullable=False),
            schema=schema,
        )
    op.create_table(
        "historian_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_table(
        "spool_progress",
        sa.Column("file", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        schema=schema,
    )


def downgrade() -> None:
    raise NotImplementedError("the historian is not downgraded")
