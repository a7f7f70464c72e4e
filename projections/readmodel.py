"""The bitemporal facts read model: one row per version of a fact, for any `known_at`.

A row is an event as it read between `recorded_from` and `recorded_to` (open while current):
a correction closes the old row and opens a new one, a retraction closes it. "The facts known
at K" is one indexed range query, not a replay of the log. Rows are kept up to date by following
the log with a tracked position committed in the same transaction; a rebuild from position 0
gives identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from soc_ledger.domain.events import CASE_EVENTS, EVENT_TYPES
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt, Recorded, known_facts
from soc_ledger.ledger import index
from soc_ledger.ledger.bulk import insert_rows
from soc_ledger.ledger.encryption import open_text, seal_text
from soc_ledger.ledger.index import (
    aware_utc,
    events_index,
    metadata,
    naive_utc,
    payload_of,
    stream_name,
    tracking,
)
from soc_ledger.ledger.location import canonical
from soc_ledger.projections import seals

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

NAME = "fact_versions"

fact_versions = Table(
    NAME,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract", String(200), nullable=False),
    Column("stream", String(450), nullable=False),
    Column("version", Integer, nullable=False),
    Column("position", Integer, nullable=False),  # the original event's log position
    Column("type", String(40), nullable=False),
    Column("case_id", String(200)),
    Column("recorded_from", DateTime, nullable=False),  # naive UTC, inclusive
    Column("recorded_to", DateTime),  # naive UTC, exclusive; NULL while current
    Column("payload", Text, nullable=False),  # the event as it reads then, `seal_text`ed
    Column("because", Text, nullable=False),  # JSON list of positions that decided it
    Index("ix_fact_versions_known", "contract", "recorded_from", "recorded_to"),
    Index("ix_fact_versions_identity", "stream", "version"),
)


def _stored(row) -> Recorded:
    payload = payload_of(row)
    return Recorded(
        position=row.position,
        stream=row.stream,
        version=row.version,
        recorded_on=aware_utc(row.recorded_on),
        appended_at=aware_utc(row.appended_at),
        event=EVENT_TYPES[payload["type"]].model_validate(payload),
        target_version=row.target_version,
    )


def _chain(records: list[Recorded], target_version: int) -> tuple[Recorded, list[Recorded]]:
    """The ultimate target of a corrector and every record that acts on it, directly or not."""
    by_version = {r.version: r for r in records}
    root = by_version[target_version]
    while root.target_version is not None:
        root = by_version[root.target_version]
    members = {root.version}
    for r in sorted(records, key=lambda r: r.version):
        if r.target_version in members:
            members.add(r.version)
    return root, [r for r in records if r.version in members]


def versions_of(root: Recorded, chain: list[Recorded]) -> list[dict]:
    """The readings of `root` over recorded time: one row per distinct reading."""
    rows: list[dict] = []
    times = sorted({r.recorded_on for r in chain})
    for i, moment in enumerate(times):
        facts = [f for f in known_facts(chain, KnownAt(moment)) if f.recorded.ref == root.ref]
        reading = None
        if facts:
            fact = facts[0]
            reading = (
                canonical(fact.event.model_dump(mode="json", by_alias=True, exclude_none=True)),
                json.dumps([r.position for r in fact.because]),
            )
        until = times[i + 1] if i + 1 < len(times) else None
        if rows and reading is not None and rows[-1]["reading"] == reading and (
            rows[-1]["recorded_to"] == naive_utc(moment)
        ):
            rows[-1]["recorded_to"] = naive_utc(until) if until else None
            continue
        if reading is None:
            continue
        rows.append(
            {
                "reading": reading,
                "recorded_from": naive_utc(moment),
                "recorded_to": naive_utc(until) if until else None,
            }
        )
    return [
        {
            "contract": root.event.contract,
            "stream": root.stream,
            "version": root.version,
            "position": root.position,
            "type": root.event.type,
            "case_id": root.event.case_id,
            "recorded_from": row["recorded_from"],
            "recorded_to": row["recorded_to"],
            "payload": seal_text(row["reading"][0].decode()),
            "because": row["reading"][1],
        }
        for row in rows
    ]


PLAIN_COLUMNS = (
    "contract",
    "stream",
    "version",
    "position",
    "type",
    "case_id",
    "recorded_from",
    "recorded_to",
    "payload",
    "because",
)


def catch_up(engine: Engine, log: EventLog) -> int:
    """Bring the facts up to the log's head (the event index first, which it reads)."""
    # Its table is created here: a ledger may have been opened before this module was loaded.
    metadata.create_all(engine, tables=[fact_versions])
    index.catch_up(engine, log)
    handled = 0
    with engine.begin() as conn:
        started = seals.begin(conn, NAME)
        position = index.claim_position(conn, NAME)
        touched: dict[str, set[int]] = {}
        # A page at a time (a first catch-up may follow a log of any length), straight to the
        # driver: an event that corrects nothing is one open row, its payload as indexed.
        for page in index.unindexed_pages(conn, position):
            plain: list[tuple] = []
            for r in page:
                position = r.position
                handled += 1
                if r.target_version is None:
                    plain.append(
                        (
                            r.contract,
                            r.stream,
                            r.version,
                            r.position,
                            r.type,
                            r.case_id,
                            r.recorded_on,
                            None,
                            r.payload,
                            f"[{r.position}]",
                        )
                    )
                else:
                    touched.setdefault(r.stream, set()).add(r.target_version)
            insert_rows(conn, fact_versions, PLAIN_COLUMNS, plain)
        for stream, targets in touched.items():
            records = [
                _stored(x)
                for x in conn.execute(
                    select(events_index).where(events_index.c.stream == stream)
                )
            ]
            roots: dict[int, tuple[Recorded, list[Recorded]]] = {}
            for target in targets:
                root, chain = _chain(records, target)
                roots[root.version] = (root, chain)
            for root, chain in roots.values():
                conn.execute(
                    delete(fact_versions).where(
                        fact_versions.c.stream == stream, fact_versions.c.version == root.version
                    )
                )
                rows = versions_of(root, chain)
                if rows:
                    conn.execute(insert(fact_versions), rows)
        conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=position))
        seals.seal(conn, NAME, started)
    return handled


