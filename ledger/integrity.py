"""`verify`: is the store what was written, and does replay reproduce every answer? (SPEC §11)

The checks, in order; the first break is named by the log position it was found at:

1. **chain** — every stored event decodes (decrypts), its hash is SHA-256 over its content and
   the previous event's hash (`store.seal`), and its `prev_hash` is that previous hash, from the
   genesis hash on; the library's own columns (stream id, version, type) agree with the sealed
   envelope. One edited byte anywhere in an event, a removed, inserted or reordered event, all
   break it at that position. With `against`, the chain heads exported earlier must still be
   in the log with the same hashes: nothing up to them moved (a truncated log is caught too).
2. **streams** — each aggregate's versions run 1, 2, 3 ... in log order.
3. **privacy** — no referral holds a CHILD id in clear or a full date of birth.
4. **aggregates** — every Contract and Case is replayed from its stream and its rules hold on
   the result (no two care episodes of a case overlap).
5. **projections** — the stored read models, caught up to the log, equal a rebuild from
   position 0 into a scratch database (the user's read model is never touched), row by row.
6. **assertions** — every `BalanceAsserted` still holds, recomputed by the outcome rules from
   the rebuilt facts as known at its `known_at`.

Verification holds the writer lock, so it sees one state of the log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Engine, Table, create_engine, select

from soc_ledger.domain import case as case_rules
from soc_ledger.domain.contract import DomainError
from soc_ledger.domain.errors import LedgerError
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt, Recorded
from soc_ledger.domain.values import PENNY
from soc_ledger.ledger import index
from soc_ledger.ledger.encryption import open_text
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.privacy import PREFIX
from soc_ledger.ledger.store import GENESIS, seal, stream_id, to_recorded

if TYPE_CHECKING:
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.ledger.store import EventLog

EXPORT_FORMAT = "soc-ledger chain heads"
CHECKPOINT_EVERY = 1000
FIGURES = ("owed", "provisional", "outcome_weeks")


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    message: str
    position: int | None = None

    def __str__(self) -> str:
        where = f"#{self.position}: " if self.position is not None else ""
        return f"{self.check}: {where}{self.message}"


@dataclass(slots=True)
class Check:
    name: str
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings and not self.skipped

    def fail(self, message: str, position: int | None = None) -> None:
        self.findings.append(Finding(self.name, message, position))


@dataclass(slots=True)
class Report:
    checks: list[Check]
    events: int
    head: tuple[int, str]
    checkpoints: list[tuple[int, str]]
    contract_heads: dict[str, tuple[int, str]]

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_break(self) -> Finding | None:
        found = self.findings
        return found[0] if found else None

    def as_json(self) -> dict[str, Any]:
        first = self.first_break
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"position": self.head[0], "hash": self.head[1]},
            "first_break": None if first is None else _finding_json(first),
            "checks": [
                {
                    "check": c.name,
                    "ok": c.ok,
                    "skipped": c.skipped,
                    "summary": c.summary,
                    "findings": [_finding_json(f) for f in c.findings],
                }
                for c in self.checks
            ],
        }

    def export(self) -> dict[str, Any]:
        """The chain heads, for a later `verify --against` (nothing up to them may move)."""
        return {
            "format": EXPORT_FORMAT,
            "version": 1,
            "exported_at": datetime.now(UTC).isoformat(),
            "events": self.events,
            "head": _head_json(self.head),
            "contracts": {c: _head_json(h) for c, h in sorted(self.contract_heads.items())},
            "checkpoints": [_head_json(h) for h in self.checkpoints],
        }


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"check": f.check, "position": f.position, "message": f.message}


def _head_json(head: tuple[int, str]) -> dict[str, Any]:
    return {"position": head[0], "hash": head[1]}


# --- the projections verify rebuilds -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: how to follow the log, its tracking name, its tables and their row keys."""

    name: str
    catch_up: Callable[[Engine, EventLog], int]
    tables: tuple[tuple[Table, tuple[str, ...]], ...]


# Read-model columns written with `seal_text` (encrypted when CIPHER_KEY is set: compared clear).
SEALED = frozenset({"payload", "cap_gross"})


def projections() -> list[Projection]:
    """Every read model, in the order they are followed (the event index first)."""
    from soc_ledger.projections import latest, readmodel

    return [
        Projection(index.INDEX, index.catch_up, ((index.events_index, ("position",)),)),
        Projection(
            readmodel.NAME,
            readmodel.catch_up,
            ((readmodel.fact_versions, ("stream", "version", "recorded_from")),),
        ),
        Projection(
            latest.NAME,
            latest.catch_up,
            ((latest.latest_case_weeks, ("contract", "case_id")),),
        ),
    ]


# --- verify -------------------------------------------------------------------------------------


