"""Bulk writes of read-model rows, the fast way each database offers.

SQLAlchemy Core's executemany builds a parameter dict per row; at a million rows that is most
of a rebuild. Here rows are plain tuples in the table's column order: SQLite takes them through
the driver's `executemany`, PostgreSQL through psycopg's `COPY ... FROM STDIN`. Both run on the
caller's connection, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    # The driver is given what SQLAlchemy would give it: dates and times in its storage format.
    dialect = conn.dialect
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]

    def converted(row: Sequence[Any]) -> Sequence[Any]:
        if not converting:
            return row
        values = list(row)
        for i, process in converting:
            values[i] = process(values[i])
        return tuple(values)

    marks = ", ".join("?" for _ in columns)
    batch = [tuple(converted(row)) for row in rows]
    if batch:
        conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", batch)
