"""`verify`: is the store what was written, and does replay reproduce every answer? (SPEC §11)

The whole report: the log's own checks first (`ledger.integrity`: chain, export, streams,
privacy, aggregates), then the read side's, skipped when the chain is broken:

5. **projections** — the stored read models, caught up to the log, equal a rebuild from
   position 0 into a scratch database (the user's read model is never touched), row by row;
   where that copy lives and how it is always removed: `projections/scratch.py`.
6. **assertions** — every `BalanceAsserted` still holds, recomputed by the outcome rules from
   the rebuilt facts as known at its `known_at`.

Verification holds the writer lock, so it sees one state of the log. `figure_to_assert`
computes the figure an auditor signs off; the ledger records the sign-off
(`ledger.integrity.assert_balance`), since the read side never writes events.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, String, Table, select

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.domain.outcomes.liability import liability
from soc_ledger.domain.values import PENNY
from soc_ledger.ledger import index
from soc_ledger.ledger.encryption import open_text
from soc_ledger.ledger.integrity import AssertionProblem, Check, Report, check_log, counted
from soc_ledger.ledger.location import StoreError
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.progress import Progress, noted, phase
from soc_ledger.projections import (
    claims_made,
    latest,
    outcome_facts,
    queries,
    readmodel,
    sampled,
    seals,
    versions,
)
from soc_ledger.projections.scratch import scratch_store

if TYPE_CHECKING:
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.ledger.store import EventLog

FIGURES = ("owed", "provisional", "outcome_weeks")
LATER = ("projections", "assertions")


# --- the projections verify rebuilds -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: how to follow the log, its tracking name, its tables and their row keys."""

    name: str
    catch_up: Callable[[Engine, EventLog], int]
    tables: tuple[tuple[Table, tuple[str, ...]], ...]


# Read-model columns written with `seal_text` (encrypted when CIPHER_KEY is set: compared clear).
SEALED = frozenset({"payload", "cap_gross", "header"})


def projections() -> list[Projection]:
    """Every read model, in the order they are followed (the event index first; the case
    versions before the latest cases, which a build from nothing copies from them)."""
    return [
        Projection(index.INDEX, index.catch_up, ((index.events_index, ("position",)),)),
        Projection(
            readmodel.NAME,
            readmodel.catch_up,
            ((readmodel.fact_versions, ("stream", "version", "recorded_from")),),
        ),
        Projection(
            claims_made.NAME,
            claims_made.catch_up,
            (
                (claims_made.claims_made, ("stream", "version", "recorded_from")),
                (claims_made.claim_lines, ("stream", "version", "recorded_from", "line")),
            ),
        ),
        Projection(
            versions.NAME,
            versions.catch_up,
            ((versions.case_versions, ("contract", "case_id", "known_from")),),
        ),
        Projection(
            latest.NAME,
            latest.catch_up,
            ((latest.latest_case_weeks, ("contract", "case_id")),),
        ),
    ]


# --- verify -------------------------------------------------------------------------------------


def verify(
    ledger: Ledger,
    against: dict[str, Any] | None = None,
    sample: int | None = None,
    rng: random.Random | None = None,
) -> Report:
    """Every check, under the writer lock; later checks are skipped once the chain is broken.

    With `sample`, the read models are compared with a rebuild for that many cases drawn by
    `rng` (the operating system's randomness by default), not for every case
    (`projections/sampled.py` says what that does and does not prove)."""
    with writer_lock(ledger.location):
        if not index.log_head(ledger.engine, ledger.location):
            # Nothing appended is nothing proven: an empty store must not read as verified.
            raise StoreError(
                f"nothing to verify: the ledger at {ledger.location.shown} holds no events"
            )
        report, further = check_log(ledger, against, LATER)
        if not further:
            return report
        with scratch_store(ledger.location) as scratch:
            if sample is None:
                report.checks.append(_projections(ledger, scratch))
                report.checks.append(_assertions(scratch))
            else:
                drawn = sampled.draw(report.streams, sample, rng or random.SystemRandom())
                report.checks.append(_projections(ledger, scratch, drawn))
                report.checks.append(_assertions(ledger.engine))
        return report


# --- projections -------------------------------------------------------------------------------