def verify(ledger: Ledger, against: dict[str, Any] | None = None) -> Report:
    """Every check, under the writer lock; later checks are skipped once the chain is broken."""
    with writer_lock(ledger.location):
        return _verify(ledger, against)


def _verify(ledger: Ledger, against: dict[str, Any] | None) -> Report:
    walk = _walk(ledger.log)
    report = Report(
        [walk.chain],
        walk.count,
        (walk.last_position, walk.prev),
        walk.checkpoints,
        walk.contract_heads,
    )
    if against is not None:
        report.checks.append(_against(walk, against))
    report.checks += [walk.streams, walk.privacy]
    later = ("aggregates", "projections", "assertions")
    if not walk.chain.ok:
        for name in later:
            report.checks.append(Check(name, "not checked: the chain is broken", skipped=True))
        return report
    report.checks.append(_aggregates(walk.records))
    scratch_dir = tempfile.mkdtemp(prefix="soc-ledger-verify-")
    scratch = create_engine(f"sqlite:///{scratch_dir}/rebuilt.db")
    try:
        report.checks.append(_projections(ledger, scratch))
        report.checks.append(_assertions(scratch, walk.records))
    finally:
        scratch.dispose()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return report


@dataclass(slots=True)
class _Walk:
    chain: Check = field(default_factory=lambda: Check("chain"))
    streams: Check = field(default_factory=lambda: Check("streams"))
    privacy: Check = field(default_factory=lambda: Check("privacy"))
    records: list[Recorded] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    contract_heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    count: int = 0
    last_position: int = 0
    prev: str = GENESIS
    gaps: int = 0


def _walk(log: EventLog) -> _Walk:
    """The chain, stream versions and privacy in one pass over the log, oldest first."""
    w = _Walk()
    versions: dict[Any, int] = {}
    for note in log.notifications():
        position = note.id
        try:
            state = log.mapper.decode_state(note)
            sealed_hash, prev_hash = state["hash"], state["prev_hash"]
            payload, stream = state["event"], state["stream"]
            version = state["originator_version"]
        except Exception as exc:  # undecodable bytes, failed decryption, a missing field
            w.chain.fail(
                f"the stored event cannot be read ({type(exc).__name__}: {exc}): it was altered "
                "or damaged after it was written",
                position,
            )
            break
        if prev_hash != w.prev:
            w.chain.fail(
                f"its prev_hash {prev_hash[:12]}... is not the hash of the event before it "
                f"({w.prev[:12]}...): an event before it was removed, inserted or reordered",
                position,
            )
            break
        if seal(state) != sealed_hash:
            w.chain.fail(
                "its content does not match its hash: the event was altered after it was written",
                position,
            )
            break
        if (
            state["originator_id"] != note.originator_id.hex
            or note.originator_id != stream_id(stream)
            or version != note.originator_version
            or payload.get("type") != note.topic
        ):
            w.chain.fail(
                "the store's stream, version or type columns disagree with the sealed event",
                position,
            )
            break
        try:
            record = to_recorded(state, position)
        except (ValidationError, KeyError, ValueError) as exc:
            w.chain.fail(f"the sealed event is not a valid ledger event: {exc}", position)
            break
        w.count += 1
        if w.last_position and position != w.last_position + 1:
            w.gaps += 1
        w.last_position, w.prev = position, sealed_hash
        w.hashes[position] = sealed_hash
        if w.count % CHECKPOINT_EVERY == 0:
            w.checkpoints.append((position, sealed_hash))
        w.contract_heads[record.event.contract] = (position, sealed_hash)
        expected = versions.get(note.originator_id, 0) + 1
        if version != expected:
            w.streams.fail(
                f"version {version} of stream {stream} follows version {expected - 1}: "
                "a version is missing or repeated",
                position,
            )
        versions[note.originator_id] = version
        _privacy(w.privacy, record)
        w.records.append(record)
    if w.count and (not w.checkpoints or w.checkpoints[-1][0] != w.last_position):
        w.checkpoints.append((w.last_position, w.prev))
    gaps = f" ({w.gaps} gaps in positions, from rolled-back appends)" if w.gaps else ""
    head = f"head #{w.last_position} {w.prev[:16]}{gaps}"
    w.chain.summary = f"{_n(w.count, 'event')}, {head}" if w.count else "empty log"
    w.streams.summary = f"{_n(len(versions), 'stream')}, versions contiguous"
    w.privacy.summary = "every child_ref a pseudonym, every date of birth a year and month"
    return w


def _privacy(check: Check, record: Recorded) -> None:
    event = record.event
    fields: dict[str, Any] = {}
    if event.type == "ReferralReceived":
        fields = {"child_ref": event.child_ref, "date_of_birth": event.date_of_birth}  # type: ignore[attr-defined]
    elif event.type == "EventCorrected":
        fields = event.changes  # type: ignore[attr-defined]
    child_ref = fields.get("child_ref")
    if child_ref is not None and not str(child_ref).startswith(PREFIX):
        check.fail("a child_ref is stored in clear, not as a pseudonym", record.position)
    born = fields.get("date_of_birth")
    if born is not None and len(str(born)) != 7:
        check.fail("a full date of birth is stored (only year and month may be)", record.position)


