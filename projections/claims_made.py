"""The claims read model: every claim as submitted, a row per line, for any `known_at`.

A claim to the top-up funder lists a line for every case of the contract (41,000 at scale 100,
1.4 MB of JSON), and a statement or a reconciliation reads one payer's claims. From
`fact_versions` alone every submission's payload had to be parsed to learn its payer, and the
wanted ones validated line by line. Here each reading of a submission (as `fact_versions`
holds it, between `recorded_from` and `recorded_to`) is one row of `claims_made` (its claim,
payer and the event without its lines) and a row of `claim_lines` per line (case, weeks,
amount), so that a payer's claims are found by a column and their lines read as rows.

Rows are kept by following the log after `fact_versions`: a new `ClaimSubmitted` adds its
reading; a correction or retraction whose target is a submission rewrites that submission's
readings from `fact_versions` (which has just rewritten them). A rebuild from position 0 gives
identical rows. Claim ids, payers, cases and line amounts are in clear, as the weeks read
models' are; the rest of the event is `seal_text`ed as `fact_versions.payload` is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)

from soc_ledger.domain import events as ev
from soc_ledger.domain.claims.claims import Line, asked
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt, Recorded
from soc_ledger.domain.values import parse_money
from soc_ledger.ledger import index
from soc_ledger.ledger.bulk import insert_rows
from soc_ledger.ledger.encryption import open_text, seal_text
from soc_ledger.ledger.index import (
    aware_utc,
    events_index,
    metadata,
    stream_name,
    tracking,
)
from soc_ledger.ledger.location import canonical
from soc_ledger.projections import readmodel, seals
from soc_ledger.projections.readmodel import fact_versions

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

NAME = "claims_made"
LINES = "claim_lines"
SUBMITTED = "ClaimSubmitted"

claims_made = Table(
    NAME,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract", String(200), nullable=False),
    Column("stream", String(450), nullable=False),  # the submission's identity ...
    Column("version", Integer, nullable=False),
    Column("recorded_from", DateTime, nullable=False),  # ... and reading, as in fact_versions
    Column("recorded_to", DateTime),
    Column("position", Integer, nullable=False),
    Column("claim", String(200), nullable=False),
    Column("payer", String(200), nullable=False),
    Column("period_end", Date, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("header", Text, nullable=False),  # the event without its lines, `seal_text`ed
    Index("ix_claims_made_known", "contract", "recorded_from", "recorded_to"),
    Index("ix_claims_made_identity", "stream", "version"),
)

claim_lines = Table(
    LINES,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(450), nullable=False),
    Column("version", Integer, nullable=False),
    Column("recorded_from", DateTime, nullable=False),
    Column("line", Integer, nullable=False),  # its place in the claim, from 0
    Column("case_id", String(200), nullable=False),
    Column("weeks", Integer, nullable=False),
    Column("amount", String(40), nullable=False),
    Index("ix_claim_lines_reading", "stream", "version", "recorded_from", "line"),
)

TABLES = (claims_made, claim_lines)
HEAD_COLUMNS = (
    "contract", "stream", "version", "recorded_from", "recorded_to", "position", "claim",
    "payer", "period_end", "lines", "header",
)  # fmt: skip
LINE_COLUMNS = ("stream", "version", "recorded_from", "line", "case_id", "weeks", "amount")


def catch_up(engine: Engine, log: EventLog) -> int:
    """Bring the claims up to the log's head (the facts first, which they are read from)."""
    metadata.create_all(engine, tables=list(TABLES))
    handled = readmodel.catch_up(engine, log)
    with engine.begin() as conn:
        started = [seals.begin(conn, t.name) for t in TABLES]
        position = index.claim_position(conn, NAME)
        head = conn.execute(select(func.max(events_index.c.position))).scalar() or 0
        if head > position:
            if position == 0:
                _write(conn, None)
            else:
                _write(conn, _reached(conn, position))
            conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=head))
        for table, edits in zip(TABLES, started, strict=True):
            seals.seal(conn, table.name, edits)
    return handled


def rebuild(engine: Engine, log: EventLog) -> int:
    """Drop every row and follow the log again from the start."""
    metadata.create_all(engine, tables=list(TABLES))
    with engine.begin() as conn:
        conn.execute(delete(claim_lines))
        conn.execute(delete(claims_made))
        conn.execute(delete(tracking).where(tracking.c.name == NAME))
    handled = catch_up(engine, log)
    with engine.begin() as conn:
        for table in TABLES:
            seals.reset(conn, table.name)
    return handled


def _reached(conn: Connection, after: int) -> set[tuple[str, int]]:
    """The submissions (stream, version) whose readings the events after `after` changed: a
    new one, or one a correction or retraction acts on (through any chain of them)."""
    e = events_index.c
    found = conn.execute(
        select(e.stream, e.version, e.type, e.target_version).where(
            e.position > after, or_(e.type == SUBMITTED, e.target_version.is_not(None))
        )
    ).all()
    reached = set()
    for stream, version, type_, target in found:
        while target is not None:  # up the chain to what was first recorded
            version = target
            type_, target = conn.execute(
                select(e.type, e.target_version).where(e.stream == stream, e.version == target)
            ).one()
        if type_ == SUBMITTED:
            reached.add((stream, version))
    return reached