def _projections(ledger: Ledger, scratch: Engine, drawn: sampled.Sample | None = None) -> Check:
    """The stored read models against a rebuild, compared as two streams of rows in the same
    order (pages of PAGE rows from each side, in lockstep): memory holds two pages, never a
    table. Row by row, not hashed per page, so that a difference is named by its row.

    With `drawn` streams (`sampled.draw`), the rebuild follows only their events and the
    stored rows compared are theirs; every guarded model's seal is checked as well, for the
    rows not drawn."""
    check = Check("projections")
    progress = ledger.progress
    models = projections()
    for model in models:  # the stored models, brought up to the log's head
        with phase(progress, f"verify: catching up {model.name}"):
            model.catch_up(ledger.engine, ledger.log)
    log: EventLog | sampled.DrawnLog = ledger.log
    if drawn is not None:
        log = sampled.DrawnLog(ledger.log, drawn.streams)
        try:
            seals.check_followed(ledger)
        except seals.ReadModelDamaged as exc:
            check.fail(str(exc))
    index.metadata.create_all(scratch)
    for model in models:  # and the same from position 0, elsewhere
        with phase(progress, f"verify: rebuilding {model.name}"):
            model.catch_up(scratch, log)  # type: ignore[arg-type]
    sizes = []
    tracked = [m.name for m in models]
    tables = [t for m in models for t in m.tables]
    if drawn is None:  # a sample's rebuild stops at its last drawn event, not the head
        tables.append((index.tracking, ("name",)))
    for table, key in tables:
        where = None if drawn is None else sampled.restricted(table, drawn.streams)
        stored = _rows(ledger.engine, table, key, tracked, where)
        rebuilt = _rows(scratch, table, key, tracked, where)
        count, difference = _compare(table, key, stored, rebuilt, progress)
        sizes.append(f"{table.name} {count}")
        if difference is not None:
            message, position = difference
            check.fail(message, position)
    rows = ", ".join(sizes) + " rows"
    if drawn is None:
        check.summary = "identical to a rebuild from the log: " + rows
    else:
        check.cases = drawn.drawn()
        check.summary = (
            f"{drawn.cases} of {counted(drawn.of, 'case')} drawn at random, with every "
            f"contract's own events, identical to a rebuild of them from the log: {rows}; "
            "every read model sealed as the ledger left it"
        )
    return check


PAGE = 2000


def _rows(
    engine: Engine,
    table: Table,
    key: tuple[str, ...],
    tracked: list[str],
    where: ColumnElement[Any] | None = None,
) -> Iterator[tuple]:
    """A table's rows (key columns first, sealed ones opened) in the order of their keys, then
    of the other columns: text in code-point order on either database (PostgreSQL's collation
    "C"), which is Python's, so that two stores' rows line up."""
    columns = [c for c in table.columns if c.name != "id"]
    names = [c.name for c in columns]
    ordered = [names.index(k) for k in key] + [i for i, n in enumerate(names) if n not in key]
    picked = [columns[i] for i in ordered]
    order = [_bytewise(engine, c) for c in picked if c.name not in SEALED]
    query = select(*picked).order_by(*order)
    if table is index.tracking:
        query = query.where(index.tracking.c.name.in_(tracked))
    if where is not None:
        query = query.where(where)
    sealed = [i for i, c in enumerate(picked) if c.name in SEALED]
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        for row in result:
            if not sealed:
                yield tuple(row)
                continue
            values = list(row)
            for i in sealed:
                values[i] = open_text(values[i])
            yield tuple(values)


def _bytewise(engine: Engine, column: Any) -> Any:
    if engine.dialect.name == "postgresql" and isinstance(column.type, String):
        return column.collate("C")
    return column


def _compare(
    table: Table,
    key: tuple[str, ...],
    stored: Iterator[tuple],
    rebuilt: Iterator[tuple],
    progress: Progress | None = None,
) -> tuple[int, tuple[str, int | None] | None]:
    """(stored rows, the first difference), the i-th stored row against the i-th rebuilt one."""
    count = 0
    difference = None
    step = f"compare {table.name}"
    for a, b in noted(zip_longest(stored, rebuilt), progress, step):
        count += a is not None
        if difference is None and a != b:
            difference = _difference(table, key, a, b)
    return count, difference


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in row)


def _difference(
    table: Table, key: tuple[str, ...], a: tuple | None, b: tuple | None
) -> tuple[str, int | None]:
    """The first rows that differ (a stored, b rebuilt; None past a side's end), named."""
    columns = [c.name for c in table.columns if c.name != "id"]
    names = list(key) + [n for n in columns if n not in key]
    width = len(key)
    row: tuple = a if b is None or (a is not None and _sort_key(a) < _sort_key(b)) else b  # type: ignore[assignment]
    ident = dict(zip(key, row[:width], strict=True))
    position = _position_of(names, row)
    if a is not None and b is not None and a[:width] == b[:width]:
        changed = [n for n, x, y in zip(names, a, b, strict=True) if x != y]
        shown = ", ".join(
            f"{n} stored {x!r}, rebuilt {y!r}" if n not in SEALED else f"{n} differs"
            for n, x, y in zip(names, a, b, strict=True)
            if n in changed
        )
        return f"{table.name} row {ident}: {shown}", position
    side = "only in the stored read model" if row is a else "missing from the stored read model"
    return f"{table.name} row {ident} is {side} (a rebuild from the log differs)", position


def _position_of(names: list[str], row: tuple) -> int | None:
    """The log position of an event's row (not of a tracking row, whose position is a mark)."""
    if "position" in names and "name" not in names:
        value = row[names.index("position")]
        return value if isinstance(value, int) else None
    return None