def _against(walk: _Walk, exported: dict[str, Any]) -> Check:
    check = Check("export")
    if exported.get("format") != EXPORT_FORMAT:
        check.fail(f"not a chain-heads export (its format is {exported.get('format')!r})")
        return check
    heads = [exported["head"], *exported.get("contracts", {}).values()]
    heads += exported.get("checkpoints", [])
    when = exported.get("exported_at", "?")
    for head in sorted(heads, key=lambda h: h["position"]):
        position, wanted = int(head["position"]), head["hash"]
        if position == 0:
            continue
        found = walk.hashes.get(position)
        if found is None and walk.chain.ok:
            check.fail(
                f"the head exported at {when} is gone: the log now ends at "
                f"#{walk.last_position} (events were removed)",
                position,
            )
            break
        if found is not None and found != wanted:
            check.fail(
                f"the hash exported at {when} ({wanted[:16]}...) is now {found[:16]}...: "
                "history up to this event has changed",
                position,
            )
            break
    check.summary = (
        f"{len(heads)} heads exported at {when} still in the log, "
        f"head #{exported['head']['position']}"
    )
    return check


def _aggregates(records: list[Recorded]) -> Check:
    from soc_ledger.ledger.recording import fold_case, fold_contract

    check = Check("aggregates")
    streams: dict[str, list[Recorded]] = {}
    for r in records:
        streams.setdefault(r.stream, []).append(r)
    contracts = sorted({json.loads(s)[0] for s in streams})
    cases = 0
    for contract in contracts:
        own = json.dumps([contract])
        history = streams.get(own, [])
        try:
            state = fold_contract(contract, history)
        except DomainError as exc:
            where = history[-1].position if history else None
            check.fail(f"contract {contract!r} does not replay: {exc.message}", where)
            continue
        for stream, events in streams.items():
            parts = json.loads(stream)
            if parts[0] != contract or len(parts) != 2:
                continue
            cases += 1
            try:
                case_rules.check_episodes(fold_case(parts[1], events, state))
            except DomainError as exc:
                check.fail(
                    f"case {parts[1]!r} of contract {contract!r} does not replay: "
                    f"{exc.field}: {exc.message}",
                    events[-1].position,
                )
    check.summary = f"{_n(len(contracts), 'contract')} and {_n(cases, 'case')} replayed"
    return check


# --- projections -------------------------------------------------------------------------------


def _projections(ledger: Ledger, scratch: Engine) -> Check:
    check = Check("projections")
    models = projections()
    for model in models:  # the stored models, brought up to the log's head
        model.catch_up(ledger.engine, ledger.log)
    index.metadata.create_all(scratch)
    for model in models:  # and the same from position 0, elsewhere
        model.catch_up(scratch, ledger.log)
    sizes = []
    tracked = [m.name for m in models]
    tables = [t for m in models for t in m.tables] + [(index.tracking, ("name",))]
    for table, key in tables:
        stored = _rows(ledger.engine, table, key, tracked)
        rebuilt = _rows(scratch, table, key, tracked)
        sizes.append(f"{table.name} {len(stored)}")
        difference = _first_difference(table, key, stored, rebuilt)
        if difference is not None:
            message, position = difference
            check.fail(message, position)
    check.summary = "identical to a rebuild from the log: " + ", ".join(sizes) + " rows"
    return check


def _rows(engine: Engine, table: Table, key: tuple[str, ...], tracked: list[str]) -> list[tuple]:
    columns = [c for c in table.columns if c.name != "id"]
    query = select(*columns)
    if table is index.tracking:
        query = query.where(index.tracking.c.name.in_(tracked))
    names = [c.name for c in columns]
    order = [names.index(k) for k in key] + [i for i, n in enumerate(names) if n not in key]
    rows = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            values = [
                open_text(v) if n in SEALED else v for n, v in zip(names, row, strict=True)
            ]
            rows.append(tuple(values[i] for i in order))
    width = len(key)
    rows.sort(key=lambda r: r[:width])  # keys are unique; ties (if ever) by the whole row
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and rows[j][:width] == rows[i][:width]:
            j += 1
        if j - i > 1:
            rows[i:j] = sorted(rows[i:j], key=_sort_key)
        i = j
    return rows


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in row)