def _write(conn: Connection, reached: set[tuple[str, int]] | None) -> None:
    """The readings of the submissions `reached` (None: every one) written afresh from
    `fact_versions`."""
    fv = fact_versions.c
    query = select(
        fv.contract, fv.stream, fv.version, fv.recorded_from, fv.recorded_to, fv.position,
        fv.payload,
    ).where(fv.type == SUBMITTED)  # fmt: skip
    if reached is None:
        # Every submission lives in its contract's stream: found through the identity index,
        # never by reading every fact of the log for its type.
        batches = [query.where(fv.stream == stream_name(c)) for c in readmodel.contracts_of(conn)]
    else:
        streams: dict[str, list[int]] = {}
        for stream, version in sorted(reached):
            streams.setdefault(stream, []).append(version)
        batches = []
        for stream, versions in streams.items():
            for table in TABLES:
                conn.execute(
                    delete(table).where(table.c.stream == stream, table.c.version.in_(versions))
                )
            batches.append(query.where(fv.stream == stream, fv.version.in_(versions)))
    for batch in batches:
        heads, lines = [], []
        for row in conn.execute(batch):
            head, its_lines = _rows_of(row)
            heads.append(head)
            lines.extend(its_lines)
        insert_rows(conn, claims_made, HEAD_COLUMNS, heads)
        insert_rows(conn, claim_lines, LINE_COLUMNS, lines)


def _rows_of(row: Sequence[Any]) -> tuple[tuple, list[tuple]]:
    """One reading of a submission (a `fact_versions` row) as its head row and line rows."""
    contract, stream, version, recorded_from, recorded_to, position, payload = row
    event = orjson.loads(open_text(payload))
    lines = event["lines"]
    event["lines"] = []  # the header: the event as it reads, its lines in their own rows
    head = (
        contract, stream, version, recorded_from, recorded_to, position, event["claim"],
        event["payer"], date.fromisoformat(event["period_end"]), len(lines),
        seal_text(canonical(event).decode()),
    )  # fmt: skip
    return head, [
        (stream, version, recorded_from, i, line["case"], line["weeks"], line["amount"])
        for i, line in enumerate(lines)
    ]


def in_step(engine: Engine) -> bool:
    """Whether the claims follow the log exactly as far as the facts they are read from."""
    return readmodel.follows_facts(engine, NAME)


def submissions(
    engine: Engine,
    contract: str,
    known_at: KnownAt = EVERYTHING,
    payers: Collection[str] | None = None,
    named: Collection[str] = (),
    through_named: bool = False,
) -> list[Fact]:
    """The `ClaimSubmitted` facts of `contract` known at `known_at`, in log order, lines and
    all: every one, or (with `payers`) those made to them or to the payer of a claim `named`,
    and any other submission of the same id (the rules refuse a second one: which is first
    decides). With `through_named`, only the claims up to the last named one in the order
    claims are read in (period end, then recording; `on_ledger`), and any other submission
    of their ids: a reconciliation reads no later claim."""
    c = claims_made.c
    query = select(
        c.stream, c.version, c.recorded_from, c.position, c.claim, c.payer, c.period_end,
        c.lines, c.header,
    ).where(c.contract == contract)  # fmt: skip
    query = query.where(readmodel.known_between(c.recorded_from, c.recorded_to, known_at))
    with engine.connect() as conn:
        heads = conn.execute(query.order_by(c.position)).all()
        if payers is not None or named:
            ids = asked(((h.claim, h.payer) for h in heads), payers, named)
            heads = [h for h in heads if h.claim in ids]
        if through_named and named:
            ends = [(h.period_end, h.position) for h in heads if h.claim in named]
            if ends:
                last = max(ends)
                ids = {h.claim for h in heads if (h.period_end, h.position) <= last}
                heads = [h for h in heads if h.claim in ids]
        lines = _lines(conn, [h for h in heads if h.lines])
    facts = []
    instants: dict[Any, Any] = {}
    for h in heads:
        recorded_on = instants.get(h.recorded_from)
        if recorded_on is None:
            recorded_on = instants[h.recorded_from] = aware_utc(h.recorded_from)
        found = lines.get((h.stream, h.version), [])
        if len(found) != h.lines:
            raise seals.ReadModelDamaged(
                f"the read model {LINES} does not match the log (claim {h.claim!r} lists "
                f"{h.lines} lines, {len(found)} are stored): run `soc-ledger rebuild`"
            )
        event = ev.ClaimSubmitted.model_validate_json(open_text(h.header))
        # Its lines as the rules read them (`Line`), not validated again as `ClaimLine`s.
        event = event.model_copy(update={"lines": found})
        recorded = Recorded(h.position, h.stream, h.version, recorded_on, recorded_on, event)
        facts.append(Fact(recorded, event, (recorded,)))
    return facts


def _lines(conn: Connection, heads: Sequence[Any]) -> dict[tuple[str, int], list[Line]]:
    """The lines of the readings `heads` (one reading per submission: readings of one never
    overlap in recorded time), in claim order, by submission: plain `Line` records, each
    amount read once however many lines share it (a line per case, tens of thousands)."""
    found: dict[tuple[str, int], list[Line]] = {}
    cl = claim_lines.c
    streams: dict[str, list[tuple[int, Any]]] = {}
    for h in heads:
        streams.setdefault(h.stream, []).append((h.version, h.recorded_from))
    amounts: dict[str, Decimal] = {}
    for stream, readings in streams.items():
        for chunk in _chunks(sorted(readings), 500):
            rows = conn.execute(
                select(cl.version, cl.case_id, cl.weeks, cl.amount)
                .where(cl.stream == stream, tuple_(cl.version, cl.recorded_from).in_(chunk))
                .order_by(cl.version, cl.line)
            )
            for version, case_id, weeks, amount in rows:
                into = found.get((stream, version))
                if into is None:
                    into = found[(stream, version)] = []
                money = amounts.get(amount)
                if money is None:
                    money = amounts[amount] = parse_money(amount)
                into.append(Line(case_id, weeks, money))
    return found


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
