"""Alembic environment of the trading database.

``robohost.adapters.db.migrate`` passes an open connection in ``config.attributes["connection"]``;
the ``alembic`` command line may instead set ``sqlalchemy.url``. Must not import ``robohost.config``,
``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.tables import metadata
from robohost.errors import ConfigError


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigError("alembic needs a database: pass a connection or set sqlalchemy.url")
    if context.is_offline_mode():
        dialect_name = sa.engine.make_url(url).get_backend_name()
        context.configure(dialect_name=dialect_name, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
