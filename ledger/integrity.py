"""`verify`, the log's own checks: is the store what was written? (SPEC §11)

The checks, in order; the first break is named by the log position it was found at:

1. **chain** — every stored event decodes (decrypts), its hash is SHA-256 over its content and
   the previous event's hash (`store.seal`), and its `prev_hash` is that previous hash, from the
   genesis hash on; the library's own columns (stream id, version, type) agree with the sealed
   envelope. One edited byte anywhere in an event, a removed, inserted or reordered event, all
   break it at that position. With `against`, the chain heads exported earlier must still be
   in the log with the same hashes: nothing up to them moved (a truncated log is caught too).
2. **streams** — each aggregate's versions run 1, 2, 3 ... in log order.
3. **privacy** — no referral holds a CHILD id in clear or a full date of birth: not as stored,
   not in any correction at any depth (a correction of a correction), and not as any referral
   reads with its corrections applied.
4. **aggregates** — every Contract and Case is replayed from its stream and its rules hold on
   the result (no two care episodes of a case overlap).

The read side's checks (projections rebuilt, balance assertions recomputed) and the whole
`verify` that runs them after these are in `projections/verification.py`. The ledger records
an auditor's sign-off (`assert_balance`) of a figure the read side computed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from soc_ledger.domain import case as case_rules
from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.errors import LedgerError
from soc_ledger.domain.knowledge import Recorded, known_facts, known_facts_read_twice
from soc_ledger.ledger.privacy import is_pseudonym
from soc_ledger.ledger.progress import Progress, noted
from soc_ledger.ledger.store import (
    GENESIS,
    DamagedEvent,
    recorded_at,
    seal,
    stream_id,
    to_recorded,
)

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

    from soc_ledger.ledger.service import Ledger
    from soc_ledger.ledger.store import EventLog

EXPORT_FORMAT = "soc-ledger chain heads"
CHECKPOINT_EVERY = 1000


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
    # The cases a sampled check read (`verify --sample`), for the auditor's working papers.
    cases: list[dict[str, str]] | None = None

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
    # Every stream the log holds, as the walk found them (not as any helper table says):
    # what `verify --sample` draws from.
    streams: list[str] = field(default_factory=list)

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
                    **({} if c.cases is None else {"cases": c.cases}),
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


# --- the log's checks ---------------------------------------------------------------------------


def check_log(
    ledger: Ledger, against: dict[str, Any] | None, later: Sequence[str] = ()
) -> tuple[Report, bool]:
    """The log's checks, with the caller holding the writer lock: the report so far and
    whether the log may be checked further. Once the chain is broken the aggregates and the
    `later` checks are reported skipped.

    Memory stays flat with the log: the walk keeps per stream only its last version and first
    position, and the hashes of the positions `against` names; corrected referrals and the
    aggregates are replayed one stream at a time, read back by stream (`EventLog.by_stream`).
    """
    progress = ledger.progress
    total = ledger.log.recorder.max_notification_id() or 0
    walk = _walk(ledger.log, _exported_positions(against), progress, total)
    report = Report(
        [walk.chain],
        walk.count,
        (walk.last_position, walk.prev),
        walk.checkpoints,
        walk.contract_heads,
        list(walk.first),
    )
    if against is not None:
        report.checks.append(_against(walk, against))
    report.checks += [walk.streams, walk.privacy]
    if not walk.chain.ok:
        for name in ("aggregates", *later):
            report.checks.append(Check(name, "not checked: the chain is broken", skipped=True))
        return report, False
    report.checks.append(_aggregates(ledger.log, walk.first, progress, walk.count))
    return report, True


@dataclass(slots=True)
class _Walk:
    chain: Check = field(default_factory=lambda: Check("chain"))
    streams: Check = field(default_factory=lambda: Check("streams"))
    privacy: Check = field(default_factory=lambda: Check("privacy"))
    first: dict[str, int] = field(default_factory=dict)  # stream -> its first position
    corrected: set[str] = field(default_factory=set)  # streams holding a correction
    wanted: set[int] = field(default_factory=set)  # positions whose hash `against` names
    hashes: dict[int, str] = field(default_factory=dict)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    contract_heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    count: int = 0
    last_position: int = 0
    prev: str = GENESIS
    gaps: int = 0
    total: int | None = None  # the last position, for progress


def _exported_positions(exported: dict[str, Any] | None) -> set[int]:
    if exported is None or exported.get("format") != EXPORT_FORMAT:
        return set()
    heads = [exported["head"], *exported.get("contracts", {}).values()]
    heads += exported.get("checkpoints", [])
    return {int(h["position"]) for h in heads}


def _walk(
    log: EventLog, wanted: set[int], progress: Progress | None = None, total: int | None = None
) -> _Walk:
    """The chain, stream versions and privacy in one pass over the log, oldest first."""
    w = _Walk(wanted=wanted, total=total)
    versions: dict[Any, int] = {}
    for note in noted(log.notifications(), progress, "verify: chain", w.total):
        position = note.id
        try:
            state = log.mapper.decode_state(note)
            sealed_hash, prev_hash = state["hash"], state["prev_hash"]
            payload, stream = state["event"], state["stream"]
            version = state["originator_version"]
        except Exception as exc:  # undecodable bytes, failed decryption, a missing field
            exc = exc.cause if isinstance(exc, DamagedEvent) else exc
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
        if position in w.wanted:
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
        w.first.setdefault(record.stream, position)
        if record.event.type == "EventCorrected":
            w.corrected.add(record.stream)
    _privacy_as_read(w.privacy, log, w)
    if w.count and (not w.checkpoints or w.checkpoints[-1][0] != w.last_position):
        w.checkpoints.append((w.last_position, w.prev))
    gaps = f" ({w.gaps} gaps in positions, from rolled-back appends)" if w.gaps else ""
    head = f"head #{w.last_position} {w.prev[:16]}{gaps}"
    w.chain.summary = f"{counted(w.count, 'event')}, {head}" if w.count else "empty log"
    w.streams.summary = f"{counted(len(versions), 'stream')}, versions contiguous"
    w.privacy.summary = "every child_ref a pseudonym, every date of birth a year and month"
    return w


def _privacy(check: Check, record: Recorded, reading: str = "is stored") -> None:
    event = record.event
    if event.type == "ReferralReceived":
        fields = {"child_ref": event.child_ref, "date_of_birth": event.date_of_birth}  # type: ignore[attr-defined]
        _personal(check, fields, record.position, reading)
    elif event.type == "EventCorrected":
        _personal(check, event.changes, record.position, reading)  # type: ignore[attr-defined]


def _personal(check: Check, fields: Any, position: int, reading: str) -> None:
    """A child's id and birth date wherever they are in `fields`, nested changes included."""
    if isinstance(fields, list):
        for value in fields:
            _personal(check, value, position, reading)
        return
    if not isinstance(fields, dict):
        return
    if "child_ref" in fields and not is_pseudonym(fields["child_ref"]):
        check.fail(f"a child_ref {reading} in clear, not as a pseudonym", position)
    born = fields.get("date_of_birth")
    if born is not None and not (isinstance(born, str) and len(born) == 7):
        check.fail(f"a full date of birth {reading} (only year and month may be)", position)
    for value in fields.values():
        _personal(check, value, position, reading)


