"""Bulk writes store exactly what SQLAlchemy's own inserts store, in both databases: a date or a
time written the fast way must compare and sort like one written the usual way."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Table, Text, insert, select

from soc_ledger.ledger.bulk import insert_rows
from soc_ledger.ledger.index import open_engine
from soc_ledger.ledger.location import Location

ROWS = [
    (1, date(2017, 9, 1), datetime(2017, 9, 1), "a £ line", None),
    (2, date(2024, 2, 29), datetime(2024, 2, 29, 23, 59, 59, 999999), "", 7),
]


def test_bulk_rows_read_back_as_core_rows(db_url: str) -> None:
    engine = open_engine(Location.parse(db_url))
    metadata = MetaData()
    tables = [
        Table(
            name,
            metadata,
            Column("n", Integer, primary_key=True, autoincrement=False),
            Column("day", Date),
            Column("moment", DateTime),
            Column("text", Text),
            Column("maybe", Integer),
        )
        for name in ("bulk_fast", "bulk_core")
    ]
    metadata.create_all(engine)
    fast, core = tables
    columns = ("n", "day", "moment", "text", "maybe")
    with engine.begin() as conn:
        insert_rows(conn, fast, columns, ROWS)
        conn.execute(insert(core), [dict(zip(columns, row, strict=True)) for row in ROWS])
    with engine.connect() as conn:
        # As the driver sees them (SQLite keeps dates as text: the text must be the same) ...
        raw = [
            conn.exec_driver_sql(f"SELECT n, day, moment, text, maybe FROM {t.name} ORDER BY n")
            .all()
            for t in tables
        ]
        # ... and as SQLAlchemy reads them back.
        typed = [conn.execute(select(t).order_by(t.c.n)).all() for t in tables]
        earlier = conn.execute(
            select(fast.c.n).where(fast.c.moment < datetime(2017, 9, 1, 0, 0, 1))
        ).scalars().all()
    engine.dispose()
    assert raw[0] == raw[1]
    assert [tuple(r) for r in typed[0]] == ROWS == [tuple(r) for r in typed[1]]
    assert earlier == [1]
