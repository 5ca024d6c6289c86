"""Alembic environment: migrates the connection handed over by :func:`dms_sqlhistorian.migrate.upgrade`.

``config.attributes["connection"]`` is the open connection, ``config.attributes["schema"]``
the database schema (PostgreSQL) or ``None``; revision scripts read the schema back with
``op.get_context().version_table_schema``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table_schema=config.attributes.get("schema"),
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