def _first_difference(
    table: Table, key: tuple[str, ...], stored: list[tuple], rebuilt: list[tuple]
) -> tuple[str, int | None] | None:
    if stored == rebuilt:
        return None
    columns = [c.name for c in table.columns if c.name != "id"]
    names = list(key) + [n for n in columns if n not in key]
    width = len(key)
    for i in range(max(len(stored), len(rebuilt))):
        a = stored[i] if i < len(stored) else None
        b = rebuilt[i] if i < len(rebuilt) else None
        if a == b:
            continue
        row = a if b is None or (a is not None and _sort_key(a) < _sort_key(b)) else b
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
    return f"{table.name}: the stored rows differ from a rebuild", None


def _position_of(names: list[str], row: tuple) -> int | None:
    """The log position of an event's row (not of a tracking row, whose position is a mark)."""
    if "position" in names and "name" not in names:
        value = row[names.index("position")]
        return value if isinstance(value, int) else None
    return None


# --- balance assertions ----------------------------------------------------------------------


class AssertionProblem(LedgerError):
    """A figure that cannot be asserted as asked; the message says why."""


def figure_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, scope: str, figure: str
) -> Decimal:
    """One audited figure at (as_of, known_at), by the outcome rules over the facts known then.

    `scope`: `contract`; a borough (its own bill, and the outcome weeks of its cases); or the
    top-up funder (its share, and every outcome week it tops up).
    """
    from soc_ledger.domain.outcomes.liability import liability
    from soc_ledger.projections import queries

    if figure not in FIGURES:
        raise AssertionProblem(f"figure {figure!r}: use one of {', '.join(FIGURES)}")
    try:
        k = queries.knowledge(engine, contract, known_at)
    except queries.QueryError as exc:
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


def _assertions(engine: Engine, records: list[Recorded]) -> Check:
    from soc_ledger.projections import readmodel

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
            since = [
                r.position
                for r in records
                if r.position > fact.recorded.position and known.knows(r.recorded_on)
            ]
            shown = " ".join(f"#{p}" for p in since[:8]) + (" ..." if len(since) > 8 else "")
            check.fail(
                f"BalanceAsserted by {e.by}: {e.figure} of {e.scope} as of {e.as_of}, known at "
                f"{e.known_at or 'everything'}, was {e.value}, is now {now}"
                + (f"; appended since and known by then: {shown}" if since else ""),
                fact.recorded.position,
            )
    check.summary = f"{_n(checked, 'balance assertion')} re-checked"
    return check


def assertion_event(
    contract: str,
    scope: str,
    figure: str,
    as_of: date,
    known_at: date | None,
    value: Decimal,
    by: str,
    now: datetime,
) -> str:
    """The JSON line of an auditor's sign-off of `value`, recorded now."""
    event = {
        "type": "BalanceAsserted",
        "contract": contract,
        "effective": now.date().isoformat(),
        "recorded_on": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "as_of": as_of.isoformat(),
        "scope": scope,
        "figure": figure,
        "value": str(value),
        "by": by,
    }
    if known_at is not None:
        event["known_at"] = known_at.isoformat()
    return json.dumps(event)


def assert_balance(
    ledger: Ledger,
    contract: str | None,
    scope: str,
    figure: str,
    as_of: date,
    known_at: date | None,
    by: str,
    expected: Decimal | None = None,
    now: datetime | None = None,
) -> tuple[str, Decimal, int]:
    """Compute the figure, check it against `expected` if given, and record the sign-off.

    Returns the contract, the value asserted and its log position.
    """
    from soc_ledger.projections import queries, readmodel

    ledger.follow(readmodel.catch_up, readmodel.NAME)
    try:
        contract = queries.the_contract(ledger.engine, contract)
    except queries.QueryError as exc:
        raise AssertionProblem(str(exc)) from None
    value = figure_at(ledger.engine, contract, as_of, KnownAt.on(known_at), scope, figure)
    if expected is not None and expected != value:
        raise AssertionProblem(
            f"{figure} of {scope} as of {as_of}, known at {known_at or 'everything'}, is "
            f"{value}, not {expected}: nothing was recorded"
        )
    line = assertion_event(
        contract, scope, figure, as_of, known_at, value, by, now or datetime.now(UTC)
    )
    outcome = ledger.record_lines([line], "assert")
    return contract, value, outcome.positions[0] if outcome.positions else 0


def load_export(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AssertionProblem(f"not a chain-heads export: {exc}") from None
    if not isinstance(data, dict) or "head" not in data:
        raise AssertionProblem("not a chain-heads export (no head)")
    return data


def describe(checks: Iterable[Check]) -> list[dict[str, str]]:
    """One row per check, for the table."""
    return [
        {
            "check": c.name,
            "result": "ok" if c.ok else ("skipped" if c.skipped else "FAILED"),
            "detail": c.summary if c.ok or c.skipped else _where(c.findings[0]),
        }
        for c in checks
    ]


def _where(f: Finding) -> str:
    return (f"#{f.position}: " if f.position is not None else "") + f.message


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
