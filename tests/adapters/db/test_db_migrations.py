"""Alembic migrations: they build exactly the schema of tables.py, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.migrate import alembic_config, current_revision, head_revision, upgrade
from robohost.adapters.db.tables import metadata


@pytest.fixture
def bare_engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _diffs(engine: sa.Engine, target: sa.MetaData = metadata) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, target))


def _own_tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_from_empty_reaches_head(bare_engine: sa.Engine) -> None:
    assert current_revision(bare_engine) is None
    upgrade(bare_engine)
    assert current_revision(bare_engine) == head_revision() == "0006"
    assert _own_tables(bare_engine) == set(metadata.tables) | {"alembic_version"}


def test_migrated_schema_matches_metadata(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    assert _diffs(bare_engine) == []


def test_comparison_notices_a_difference(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    sa.Table("extra", changed, sa.Column("id", sa.Integer, primary_key=True))
    changed.tables["runs"].append_column(sa.Column("note", sa.Text))
    kinds = {diff[0] for diff in _diffs(bare_engine, changed) if isinstance(diff, tuple)}
    assert {"add_table", "add_column"} <= kinds


def test_upgrade_twice_is_harmless(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    upgrade(bare_engine)
    assert current_revision(bare_engine) == head_revision()


def test_downgrade_to_base_then_upgrade_again(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    config = alembic_config()
    with bare_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert _own_tables(bare_engine) == {"alembic_version"}
    assert current_revision(bare_engine) is None
    upgrade(bare_engine)
    assert _diffs(bare_engine) == []


def test_tables_live_in_the_connection_default_schema(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    inspector = sa.inspect(bare_engine)
    schema = inspector.default_schema_name
    assert schema is not None
    assert set(metadata.tables) <= set(inspector.get_table_names(schema=schema))
    if bare_engine.dialect.name == "postgresql":
        assert schema.startswith("rh_")  # chosen by search_path in the URL, not public


def test_0002_lets_a_robot_be_degraded_and_keeps_existing_rows(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine, "0001")
    row = "INSERT INTO robot_state (robot, status, reason, run_id, updated_at) VALUES ('r', '{}', NULL, NULL, 1)"
    with bare_engine.begin() as conn:
        conn.exec_driver_sql(row.format("halted"))
    with pytest.raises(sa.exc.IntegrityError), bare_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE robot_state SET status = 'degraded'")
    upgrade(bare_engine)
    with bare_engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT status FROM robot_state").scalar_one() == "halted"
        conn.exec_driver_sql("UPDATE robot_state SET status = 'degraded'")
    with pytest.raises(sa.exc.IntegrityError), bare_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE robot_state SET status = 'asleep'")
    assert _diffs(bare_engine) == []
