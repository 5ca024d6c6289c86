"""Initial historian schema: the tables dms-sqlhistorian 0.1 created with ``create_tables``.

A database written by that version has exactly these tables and no ``alembic_version``;
:func:`dms_sqlhistorian.migrate.upgrade` recognises it and stamps it with this revision.
Frozen: never change it; add a revision instead.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    schema = op.get_context().version_table_schema
    op.create_table(
        "measurements",
        _id(),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.Column("source_time", sa.Double, nullable=False),
        sa.Column("receive_time", sa.Double, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("ix_measurements_point_source_time", "measurements", ["point", "source_time"], schema=schema)
    op.create_table(
        "alarms",
        _id(),
        sa.Column("alarm_id", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("point", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("ix_alarms_time", "alarms", ["time"], schema=schema)
    op.create_table(
        "audit",
        _id(),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("ix_audit_time", "audit", ["time"], schema=schema)
    op.create_table(
        "commands",
        _id(),
        sa.Column("command_id", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("select_before_operate", sa.Boolean, nullable=False),
        sa.Column("originator", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("timeout_s", sa.Double, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        schema=schema,
    )
    op.create_index("ix_commands_command_id", "commands", ["command_id"], schema=schema)
    op.create_table(
        "command_results",
        _id(),
        sa.Column("command_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("finished", sa.Double, nullable=False),
        schema=schema,
    )
    op.create_index("ix_command_results_command_id", "command_results", ["command_id"], schema=schema)
    op.create_table(
        "study_results",
        _id(),
        sa.Column("study", sa.Text, nullable=False),
        sa.Column("solver", sa.Text, nullable=False),
        sa.Column("converged", sa.Boolean, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started", sa.Double, nullable=False),
        sa.Column("finished", sa.Double, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("ix_study_results_study_finished", "study_results", ["study", "finished"], schema=schema)
    op.create_table(
        "control_actions",
        _id(),
        sa.Column("controller", sa.Text, nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("command_id", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("originator", sa.Text, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        schema=schema,
    )


def downgrade() -> None:
    raise NotImplementedError("the historian is not downgraded")
