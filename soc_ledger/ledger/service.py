"""The ledger as the commands see it: open a store, record a batch, read the audit trail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.ledger import encryption, index
from soc_ledger.ledger.location import Location, StoreError
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.privacy import Pseudonymiser

if TYPE_CHECKING:
    from soc_ledger.ledger.recording import Incoming, Outcome
    from soc_ledger.ledger.store import EventLog

# A conflicting append (only possible from a writer that bypassed the lock) is retried from
# validation this many times in all before the batch is refused.
APPEND_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One line of the audit trail."""

    position: int
    appended_at: datetime
    recorded_on: datetime
    event: dict[str, Any]
    case: str | None  # a correction's case is its target's

    @property
    def type(self) -> str:
        return self.event["type"]

    def row(self) -> dict[str, Any]:
        e = self.event
        return {
            "position": self.position,
            "appended_at": self.appended_at.isoformat(),
            "recorded_on": self.recorded_on.isoformat(),
            "effective": e["effective"],
            "type": e["type"],
            "contract": e["contract"],
            "case": self.case,
            "key": e.get("key"),
            "source": e.get("source"),
        }


class Ledger:
    def __init__(self, url: str | None = None) -> None:
        self.location = Location.parse(url)
        self.engine = index.open_engine(self.location)
        try:
            encryption.check_store(
                self.engine, lambda: bool(index.log_head(self.engine, self.location))
            )
        except StoreError:
            self.engine.dispose()
            raise
        self.pseudonymiser = Pseudonymiser(self.location, self.engine)
        self._log: EventLog | None = None

    @property
    def log(self) -> EventLog:
        """The event log, opened on first use (a report whose read models are current never
        needs it)."""
        if self._log is None:
            from soc_ledger.ledger.store import EventLog

            self._log = EventLog(self.location)
        return self._log

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_lines(self, lines: Iterable[str], source: str) -> Outcome:
        from soc_ledger.ledger.recording import Rejected, parse_lines

        incoming, problems = parse_lines(lines, source)
        if problems:
            raise Rejected(problems)
        return self.record(incoming)

    def record(self, incoming: list[Incoming], now: datetime | None = None) -> Outcome:
        """Validate every event against the ledger and append them all, or none.

        Under the writer lock, so the chain's head and the aggregates validated against are
        the ones appended on. Should an append still conflict (a writer that bypassed the
        lock), the library's transaction rolls back whole and the batch is validated and
        appended again, up to APPEND_ATTEMPTS times in all, then refused.
        """
        from eventsourcing.persistence import RecordConflictError

        from soc_ledger.ledger.recording import Batch, Outcome, Problem, Rejected, utc_now

        self._check_key(incoming)
        with writer_lock(self.location):
            for attempt in range(1, APPEND_ATTEMPTS + 1):
                index.catch_up(self.engine, self.log)
                batch = Batch(self.log, self.engine, self.pseudonymiser, now or utc_now())
                batch.add_all(incoming)
                if batch.problems:
                    raise Rejected(batch.problems)
                encryption.claim(self.engine)
                _, head_hash = self.log.head()
                try:
                    positions = self.log.append(batch.envelopes(head_hash))
                except RecordConflictError as exc:
                    if attempt < APPEND_ATTEMPTS:
                        continue
                    first = incoming[0]
                    raise Rejected(
                        [
                            Problem(
                                first.source,
                                first.line,
                                "(append)",
                                f"another writer appended to the same streams at the same "
                                f"moment {APPEND_ATTEMPTS} times ({exc}); run the command again",
                            )
                        ]
                    ) from None
                break
            if not index.add_appended(self.engine, batch.index_rows(positions)):
                index.catch_up(self.engine, self.log)
        return Outcome(len(positions), batch.already_present, positions)

    def _check_key(self, incoming: list[Incoming]) -> None:
        """A missing or wrong pseudonym key is named at the first line that needs it."""
        from soc_ledger.ledger.recording import Problem, Rejected

        for item in incoming:
            event = item.event
            if event.type == "ReferralReceived" or (
                event.type == "EventCorrected" and "child_ref" in event.changes  # type: ignore[attr-defined]
            ):
                try:
                    self.pseudonymiser.key  # noqa: B018 - loads and checks the key
                except StoreError as exc:
                    problem = Problem(item.source, item.line, "child_ref", str(exc))
                    raise Rejected([problem]) from None
                return

    def follow(self, project: Callable[[Engine, EventLog], int], name: str) -> int:
        """Bring a read model up to the head of the log.

        Only a model that is behind takes the writer lock (so two catching up at once cannot
        both write the same rows); an up-to-date one is read without waiting.
        """
        head = index.log_head(self.engine, self.location)
        if head is not None and index.tracked_position(self.engine, name) >= head:
            return 0
        with writer_lock(self.location):
            return project(self.engine, self.log)

    def trail(
        self,
        case: str | None = None,
        types: Iterable[str] = (),
        known_at: KnownAt = EVERYTHING,
        contract: str | None = None,
    ) -> Iterator[TrailEntry]:
        """The audit trail read from the log itself, oldest first."""
        for note in self.log.notifications(topics=tuple(types)):
            state = self.log.mapper.decode_state(note)
            entry = TrailEntry(
                note.id,
                datetime.fromisoformat(state["appended_at"]),
                datetime.fromisoformat(state["recorded_on"]),
                state["event"],
                state["event"].get("case") or index.case_of(state["stream"]),
            )
            if not known_at.knows(entry.recorded_on):
                continue
            if case is not None and entry.case != case:
                continue
            if contract is not None and entry.event["contract"] != contract:
                continue
            yield entry


