"""Bulk writes of journal records through the driver's ``executemany``, with SQLAlchemy's own type handling.

The engine commits thousands of rows per batch; building a SQLAlchemy statement per row costs more than
the database does. A ``BulkWriter`` renders one INSERT (optionally an upsert) per table and dialect, and
converts each record to a tuple with the columns' bind processors (so Money and JSON columns are stored
exactly as SQLAlchemy would store them). Must not import config, cli or services.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

Convert = Callable[[Any], Any] | None


class BulkWriter:
    """One table's INSERT for one dialect, fed with records whose attributes are named like the columns."""

    def __init__(
        self,
        table: sa.Table,
        dialect: Dialect,
        *,
        conflict_keys: Sequence[str] = (),
        prepare: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        columns = [c for c in table.c if not (c.primary_key and c.autoincrement is True)]
        self.names = tuple(c.name for c in columns)
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        markers = ", ".join(marker + ("::json" if _is_json(c) and marker == "%s" else "") for c in columns)
        quoted = ", ".join(f'"{n}"' for n in self.names)
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({markers})'
        if conflict_keys:
            keys = ", ".join(f'"{k}"' for k in conflict_keys)
            updates = ", ".join(f'"{n}" = excluded."{n}"' for n in self.names if n not in conflict_keys)
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        self.sql = sql
        prepare = prepare or {}
        self._converters: tuple[tuple[str, Convert, Convert], ...] = tuple(
            (
                c.name,
                prepare.get(c.name),
                json.dumps if _is_json(c) else c.type.dialect_impl(dialect).bind_processor(dialect),
            )
            for c in columns
        )

    def row(self, record: Any) -> tuple[Any, ...]:
        """The record as a tuple of driver values, in column order."""
        values = []
        for name, prepare, bind in self._converters:
            value = getattr(record, name)
            if prepare is not None:
                value = prepare(value)
            if bind is not None and value is not None:
                value = bind(value)
            values.append(value)
        return tuple(values)

    def write(self, conn: sa.Connection, records: Iterable[Any]) -> None:
        """Insert (or upsert) ``records`` in one ``executemany``."""
        rows = [self.row(r) for r in records]
        if rows:
            conn.exec_driver_sql(self.sql, rows)


def _is_json(column: sa.Column[Any]) -> bool:
    """JSON columns are sent as JSON text (cast to json where the database needs it)."""
    return isinstance(column.type, sa.JSON)