def _history(log: EventLog, events: Iterable[tuple[int, StoredEvent]]) -> list[Recorded]:
    """A stream's events decoded, in log order (the order the walk checked its versions in)."""
    history = list(_decoded(log, events))
    history.sort(key=lambda r: r.position)
    return history


def _decoded(log: EventLog, events: Iterable[tuple[int, StoredEvent]]) -> Iterator[Recorded]:
    """A stream's events decoded one at a time, as they are read (by version: log order)."""
    for position, stored in events:
        yield recorded_at(log.mapper.decode_state(stored), position, f"at #{position}")


def _privacy_as_read(check: Check, log: EventLog, w: _Walk) -> None:
    """Each corrected referral as it reads now, corrections of corrections applied (read back
    a stream at a time, up to where the walk got: the chain's first break)."""
    for stream in sorted(w.corrected, key=w.first.__getitem__):
        history = _history(log, ((p, e) for p, e in log.by_stream(stream) if p <= w.last_position))
        try:
            facts = known_facts(history)
        except ValidationError:
            check.fail("a correction does not read as a valid event", history[-1].position)
            continue
        for fact in facts:
            if fact.event.type == "ReferralReceived" and len(fact.because) > 1:
                reading = "is read (as corrected)"
                _privacy(check, replace(fact.recorded, event=fact.event), reading)


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


def _aggregates(
    log: EventLog,
    first: dict[str, int],
    progress: Progress | None = None,
    total: int | None = None,
) -> Check:
    """Every aggregate replayed from its own stream, read back alone (`replay_aggregates`)."""
    skip = {stream_id(s) for s in first if len(json.loads(s)) == 1}
    return replay_aggregates(
        first,
        lambda stream: _decoded(log, log.by_stream(stream)),
        _streams(log, skip, progress, total),
    )


