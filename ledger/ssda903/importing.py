"""The import of an SSDA903 return, the one impure step: read the ledger, plan, append in one
batch, all or nothing.

What the import reads of the facts known now comes from the read models, which are a layer
above the ledger: it is declared here (`FactsNow`) and handed in by the caller (the command
passes `projections.facts_now.FACTS_NOW`), so the ledger never imports a projection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Protocol

from soc_ledger.domain.errors import LedgerError
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import coverage_from_facts
from soc_ledger.ledger.location import StoreError
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.problems import Rejected
from soc_ledger.ledger.recording import Outcome
from soc_ledger.ledger.ssda903.period import Period, ReturnError
from soc_ledger.ledger.ssda903.planning import plan_import
from soc_ledger.ledger.ssda903.reading import Return
from soc_ledger.ledger.ssda903.view import LedgerView, receipt_key, view_from_facts
from soc_ledger.ledger.ssda903.writer import Summary

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from soc_ledger.ledger.service import Ledger


class FactsNow(Protocol):
    """The facts known now (corrections applied), as the import reads them."""

    def catch_up(self, ledger: Ledger) -> None:
        """Bring what is read below up to the head of the log."""

    def the_contract(self, engine: Engine, contract: str | None) -> str:
        """The contract asked for, or the only one in the store; a LedgerError saying why not."""

    def referrals(self, engine: Engine, contract: str) -> list[Fact]:
        """Every `ReferralReceived` of the contract."""

    def latest_facts(
        self, conn: Connection, contract: str, cases: Iterable[str] | None = None
    ) -> list[Fact]:
        """The contract's own facts, or with `cases` only those cases' facts."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    summary: Summary
    outcome: Outcome
    contract: str
    covered_until: date | None  # the borough's care data verified up to, after the import
    receipt: str  # the key of its CareDataReceived: what `revert` names it by

    @property
    def nothing_new(self) -> bool:
        return self.outcome.appended == 0


def resolve_contract(facts: FactsNow, engine: Engine, contract: str | None) -> str:
    """The contract of the import: the one asked for, or the only one in the store."""
    try:
        return facts.the_contract(engine, contract)
    except LedgerError as exc:
        raise ReturnError(str(exc)) from None


def read_view(
    ledger: Ledger, facts: FactsNow, contract: str | None, borough: str, period: Period
) -> LedgerView:
    """The facts known now, as the planner needs them (the read model caught up first): the
    referrals, then only the borough's cases' facts and the contract's own (its care data),
    so an import reads one borough, not the whole contract."""
    facts.catch_up(ledger)
    contract = resolve_contract(facts, ledger.engine, contract)
    referrals = facts.referrals(ledger.engine, contract)
    mine = [f for f in referrals if f.event.borough == borough]  # type: ignore[attr-defined]
    with ledger.engine.connect() as conn:
        own = facts.latest_facts(conn, contract)
        theirs = (
            facts.latest_facts(conn, contract, [f.event.case_id for f in mine]) if mine else []
        )
    return view_from_facts([*own, *theirs], contract, borough, period)


def coverage_now(ledger: Ledger, facts: FactsNow, contract: str, borough: str) -> date | None:
    """The borough's care data verified up to, as known now."""
    facts.catch_up(ledger)
    with ledger.engine.connect() as conn:
        return coverage_from_facts(facts.latest_facts(conn, contract), contract).get(borough)


def _check_not_reverted(
    ledger: Ledger, contract: str, borough: str, period: Period, received_on: date
) -> None:
    """A reverted return's events keep their keys: it cannot come back under the same ones."""
    from soc_ledger.ledger.ssda903.reverting import reverted_receipts

    for receipt in reverted_receipts(ledger, contract, borough):
        if receipt.period == period and receipt.received_on == received_on:
            raise ReturnError(
                f"a return of {borough} for {period} received {received_on} was imported and "
                f"then reverted ({receipt.key}); import it again with its own --received-on"
            )


def import_return(
    ledger: Ledger,
    facts: FactsNow,
    ret: Return,
    borough: str,
    period: Period,
    received_on: date,
    contract: str | None = None,
    now: datetime | None = None,
    check: bool = False,
) -> ImportResult:
    """Plan the import against the facts known now and append it all, or nothing (`check`:
    plan and check it all, write nothing; every problem listed in line order)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", borough):
        raise ReturnError(f"--borough {borough!r}: a borough code is letters, digits, - or _")
    today = (now or datetime.now(UTC)).date()
    if received_on > today:
        raise ReturnError(f"--received-on {received_on} is in the future")
    if received_on <= period.end:
        raise ReturnError(
            f"a return for a period ending {period.end} cannot have been received on "
            f"{received_on}: it states every day of its period"
        )
    try:
        ledger.pseudonymiser.key  # noqa: B018 - fail early, before reading anything
    except StoreError as exc:
        raise ReturnError(str(exc)) from None
    # Planned under the writer lock: what the plan read is what it is appended on, and two
    # imports at once run one after the other instead of refusing each other's rows.
    with writer_lock(ledger.location):
        view = read_view(ledger, facts, contract, borough, period)
        plan = plan_import(
            ret, view, borough, period, received_on, ledger.pseudonymiser.pseudonym
        )
        _check_not_reverted(ledger, view.contract, borough, period, received_on)
        if plan.problems:
            raise Rejected(
                sorted(plan.problems, key=lambda p: (p.source, p.line)) if check else plan.problems
            )
        outcome = ledger.record(plan.incoming, now=now, check=check)
        after = (
            coverage_now(ledger, facts, view.contract, borough)
            if outcome.appended and not check
            else view.coverage
        )
    receipt = receipt_key(borough, period, received_on, ret.digest)
    return ImportResult(plan.summary, outcome, view.contract, after, receipt)