# --- balance assertions ----------------------------------------------------------------------


def figure_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, scope: str, figure: str
) -> Decimal:
    """One audited figure at (as_of, known_at), by the outcome rules over the facts known then.

    `scope`: `contract`; a borough (its own bill, and the outcome weeks of its cases); or the
    top-up funder (its share, and every outcome week it tops up).
    """
    if figure not in FIGURES:
        raise AssertionProblem(f"figure {figure!r}: use one of {', '.join(FIGURES)}")
    try:
        k = outcome_facts.knowledge(engine, contract, known_at)
    except QueryError as exc:
        raise AssertionProblem(str(exc)) from None
    result = liability(k.contract, k.cases, k.coverage, as_of)
    totals = result.totals
    payers = {p.payer: p for p in result.payers}
    boroughs = {b.borough: b for b in result.boroughs}
    if scope == "contract":
        owed, provisional, weeks = totals.owed, totals.provisional, totals.weeks.outcome
    elif scope in payers:
        owed, provisional = payers[scope].owed, payers[scope].provisional
        if scope == result.top_up_funder:
            weeks = totals.weeks.outcome
        else:
            weeks = boroughs[scope].weeks.outcome if scope in boroughs else 0
    else:
        raise AssertionProblem(
            f"scope {scope!r} is not 'contract', a borough or a payer of contract {contract!r} "
            f"(known: {', '.join(sorted(payers)) or 'none'})"
        )
    if figure == "outcome_weeks":
        return Decimal(weeks)
    return (owed if figure == "owed" else provisional).quantize(PENNY)


def _assertions(engine: Engine) -> Check:
    check = Check("assertions")
    checked = 0
    for contract in readmodel.contracts(engine):
        facts = readmodel.facts_known_at(engine, contract, EVERYTHING, ("BalanceAsserted",))
        for fact in facts:
            e: Any = fact.event
            checked += 1
            known = KnownAt.on(e.known_at)
            try:
                now = figure_at(engine, contract, e.as_of, known, e.scope, e.figure)
            except AssertionProblem as exc:
                check.fail(
                    f"BalanceAsserted by {e.by} can no longer be computed: {exc}",
                    fact.recorded.position,
                )
                continue
            if now == e.value:
                continue
            since = _appended_since(engine, fact.recorded.position, known)
            shown = " ".join(f"#{p}" for p in since[:8]) + (" ..." if len(since) > 8 else "")
            check.fail(
                f"BalanceAsserted by {e.by}: {e.figure} of {e.scope} as of {e.as_of}, known at "
                f"{e.known_at or 'everything'}, was {e.value}, is now {now}"
                + (f"; appended since and known by then: {shown}" if since else ""),
                fact.recorded.position,
            )
    check.summary = f"{counted(checked, 'balance assertion')} re-checked"
    return check


def _appended_since(engine: Engine, position: int, known: KnownAt) -> list[int]:
    """The first nine events after `position` known at `known` (read from the rebuilt index:
    the finding shows eight and says whether there are more)."""
    ix = index.events_index.c
    query = select(ix.position).where(ix.position > position).order_by(ix.position).limit(9)
    if known.until is not None:
        query = query.where(ix.recorded_on <= index.naive_utc(known.until))
    with engine.connect() as conn:
        return list(conn.scalars(query))


def figure_to_assert(
    ledger: Ledger,
    contract: str | None,
    scope: str,
    figure: str,
    as_of: date,
    known_at: date | None,
    expected: Decimal | None = None,
) -> tuple[str, Decimal]:
    """The contract and the figure an auditor signs off, computed now (the read model caught
    up first); AssertionProblem when it differs from `expected`, and nothing is to be recorded.
    """
    ledger.follow(readmodel.catch_up, readmodel.NAME)
    seals.check_followed(ledger, (readmodel.NAME,))
    try:
        contract = queries.the_contract(ledger.engine, contract)
    except QueryError as exc:
        raise AssertionProblem(str(exc)) from None
    from soc_ledger.projections import mechanisms

    if not mechanisms.is_weeks_only(ledger.engine, contract, as_of, KnownAt.on(known_at)):
        # The figures signed off are the weeks' (SPEC §4); another mechanism's would not be.
        named = ", ".join(mechanisms.mechanisms_at(ledger.engine, contract, as_of))
        raise AssertionProblem(
            f"assert signs off figures of weeks out of care alone; contract {contract!r} pays "
            f"by {named}: nothing was recorded"
        )
    value = figure_at(ledger.engine, contract, as_of, KnownAt.on(known_at), scope, figure)
    if expected is not None and expected != value:
        raise AssertionProblem(
            f"{figure} of {scope} as of {as_of}, known at {known_at or 'everything'}, is "
            f"{value}, not {expected}: nothing was recorded"
        )
    return contract, value
