"""Bulk writes of read-model rows, the fast way each database offers.

SQLAlchemy Core's executemany builds a parameter dict per row; at a million rows that is most
of a rebuild. Here rows are plain tuples in the given column order: SQLite takes them through
the driver's `executemany` (converted first exactly as SQLAlchemy would, so dates and times keep
its storage format), PostgreSQL through psycopg's `COPY ... FROM STDIN`. Both run inside the
caller's transaction: a SQLAlchemy connection's (`insert_rows`), or a raw driver cursor's
(`insert_raw`, used by the append transaction of the event library).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table


def dialect(kind: str) -> Dialect:
    """SQLAlchemy's dialect for a store kind, imported when first needed (a report on SQLite
    never loads the PostgreSQL one)."""
    if kind == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect()


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        insert_raw(cursor, conn.dialect, table, columns, rows)
    finally:
        cursor.close()


def insert_raw(
    cursor: Any,
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if dialect.name == "postgresql":
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    converting = [(i, _remembered(p)) for i, p in enumerate(processors) if p is not None]

    def converted(row: Sequence[Any]) -> tuple:
        if not converting:
            return tuple(row)
        values = list(row)
        for i, process in converting:
            values[i] = process(values[i])
        return tuple(values)

    batch = [converted(row) for row in rows]
    if batch:
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", batch)


def _remembered(process: Any) -> Any:
    """A conversion done once per distinct value: a batch of events shares a few clocks and
    dates, and formatting them is most of the cost of writing them."""
    seen: dict[Any, Any] = {}

    def converted(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = process(value)
            return result
        except TypeError:  # unhashable: not a value worth remembering
            return process(value)

    return converted