def rebuild(engine: Engine, log: EventLog) -> int:
    """Drop every row and follow the log again from the start."""
    return seals.refollow(engine, log, fact_versions, catch_up)


def facts_known_at(
    engine: Engine,
    contract: str,
    known_at: KnownAt = EVERYTHING,
    types: Iterable[str] = (),
    case: str | None = None,
) -> list[Fact]:
    """The facts of `contract` known at `known_at`, in log order: one range query.

    With `case`, only that case's facts and the contract's own (no other case's).
    """
    return facts_of_rows(rows_known_at(engine, contract, known_at, types, case))


def rows_known_at(
    engine: Engine,
    contract: str,
    known_at: KnownAt = EVERYTHING,
    types: Iterable[str] = (),
    case: str | None = None,
) -> Sequence[Any]:
    """`facts_known_at`'s rows (of `FACT_COLUMNS`), not yet decoded."""
    fv = fact_versions.c
    query = select(*FACT_COLUMNS)
    types = tuple(types)
    if case is None and types and not CASE_EVENTS.intersection(types):
        # The contract's own facts (terms, care data, claims...) all live in its stream: found
        # through `ix_fact_versions_identity`, not by filtering every fact of the contract
        # (half a million at scale 100) by type. As below, the stream stands for the contract.
        query = query.where(fv.stream == stream_name(contract))
    elif case is not None:
        # Every fact lives in its contract's stream or, for a case event, in its case's stream
        # (`ledger.index.stream_name`), and a stream names its contract: so these two
        # streams hold all the facts asked for, found through `ix_fact_versions_identity`
        # (a few hundred rows) instead of every fact of the contract through
        # `ix_fact_versions_known`. Filtering on `contract` as well would lead SQLite's and an
        # unanalysed PostgreSQL's planner to the wider index, so the stream stands for it.
        query = query.where(
            fv.stream.in_((stream_name(contract), stream_name(contract, case))),
            or_(fv.case_id == case, fv.case_id.is_(None)),
        )
    else:
        query = query.where(fv.contract == contract)
    query = query.where(known_between(fv.recorded_from, fv.recorded_to, known_at))
    if types:
        query = query.where(fv.type.in_(types))
    with engine.connect() as conn:
        return conn.execute(query.order_by(fv.position)).all()


