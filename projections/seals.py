"""Seals on the read models: a row edited outside the ledger is noticed before a query answers.

`fact_versions` and `latest_case_weeks` answer every report; a query must not answer from rows
that are not what following the log wrote (issue 13). Hashing their rows on every query would
cost as much as the query (about 2 s for 570,000 facts), so the database counts instead: a
trigger on each table adds one to its `edits` in `readmodel_seals` on every change (every row
on SQLite, every statement on PostgreSQL), and each of the ledger's own write transactions
adds what it did itself to `sealed` (`begin` ... `seal`). An edit from anywhere else leaves
`edits` ahead of `sealed`, and `check` refuses to answer until `rebuild`, which seals afresh.

`check` also refuses a read model whose tracked position is not the log's head (a log that
was cut back, or a tracking row moved), and a table holding rows with no seal (a store built
before seals existed, or a seal row deleted): both say `run rebuild`.

What this is not: proof against someone who knows it and can also write `readmodel_seals` or
drop the triggers. `verify` compares every row with a rebuild from the log; that is the proof.
Cost: one small read per query; writes pay one trigger per row on SQLite (about 2 % of a
rebuild), one per statement on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Table, delete, inspect, select, text

from soc_ledger.domain.errors import LedgerError
from soc_ledger.ledger import index

if TYPE_CHECKING:
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.ledger.store import EventLog

TABLE = "readmodel_seals"
GUARDED = (
    "fact_versions", "claims_made", "claim_lines", "latest_case_weeks", "case_versions"
)  # fmt: skip
OPERATIONS = ("INSERT", "UPDATE", "DELETE")


class ReadModelDamaged(LedgerError):
    """A read model that is not what following the log wrote; nothing is answered from it."""


def _install(conn: Connection, table: str) -> None:
    """The seal row and the triggers that count `table`'s changes (in the caller's
    transaction). A table that already holds rows is left unsealed: nothing proves them."""
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(100) PRIMARY KEY, "
        "edits BIGINT NOT NULL, sealed BIGINT NOT NULL)"
    )
    if conn.execute(text(f"SELECT 1 FROM {TABLE} WHERE name = :n"), {"n": table}).first():
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION readmodel_edited() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN UPDATE {TABLE} SET edits = edits + 1 WHERE name = TG_TABLE_NAME; "
            "RETURN NULL; END $$"
        )
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS readmodel_edit_{table} ON {table}")
        conn.exec_driver_sql(
            f"CREATE TRIGGER readmodel_edit_{table} AFTER INSERT OR UPDATE OR "
            f"DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION readmodel_edited()"
        )
    else:
        for operation in OPERATIONS:
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS readmodel_edit_{table}_{operation.lower()} "
                f"AFTER {operation} ON {table} BEGIN UPDATE {TABLE} SET edits = edits + 1 "
                f"WHERE name = '{table}'; END"
            )
    held = conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first() is not None
    conn.execute(
        text(f"INSERT INTO {TABLE} (name, edits, sealed) VALUES (:n, :e, 0)"),
        {"n": table, "e": int(held)},
    )


def begin(conn: Connection, table: str) -> int:
    """Before the ledger writes `table` in this transaction: its edits so far."""
    _install(conn, table)
    found = conn.execute(text(f"SELECT edits FROM {TABLE} WHERE name = :n"), {"n": table})
    return int(found.scalar_one())


def seal(conn: Connection, table: str, started: int) -> None:
    """After the ledger's own writes to `table` in this transaction: they are its own."""
    conn.execute(
        text(f"UPDATE {TABLE} SET sealed = sealed + (edits - :s) WHERE name = :n"),
        {"s": started, "n": table},
    )


def reset(conn: Connection, table: str) -> None:
    """After a rebuild from the log: every row of `table` is the ledger's."""
    _install(conn, table)
    conn.execute(text(f"UPDATE {TABLE} SET sealed = edits WHERE name = :n"), {"n": table})


def refollow(
    engine: Engine, log: EventLog, table: Table, catch_up: Callable[[Engine, EventLog], int]
) -> int:
    """A read model dropped and followed again from the log's first event, then sealed as the
    ledger's: every model's `rebuild` (the table's name is its tracking name)."""
    table.metadata.create_all(engine, tables=[table])
    with engine.begin() as conn:
        conn.execute(delete(table))
        conn.execute(delete(index.tracking).where(index.tracking.c.name == table.name))
    handled = catch_up(engine, log)
    with engine.begin() as conn:
        reset(conn, table.name)
    return handled


def check(engine: Engine, head: int | None, models: tuple[str, ...] = GUARDED) -> None:
    """Refuse read models not sealed as the ledger left them, or not at the log's `head`."""
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        seals = {}
        if TABLE in tables:
            seals = {
                name: (edits, sealed)
                for name, edits, sealed in conn.exec_driver_sql(
                    f"SELECT name, edits, sealed FROM {TABLE}"
                )
            }
        for name in models:
            tracked = conn.execute(
                select(index.tracking.c.position).where(index.tracking.c.name == name)
            ).scalar()
            # Behind is an append since the catch-up (answered as of then); ahead is a log
            # cut back under the model.
            if head is not None and tracked is not None and tracked > head:
                _refuse(name, f"it follows the log to #{tracked}, the log ends at #{head}")
            if name in seals:
                edits, sealed = seals[name]
                if edits != sealed:
                    n = edits - sealed
                    _refuse(name, f"{n} change{'' if n == 1 else 's'} to it not made by the ledger")
            elif name in tables and conn.exec_driver_sql(f"SELECT 1 FROM {name} LIMIT 1").first():
                _refuse(name, "its rows carry no seal of the ledger's")


def check_followed(ledger: Ledger, models: tuple[str, ...] = GUARDED) -> None:
    """`check` on a ledger whose read models `models` were just caught up."""
    check(ledger.engine, index.log_head(ledger.engine, ledger.location), models)


def _refuse(name: str, why: str) -> None:
    raise ReadModelDamaged(
        f"the read model {name} does not match the log ({why}): it was altered outside the "
        "ledger, and no answer is given from it; run `soc-ledger rebuild`"
    )
