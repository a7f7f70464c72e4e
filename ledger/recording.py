"""Recording events: validate against the domain, append all or nothing (the lines are parsed
into `Incoming` events by `parsing`).

Every problem in a batch is collected and reported together (`file:line: field: what`), and
a batch with any problem writes nothing. Validation and append happen under the writer lock,
so what was checked is what is appended on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from soc_ledger.domain import case as case_rules
from soc_ledger.domain import contract as contract_rules
from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.events import (
    CASE_EVENTS,
    EVENT_TYPES,
    ClaimSubmitted,
    Event,
    EventCorrected,
    ReferralReceived,
)
from soc_ledger.domain.knowledge import Fact, Recorded, corrected_reading, known_facts
from soc_ledger.ledger import index
from soc_ledger.ledger.index import stream_name, stream_parts
from soc_ledger.ledger.privacy import Pseudonymiser
from soc_ledger.ledger.problems import Problem, Rejected
from soc_ledger.ledger.store import Envelope, canonical
from soc_ledger.ledger.store import envelope as seal_envelope


@dataclass(frozen=True, slots=True)
class Incoming:
    """One validated input event and where it came from."""

    source: str
    line: int
    event: Event


@dataclass(slots=True)
class Outcome:
    appended: int = 0
    already_present: int = 0
    positions: list[int] = field(default_factory=list)


# --- appending -----------------------------------------------------------------------------


def digest_of(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def payload(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)


def stream_of(event: Event) -> str:
    """Case events live in the case's stream; everything else in the contract's."""
    if event.type in CASE_EVENTS:
        return stream_name(event.contract, event.case_id)
    return stream_name(event.contract)


class Batch:
    """The write side of one `record` or import: aggregates loaded once, checked in order.

    It is checked and appended chunk by chunk inside one transaction (`flush` after each
    chunk is in): the aggregates' states, stream versions and keys stay in memory, the events'
    histories do not. A history is read (from `reader`, which sees this transaction's own
    events) when a stream is first touched, and again only when a correction needs it. The
    batch as a whole is judged by `check_cases` once its last chunk is in.
    """

    def __init__(
        self,
        engine,
        pseudonymiser: Pseudonymiser,
        now: datetime,
        reader: Callable[[str], list[Recorded]],
    ) -> None:
        self.engine = engine
        self.pseudonymiser = pseudonymiser
        self.now = now
        self.reader = reader
        self.streams: dict[str, list[Recorded]] = {}  # loaded histories, this chunk's included
        self.stream_keys: dict[str, frozenset[str]] = {}  # keys in a loaded history
        self.unflushed: dict[str, list[Recorded]] = {}  # this chunk's events of unloaded streams
        self.versions: dict[str, int] = {}  # stream -> its last version, this batch's included
        self.stored_streams: dict[str, set[str]] = {}  # contract -> streams with events
        self.begun: set[str] = set()  # streams whose first event is this batch's
        self.fresh: set[str] = set()  # contracts with no event stored before this batch
        self.contracts: dict[str, ContractState] = {}
        self.cases: dict[str, case_rules.CaseState] = {}
        self.pending: list[tuple[Recorded, str, dict[str, Any]]] = []  # (record, digest, payload)
        self.keys: dict[tuple[str, str], tuple[str, str, int]] = {}  # -> digest, stream, version
        self.stored_keys: dict[str, dict[str, index.IndexedEvent]] = {}
        self.keyless: Counter[tuple[str, str]] = Counter()
        self.stored_keyless: dict[str, dict[str, int]] = {}
        self.problems: list[Problem] = []
        self.already_present = 0
        self.last_item: dict[str, tuple[str, int]] = {}  # stream -> its last (source, line)

    # -- aggregate state ------------------------------------------------------------------

    def _stored(self, name: str) -> set[str]:
        """The streams of `name`'s contract that hold events in the store."""
        contract = stream_parts(name)[0]
        if contract not in self.stored_streams:
            self.stored_streams[contract] = index.streams_of(self.engine, contract)
            if not self.stored_streams[contract]:
                self.fresh.add(contract)
        return self.stored_streams[contract]

    def _stream(self, name: str) -> list[Recorded]:
        """A stream's whole history as this batch leaves it so far."""
        if name not in self.streams:
            history = self.reader(name) if name in self._stored(name) else []
            history.extend(self.unflushed.pop(name, []))
            self.streams[name] = history
            self.versions[name] = history[-1].version if history else 0
        return self.streams[name]

    def _stream_keys(self, name: str) -> frozenset[str]:
        """The keys of a stream's stored events, read from the log (this batch's own keys are
        found in `keys` first, so they need not be added)."""
        if name in self.begun:
            # Every key it holds is this batch's, already in `keys`: nothing to read back.
            return frozenset()
        found = self.stream_keys.get(name)
        if found is None:
            found = self.stream_keys[name] = frozenset(
                r.event.key for r in self._stream(name) if r.event.key is not None
            )
        return found

    def _version(self, name: str) -> int:
        if name not in self.versions:
            self._stream(name)
        return self.versions[name]

    def _has_events(self, name: str) -> bool:
        return self.versions.get(name, 0) > 0 or name in self._stored(name)

    def flush(self) -> None:
        """This batch's checked events are in the store (in its transaction): forget their
        histories, keep the states."""
        for name, version in self.versions.items():
            if version:
                stored = self._stored(name)
                if name not in stored:
                    self.begun.add(name)
                stored.add(name)
        self.streams.clear()
        self.stream_keys.clear()
        self.unflushed.clear()
        self.pending.clear()

    def contract(self, contract: str) -> ContractState:
        if contract not in self.contracts:
            self.contracts[contract] = fold_contract(contract, self._stream(stream_name(contract)))
        return self.contracts[contract]

    def case(self, stream: str, contract: str, case: str) -> case_rules.CaseState:
        if stream not in self.cases:
            self.cases[stream] = fold_case(case, self._stream(stream), self.contract(contract))
        return self.cases[stream]

    # -- the batch ---------------------------------------------------------------------------

    def add_all(self, incoming: Iterable[Incoming]) -> None:
        """Check every event of a chunk in order; lookups of keys and contents are made in
        bulk first."""
        prepared: list[tuple[Incoming, Event, str, dict[str, Any]]] = []
        for item in incoming:
            problem = self._check_clock(item)
            if problem:
                self.problems.append(problem)
                continue
            try:
                event = self._normalise(item.event)
            except DomainError as exc:
                self.problems.append(Problem(item.source, item.line, exc.field, exc.message))
                continue
            data = payload(event)
            prepared.append((item, event, digest_of(data), data))
        self._prefetch(prepared)
        for item, event, digest, data in prepared:
            self._add(item, event, digest, data)

    def check_cases(self) -> None:
        """Each case as the batch leaves it: no two episodes overlap."""
        for stream, (source, line) in self.last_item.items():
            state = self.cases.get(stream)
            if state is None:
                continue
            try:
                case_rules.check_episodes(state)
            except DomainError as exc:
                self.problems.append(Problem(source, line, exc.field, exc.message))

    def _prefetch(self, prepared: list[tuple[Incoming, Event, str, dict[str, Any]]]) -> None:
        keys: dict[str, list[str]] = {}
        digests: dict[str, list[str]] = {}
        for _, event, digest, _ in prepared:
            if event.key is not None:
                keys.setdefault(event.contract, []).append(event.key)
            else:
                digests.setdefault(event.contract, []).append(digest)
        # A contract with nothing stored before this batch has no stored keys or contents to
        # look up (the batch's own are in `keys` and `keyless`): a first bulk record skips it.
        for contract, names in keys.items():
            self._stored(stream_name(contract))
            if contract not in self.fresh:
                found = index.keys_of(self.engine, contract, sorted(set(names)))
                self.stored_keys[contract] = found
        for contract, values in digests.items():
            self._stored(stream_name(contract))
            if contract not in self.fresh:
                self.stored_keyless[contract] = index.keyless_counts(
                    self.engine, contract, sorted(set(values))
                )

    def _add(self, item: Incoming, event: Event, digest: str, data: dict[str, Any]) -> None:
        if self._already_present(item, event, digest):
            return
        try:
            record = self._validated(item, event)
        except DomainError as exc:
            self.problems.append(Problem(item.source, item.line, exc.field, exc.message))
            return
        if event.key is not None and event.key in self._stream_keys(record.stream):
            # The log itself holds the key the index did not find: never append it twice.
            raise index.IndexDamaged(
                f"key {event.key!r} is in the log (stream {record.stream}) but not in the "
                "event index: a helper table was altered outside the ledger; run "
                "`soc-ledger rebuild`, then `soc-ledger verify`"
            )
        if record.stream in self.streams:
            self.streams[record.stream].append(record)
        else:
            self.unflushed.setdefault(record.stream, []).append(record)
        self.versions[record.stream] = record.version
        # A correction is stored as checked (its changes canonical), not as received.
        stored = data if record.event is event else payload(record.event)
        self.pending.append((record, digest, stored))
        self.last_item[record.stream] = (item.source, item.line)
        if event.key is not None:
            self.keys[(event.contract, event.key)] = (digest, record.stream, record.version)

    def _check_clock(self, item: Incoming) -> Problem | None:
        recorded_on = item.event.recorded_on
        if recorded_on is not None and recorded_on > self.now:
            return Problem(
                item.source,
                item.line,
                "recorded_on",
                f"{recorded_on.isoformat()} is in the future (now {self.now.isoformat()}); "
                "an event can only be recorded on or before the moment it is appended",
            )
        return None

    def _normalise(self, event: Event) -> Event:
        """What is stored: a pseudonym, never the CHILD id; a birth month, never the day."""
        if isinstance(event, ReferralReceived):
            # Age is checked on the full date (`_validated`, from the input) before it is dropped.
            return event.model_copy(
                update={
                    "child_ref": self.pseudonymiser.pseudonym(event.child_ref),
                    "date_of_birth": event.date_of_birth[:7],
                }
            )
        return event

    def _already_present(self, item: Incoming, event: Event, digest: str) -> bool:
        if event.key is not None:
            pending = self.keys.get((event.contract, event.key))
            if pending is not None:
                self._same_content(item, event.key, pending[0], digest, "earlier in this batch")
                self.already_present += pending[0] == digest
                return True
            stored = self.stored_keys.get(event.contract, {}).get(event.key)
            if stored is not None:
                self._same_content(item, event.key, stored.digest, digest, f"#{stored.position}")
                self.already_present += stored.digest == digest
                return True
            return False
        # Without a key, the n-th identical line of a batch is the n-th identical stored event.
        self.keyless[(event.contract, digest)] += 1
        if self.keyless[(event.contract, digest)] <= self.stored_keyless.get(
            event.contract, {}
        ).get(digest, 0):
            self.already_present += 1
            return True
        return False

    def _same_content(self, item: Incoming, key: str, old: str, new: str, where: str) -> None:
        if old != new:
            self.problems.append(
                Problem(
                    item.source,
                    item.line,
                    "key",
                    f"key {key!r} is already used by a different event ({where}); "
                    "a key names one event: use a new key, or EventCorrected to change it",
                )
            )

    def _validated(self, item: Incoming, event: Event) -> Recorded:
        recorded_on = event.recorded_on or self.now
        if event.type in ("EventCorrected", "EventRetracted"):
            return self._corrector(event, recorded_on)
        stream = stream_of(event)
        contract = self.contract(event.contract)
        if isinstance(item.event, ReferralReceived):
            case_rules.check_age(item.event, contract)
        if event.type in CASE_EVENTS:
            case_rules.apply(self.case(stream, event.contract, event.case_id), event, contract)
        else:
            if isinstance(event, ClaimSubmitted):
                self._check_claim_lines(event, contract.terms_on(event.period_end).mechanisms)
            contract_rules.apply(contract, event)
        return self._record(stream, event, recorded_on)

    def _check_claim_lines(self, event: ClaimSubmitted, mechanisms: tuple[str, ...]) -> None:
        """A claim has lines, and each names a case the ledger holds (stored or earlier in
        this batch): an unknown case is bad input (SPEC §11). A contract paying no weeks on
        the claim's period end is claimed on account: a line names what it is for (a cohort,
        a quarter), not necessarily a case (docs/mechanisms.md)."""
        if not event.lines:
            raise DomainError(f"claim {event.claim!r} has no lines", "lines")
        if "weeks_out_of_care" not in mechanisms:
            return
        for n, line in enumerate(event.lines):
            if not self._has_events(stream_name(event.contract, line.case)):
                raise DomainError(
                    f"claim {event.claim!r}: no case {line.case!r} in contract "
                    f"{event.contract!r}",
                    f"lines.{n}.case",
                )

    def _record(
        self, stream: str, event: Event, recorded_on: datetime, target: int | None = None
    ) -> Recorded:
        return Recorded(
            position=0,
            stream=stream,
            version=self._version(stream) + 1,
            recorded_on=recorded_on,
            appended_at=self.now,
            event=event,
            target_version=target,
        )

    def _corrector(self, event: Event, recorded_on: datetime) -> Recorded:
        target = self._target(event.contract, event.target)  # type: ignore[attr-defined]
        if recorded_on < target.recorded_on:
            raise DomainError(
                f"a correction cannot be recorded before its target "
                f"(recorded {target.recorded_on.isoformat()})",
                "recorded_on",
            )
        if isinstance(event, EventCorrected):
            event = self._checked_changes(event, target)
        record = self._record(target.stream, event, recorded_on, target.version)
        # Re-check the whole aggregate as it would read with the correction applied.
        history = [*self._stream(target.stream), record]
        contract_id = event.contract
        if target.stream == stream_name(contract_id):
            self.contracts[contract_id] = fold_contract(contract_id, history)
        else:
            case_id = stream_parts(target.stream)[1]
            self.cases[target.stream] = fold_case(case_id, history, self.contract(contract_id))
        return record

    def _target(self, contract: str, target: str) -> Recorded:
        pending = self.keys.get((contract, target))
        if pending is not None:
            _, stream, version = pending
            record = self._at(stream, version)
            assert record is not None  # pending in this batch: in its stream by construction
            return record
        found = index.by_key(self.engine, contract, target)
        if found is None and target.startswith("#") and target[1:].isdigit():
            found = index.by_position(self.engine, int(target[1:]))
            if found is not None and found.contract != contract:
                found = None
        if found is None:
            raise DomainError(
                f"no event with key {target!r} (or position #N) in contract {contract!r}",
                "target",
            )
        record = self._at(found.stream, found.version)
        if record is None:
            raise DomainError(f"event {target!r} is missing from its stream", "target")
        return record

    def _at(self, stream: str, version: int | None) -> Recorded | None:
        """The event at `version` of `stream`, as this batch reads it."""
        return next((r for r in self._stream(stream) if r.version == version), None)

    def _checked_changes(self, event: EventCorrected, target: Recorded) -> EventCorrected:
        return event.model_copy(update={"changes": self._changes(event.changes, target)})

    def _changes(self, changes: dict[str, Any], target: Recorded, where: str = "changes") -> dict:
        """`changes` as stored: checked on the target's corrected reading exactly as the target
        itself was checked (types, age, pseudonym, birth month), canonical. A correction of a
        correction is checked the same way one level down, at any depth: its new `changes` must
        be a valid correction of the event the corrected correction targets."""
        changes = dict(changes)
        corrected = corrected_reading(target.event, changes, where)
        if isinstance(corrected, ReferralReceived):
            contract = self.contract(corrected.contract)
            case_rules.check_age(corrected, contract)
            if "child_ref" in changes:
                changes["child_ref"] = self.pseudonymiser.pseudonym(corrected.child_ref)
            if "date_of_birth" in changes:
                changes["date_of_birth"] = corrected.date_of_birth[:7]
        elif isinstance(corrected, EventCorrected) and "changes" in changes:
            inner = self._corrected_target(target)
            changes["changes"] = self._changes(corrected.changes, inner, f"{where}.changes")
        # Money and dates are stored as the model writes them, exactly.
        return {
            name: value
            for name, value in payload(corrected_reading(target.event, changes, where)).items()
            if name in changes
        }

    def _corrected_target(self, corrector: Recorded) -> Recorded:
        """The event a stored correction or retraction acts on (same stream, its version)."""
        record = self._at(corrector.stream, corrector.target_version)
        if record is None:
            raise DomainError(
                f"the event corrected by {corrector.event.key!r} is missing", "target"
            )
        return record

    # -- the end ---------------------------------------------------------------------------

    def envelopes(self, prev_hash: str) -> list[Envelope]:
        sealed = []
        times: dict[datetime, str] = {}  # a batch has few distinct clocks: format each once

        def iso(moment: datetime) -> str:
            text = times.get(moment)
            if text is None:
                text = times[moment] = to_jsonable_python(moment)
            return text

        for record, digest, data in self.pending:
            referral = record.event.type == "ReferralReceived"
            envelope = seal_envelope(
                record.stream,
                record.version,
                iso(record.appended_at),
                iso(record.recorded_on),
                record.target_version,
                digest,
                prev_hash,
                data,
                self.pseudonymiser.fingerprint() if referral else None,
            )
            sealed.append(envelope)
            prev_hash = envelope.hash
        return sealed

    def index_rows(self, positions: list[int]) -> list[tuple]:
        """The event index's rows for the batch as appended at `positions`."""
        return [
            index.row_of(
                position,
                record.stream,
                record.version,
                data,
                digest,
                record.recorded_on,
                record.appended_at,
                record.target_version,
            )
            for position, (record, digest, data) in zip(positions, self.pending, strict=True)
        ]


def fold_contract(contract: str, history: list[Recorded]) -> ContractState:
    return contract_of(contract, known_facts(history))


def contract_of(contract: str, facts: Iterable[Fact]) -> ContractState:
    """The contract aggregate from its facts, taken one at a time."""
    state = ContractState(contract)
    for fact in facts:
        contract_rules.apply(state, fact.event)
    return state


def fold_case(case: str, history: list[Recorded], contract: ContractState) -> case_rules.CaseState:
    state = case_rules.CaseState(case)
    for fact in known_facts(history):
        case_rules.apply(state, fact.event, contract, refold=True)
    return state


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "Batch",
    "Incoming",
    "Outcome",
    "Problem",
    "Rejected",
    "EVENT_TYPES",
]
