"""The trading database: SQLite or PostgreSQL through SQLAlchemy Core, migrated by Alembic.

``engine`` builds a configured ``sqlalchemy.Engine``, ``tables`` declares the schema, ``migrate`` applies
the Alembic revisions, ``journal`` implements the engine's ``Journal`` port and ``queries`` is the read
model. Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""
