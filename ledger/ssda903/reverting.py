"""Undoing an SSDA903 import (`soc-ledger revert IMPORT --reason TEXT`).

Nothing is ever deleted: a revert records an `EventRetracted` (with the reason given) of every
event the import recorded that still stands, so answers known before the revert still read the
import, and answers known after read the ledger as it was before the import. Readings (an
auditor's, written down in docs/ssda903.md):

- **Naming an import.** IMPORT is the key of the `CareDataReceived` the import recorded
  (`903:<borough>:<period start>:<period end>:<received>:<digest>`) or its log position `#N`,
  as `soc-ledger events --type CareDataReceived` shows them.
- **What an import recorded.** That receipt and every event keyed
  `903:<borough>:<period start>:...@<received>`: its episodes' starts and ends, its
  corrections and its retractions (`writer`). Those of them already retracted are left alone.
- **Undoing a resubmission.** Retracting its corrections restores the earlier reading, and
  retracting its retractions restores the episodes it had removed: the ledger reads the
  earlier return again, as before the resubmission.
- **Only the latest return of a period.** A return that a later import of the same borough
  and period superseded (and that still stands) cannot be reverted: revert the later one
  first. Undoing the earlier one alone would leave the later one's corrections correcting
  nothing.
- **Once.** An import already reverted (its receipt retracted) is refused, naming the
  retraction; nothing is written. A reverted return cannot be imported again under the same
  received date (`importing`): give it its own `--received-on`.
- **Order.** The import's new starts, then their ends, then its corrections, then its
  retractions (each end restored before its start, so no episode reads open over a later
  one), then its receipt; every one checked against the ledger as `record` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import LedgerError
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.recording import Incoming, Outcome
from soc_ledger.ledger.ssda903.period import Period
from soc_ledger.ledger.ssda903.view import PREFIX, read_receipt_key

if TYPE_CHECKING:
    from soc_ledger.ledger.service import Ledger, TrailEntry

# What an import recorded, in the order it is undone (see the module's readings).
_ORDER = ("start", "end", "start-fix", "end-fix", "end-retracted", "start-retracted")
_TYPES = (
    "CareDataReceived",
    "CareEpisodeStarted",
    "CareEpisodeEnded",
    "EventCorrected",
    "EventRetracted",
)


class RevertError(LedgerError):
    """The import cannot be reverted (unknown, already reverted, superseded); one line."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """An import as its `CareDataReceived` names it."""

    key: str
    position: int
    contract: str
    borough: str
    period: Period
    received_on: date

    @classmethod
    def of(cls, entry: TrailEntry) -> Receipt | None:
        key = entry.event.get("key")
        read = read_receipt_key(key)
        if read is None:
            return None
        borough, receipt = read
        return cls(
            key, entry.position, entry.event["contract"], borough, receipt.period,
            receipt.received_on,
        )

    def recorded(self, key: str | None) -> bool:
        """Was the event with this key recorded by this import?"""
        if key is None:
            return False
        if key == self.key:
            return True
        prefix = f"{PREFIX}:{self.borough}:{self.period.start}:"
        return key.startswith(prefix) and key.endswith(f"@{self.received_on}")


@dataclass(frozen=True, slots=True)
class Reverted:
    receipt: Receipt
    outcome: Outcome


class _Log:
    """The events an import can have recorded or touched, read from the log itself, with which
    of them stand (are not retracted by a retraction that itself stands)."""

    def __init__(self, ledger: Ledger, types: tuple[str, ...] = _TYPES) -> None:
        self.entries = list(ledger.trail(types=types))
        by_name: dict[tuple[str, str], TrailEntry] = {}
        for entry in self.entries:
            contract = entry.event["contract"]
            by_name[(contract, f"#{entry.position}")] = entry
            if entry.event.get("key"):
                by_name[(contract, entry.event["key"])] = entry
        retractors: dict[int, list[TrailEntry]] = {}
        for entry in self.entries:
            if entry.type == "EventRetracted":
                target = by_name.get((entry.event["contract"], entry.event["target"]))
                if target is not None:
                    retractors.setdefault(target.position, []).append(entry)
        # A retraction comes after its target: read backwards, each retraction's standing is
        # known before the standing of what it retracts.
        self.standing: dict[int, bool] = {}
        self.retracted_by: dict[int, TrailEntry] = {}
        for entry in reversed(self.entries):
            live = [r for r in retractors.get(entry.position, ()) if self.standing[r.position]]
            self.standing[entry.position] = not live
            if live:
                self.retracted_by[entry.position] = live[0]

    def receipt(self, name: str) -> tuple[Receipt, TrailEntry]:
        for entry in self.entries:
            if entry.type != "CareDataReceived":
                continue
            if name in (entry.event.get("key"), f"#{entry.position}"):
                receipt = Receipt.of(entry)
                if receipt is None:
                    raise RevertError(
                        f"{name}: CareDataReceived #{entry.position} was not recorded by "
                        "import-903; retract it with an EventRetracted line instead"
                    )
                return receipt, entry
        raise RevertError(
            f"no SSDA903 import {name!r}: name it by the key or the position (#N) of its "
            "CareDataReceived, as `soc-ledger events --type CareDataReceived` shows them"
        )


def _check_revertable(log: _Log, receipt: Receipt) -> None:
    retraction = log.retracted_by.get(receipt.position)
    if retraction is not None:
        raise RevertError(
            f"import {receipt.key} is already reverted (#{retraction.position}, recorded "
            f"{retraction.recorded_on.date()}: {retraction.event.get('reason', '')}); "
            "nothing to do"
        )
    for entry in log.entries:
        later = Receipt.of(entry) if entry.type == "CareDataReceived" else None
        if (
            later is not None
            and log.standing[entry.position]
            and later.contract == receipt.contract
            and later.borough == receipt.borough
            and later.period == receipt.period
            and later.received_on > receipt.received_on
        ):
            raise RevertError(
                f"import {receipt.key} was superseded by the return received "
                f"{later.received_on} ({later.key}, #{later.position}); revert that one first"
            )


def _part(entry: TrailEntry, receipt: Receipt) -> int:
    if entry.event.get("key") == receipt.key:
        return len(_ORDER)
    what = entry.event["key"].rsplit(":", 1)[-1].split("@", 1)[0]
    return _ORDER.index(what) if what in _ORDER else len(_ORDER)


def revert_import(
    ledger: Ledger, name: str, reason: str, now: datetime | None = None
) -> Reverted:
    """Retract what the import named NAME recorded, with REASON; all or nothing."""
    if not reason.strip():
        raise RevertError("--reason: say why the import is reverted")
    today = (now or datetime.now(UTC)).date()
    with writer_lock(ledger.location):
        log = _Log(ledger)
        receipt, _ = log.receipt(name)
        _check_revertable(log, receipt)
        mine = [
            entry
            for entry in log.entries
            if entry.event["contract"] == receipt.contract
            and receipt.recorded(entry.event.get("key"))
            and log.standing[entry.position]
        ]
        mine.sort(key=lambda e: (_part(e, receipt), e.position))
        source = f"revert {receipt.key}"
        incoming = [
            Incoming(
                source,
                entry.position,
                ev.EventRetracted(
                    type="EventRetracted",
                    contract=receipt.contract,
                    effective=today,
                    key=f"{entry.event['key']}:reverted",
                    target=entry.event["key"],
                    reason=reason,
                    source=source,
                ),
            )
            for entry in mine
        ]
        outcome = ledger.record(incoming, now=now)
    return Reverted(receipt, outcome)


def reverted_receipts(ledger: Ledger, contract: str, borough: str) -> list[Receipt]:
    """The borough's imports that were reverted (for `importing`)."""
    log = _Log(ledger, ("CareDataReceived", "EventRetracted"))
    return [
        receipt
        for entry in log.entries
        if entry.type == "CareDataReceived"
        and not log.standing[entry.position]
        and (receipt := Receipt.of(entry)) is not None
        and receipt.contract == contract
        and receipt.borough == borough
    ]