# The columns `facts_of_rows` reads, in its order: only what a `Fact` needs.
FACT_COLUMNS = (
    fact_versions.c.position,
    fact_versions.c.stream,
    fact_versions.c.version,
    fact_versions.c.type,
    fact_versions.c.recorded_from,
    fact_versions.c.payload,
    fact_versions.c.because,
)


def facts_of_rows(rows: Iterable[Sequence[Any]]) -> list[Fact]:
    """`Fact`s from rows of `FACT_COLUMNS`, in the order given.

    This is where a report spends its time on a large ledger, so it decodes each payload once,
    straight from the stored JSON text into its event class (`model_validate_json`: pydantic
    parses and validates in one pass, with the same validators and result as `json.loads`
    then `model_validate`), chosen by the row's `type` column (a correction never changes an
    event's type). A row's `because` is nearly always just its own position.
    """
    facts: list[Fact] = []
    append = facts.append
    instants: dict[datetime, datetime] = {}  # facts share few recorded instants: convert once
    for position, stream, version, type_, recorded_from, payload, because in rows:
        event = EVENT_TYPES[type_].model_validate_json(open_text(payload))
        recorded_on = instants.get(recorded_from)
        if recorded_on is None:
            recorded_on = instants[recorded_from] = aware_utc(recorded_from)
        recorded = Recorded(position, stream, version, recorded_on, recorded_on, event)
        # `catch_up` writes `json.dumps([position])` for every uncorrected fact: skip parsing it.
        decided = (position,) if because == f"[{position}]" else json.loads(because)
        append(
            Fact(
                recorded,
                event,
                tuple(Recorded(p, stream, 0, recorded_on, recorded_on, event) for p in decided),
            )
        )
    return facts


def known_between(
    start: ColumnElement[Any], end: ColumnElement[Any], known_at: KnownAt
) -> ColumnElement[bool]:
    """The version of a row read at `known_at`, for every read model that keeps versions over
    recorded time in [start, end) (naive UTC; no end while current): the current one when
    everything is known, else the one whose range holds the instant."""
    if known_at.until is None:
        return end.is_(None)
    until = naive_utc(known_at.until)
    return and_(start <= until, or_(end.is_(None), end > until))


def follows_facts(engine: Engine, name: str) -> bool:
    """Whether the read model `name` (made from the facts) follows the log exactly as far as
    the facts do: never an answer from behind them."""
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                select(tracking.c.name, tracking.c.position).where(
                    tracking.c.name.in_((name, NAME))
                )
            ).all()
        )
    return found.get(name) is not None and found.get(name) == found.get(NAME)


def contracts(engine: Engine) -> list[str]:
    """Every contract in the ledger, in order.

    A skip scan: each step asks the index for the next contract after the last (a few index
    probes), where `SELECT DISTINCT contract` reads every event's row on PostgreSQL.
    """
    with engine.connect() as conn:
        return contracts_of(conn)


def contracts_of(conn: Connection) -> list[str]:
    """`contracts`, read on a connection already open (inside a transaction, say)."""
    contract = events_index.c.contract
    held = select(func.min(contract).label("contract")).cte("held", recursive=True)
    following = select(func.min(contract)).where(contract > held.c.contract).scalar_subquery()
    held = held.union_all(select(following).where(held.c.contract.is_not(None)))
    found = conn.execute(select(held.c.contract).where(held.c.contract.is_not(None)))
    return sorted(found.scalars())  # Python's order, whatever the database's collation
