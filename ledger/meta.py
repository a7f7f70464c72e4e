"""Facts about the ledger itself, in `ledger_meta`: key fingerprints (never keys), whether
payloads are encrypted. The schema's `metadata` starts here, below the event index and the
encryption of its payloads, so neither needs the other to read or record these facts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from soc_ledger.ledger.store import Appending

metadata = MetaData()

ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", String(400), nullable=False),
)


def meta_get(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(ledger_meta.c.value).where(ledger_meta.c.name == name)).scalar()


def meta_set_once(engine: Engine, name: str, value: str) -> str:
    """Record `value` unless one is recorded already; returns the recorded value."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(ledger_meta).values(name=name, value=value))
    except IntegrityError:  # another process recorded it first
        pass
    recorded = meta_get(engine, name)
    assert recorded is not None
    return recorded


def meta_set_once_in(txn: Appending, name: str, value: str) -> str:
    """`meta_set_once` inside an append transaction (whose database another connection
    could not write to until it ends)."""
    txn.execute(
        "INSERT INTO ledger_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, value),
    )
    row = txn.execute("SELECT value FROM ledger_meta WHERE name = ?", (name,)).fetchone()
    return row["value"] if isinstance(row, dict) else row[0]