def replay_aggregates(
    first: dict[str, int],
    contract_stream: Callable[[str], Iterable[Recorded]],
    case_streams: Iterable[list[Recorded]],
) -> Check:
    """Every contract (its stream from `contract_stream`, read twice and never held: its
    claims' lines are most of a large log's bytes, `known_facts_read_twice`), then every case
    of `case_streams` (each one stream's whole history; other streams are passed over) on its
    contract's state. `first` maps every stream to its first position: findings come in the
    order of a contract's name, then of a case's first event in the log."""
    from soc_ledger.ledger.recording import contract_of, fold_case

    check = Check("aggregates")
    contracts = sorted({json.loads(s)[0] for s in first})
    rank = {c: i for i, c in enumerate(contracts)}
    found: list[tuple[tuple[int, int], str, int | None]] = []
    states: dict[str, ContractState] = {}
    for contract in contracts:
        own = json.dumps([contract])
        read = _Reading(contract_stream, own if own in first else None)
        try:
            states[contract] = contract_of(contract, known_facts_read_twice(read))
        except DomainError as exc:
            found.append(
                (
                    (rank[contract], 0),
                    f"contract {contract!r} does not replay: {exc.message}",
                    read.last,
                )
            )
        except ValueError as exc:  # pydantic's ValidationError: a stored reading no event has
            found.append(
                (
                    (rank[contract], 0),
                    f"contract {contract!r} does not replay: {_unreadable(exc)}",
                    read.last,
                )
            )
    cases = 0
    for events in case_streams:
        parts = json.loads(events[0].stream)
        state = states.get(parts[0])
        if state is None or len(parts) != 2:
            continue
        cases += 1
        order = (rank[parts[0]], first[events[0].stream])
        try:
            case_rules.check_episodes(fold_case(parts[1], events, state))
        except DomainError as exc:
            found.append(
                (
                    order,
                    f"case {parts[1]!r} of contract {parts[0]!r} does not replay: "
                    f"{exc.field}: {exc.message}",
                    events[-1].position,
                )
            )
        except ValueError as exc:
            found.append(
                (
                    order,
                    f"case {parts[1]!r} of contract {parts[0]!r} does not replay: "
                    f"{_unreadable(exc)}",
                    events[-1].position,
                )
            )
    for _, message, where in sorted(found, key=lambda f: f[0]):
        check.fail(message, where)
    check.summary = f"{counted(len(contracts), 'contract')} and {counted(cases, 'case')} replayed"
    return check


class _Reading:
    """A stream to read as often as asked (`contract_stream`), noting its last position: where
    a contract that does not replay is named."""

    def __init__(self, read: Callable[[str], Iterable[Recorded]], stream: str | None) -> None:
        self.read, self.stream = read, stream
        self.last: int | None = None

    def __call__(self) -> Iterator[Recorded]:
        if self.stream is None:
            return
        for r in self.read(self.stream):
            self.last = max(self.last or 0, r.position)
            yield r


def _streams(
    log: EventLog, skip: set[Any], progress: Progress | None = None, total: int | None = None
) -> Iterator[list[Recorded]]:
    """Each stream's history but those in `skip`, one at a time, in the order of their ids."""
    current: Any = None
    events: list[tuple[int, StoredEvent]] = []
    for position, stored in noted(log.by_stream(), progress, "verify: aggregates", total):
        if stored.originator_id != current:
            if events:
                yield _history(log, events)
            current, events = stored.originator_id, []
        if current not in skip:
            events.append((position, stored))
    if events:
        yield _history(log, events)


def _unreadable(exc: ValueError) -> str:
    """A stored event (as corrected) that no longer reads as its type: the first reason."""
    first = str(exc).strip().splitlines()
    return "a stored event, as corrected, no longer reads as its type" + (
        f" ({' '.join(first[1:3]).strip()})" if len(first) > 1 else ""
    )


# --- balance assertions ----------------------------------------------------------------------


class AssertionProblem(LedgerError):
    """A figure that cannot be asserted as asked; the message says why."""


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
    contract: str,
    scope: str,
    figure: str,
    as_of: date,
    known_at: date | None,
    by: str,
    value: Decimal,
    now: datetime | None = None,
) -> int:
    """Record the sign-off of `value`, the figure as the read side computed it
    (`projections.verification.figure_to_assert`); returns its log position."""
    line = assertion_event(
        contract, scope, figure, as_of, known_at, value, by, now or datetime.now(UTC)
    )
    outcome = ledger.record_lines([line], "assert")
    return outcome.positions[0] if outcome.positions else 0


def load_export(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AssertionProblem(f"not a chain-heads export: {exc}") from None
    if not isinstance(data, dict) or "head" not in data:
        raise AssertionProblem("not a chain-heads export (no head)")
    return data


def counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
