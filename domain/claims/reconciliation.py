"""Reconciling a claim line by line (SPEC §7): claimed, due then, due now, paid, adjustment.

The readings (also in docs/claims.md):

- **Due then / due now.** *Due then* reads the facts known at the claim's recorded instant
  (`recorded_on` of the `ClaimSubmitted`), *due now* those known at `known_at` (default:
  everything). Both use the same previous lines (the claims on the ledger at
  (`as_of`, `known_at`)), so a difference between them comes only from facts about care,
  engagement, coverage or terms recorded after the claim: the events that changed the line's
  weeks are named (`because`).
- **Difference.** `claim_error` when claimed differs from due then, `later_correction` when due
  then differs from due now, `both` when both. Money decides; `weeks` is shown for information.
- **Adjustment** of a line = due now - paid: positive, the payer owes it; negative, it is owed
  back to the payer. A claim's adjustment is the sum of its lines' (= due now - paid).

Before and after, the quickstart's CBO-2019Q1 at as_of 2019-12-31 (tests/test_claims.py): made
on 2019-06-01; C001's stay in care restated a week longer on 2019-09-02 (#11); C002 claimed one
week short; CBO paid 3,000.00 with the C001 line in dispute.

    line  claimed   due then   due now    paid      difference         adjustment  because
    C001  1,530.00  1,530.00   1,485.00   1,200.00  later_correction       285.00  #11
    C002  1,800.00  1,845.00   1,845.00   1,800.00  claim_error             45.00

    reconcile_claim(...): owed_by_payer 330.00, owed_to_payer 0.00, adjustment 330.00
    correcting_events("C001", weeks then, weeks now, events recorded since, ...) -> (11,)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from soc_ledger.domain.claims.claims import Claim, DisputeState, Windows
from soc_ledger.domain.claims.owed import Owed, Share
from soc_ledger.domain.knowledge import EventRef
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.tracking import LIFECYCLE
from soc_ledger.domain.outcomes.weeks import Week


@dataclass(frozen=True, slots=True)
class LineReconciliation:
    case: str
    after: date | None  # the previous line's period end: weeks ending after it are covered
    claimed: Decimal
    claimed_weeks: int
    due_then: Share
    due_now: Share
    paid: Decimal
    dispute: DisputeState | None
    because: tuple[int, ...]  # the events recorded after the claim that moved its weeks

    @property
    def disputed(self) -> Decimal:
        return self.claimed if self.dispute is not None and self.dispute.open else ZERO

    @property
    def difference(self) -> str | None:
        error = self.claimed != self.due_then.amount
        later = self.due_then.amount != self.due_now.amount
        if error and later:
            return "both"
        if error:
            return "claim_error"
        return "later_correction" if later else None

    @property
    def adjustment(self) -> Decimal:
        """Due now - paid: positive, the payer owes it; negative, it is owed back."""
        return self.due_now.amount - self.paid


@dataclass(frozen=True, slots=True)
class Reconciliation:
    contract: str
    claim: Claim
    recorded_on: datetime
    as_of: date
    payee: str | None  # the prime contractor, who is paid
    lines: tuple[LineReconciliation, ...]
    events: Mapping[int, EventRef] = field(default_factory=dict)  # every event in `because`

    def total(self, name: str) -> Decimal:
        return sum((_amount(getattr(line, name)) for line in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return self.claim.paid(self.as_of)

    @property
    def adjustment(self) -> Decimal:
        return self.total("due_now") - self.paid

    @property
    def owed_by_payer(self) -> Decimal:
        return sum((a for line in self.lines if (a := line.adjustment) > 0), ZERO)

    @property
    def owed_to_payer(self) -> Decimal:
        return sum((-a for line in self.lines if (a := line.adjustment) < 0), ZERO)


def _amount(value: Decimal | Share) -> Decimal:
    return value.amount if isinstance(value, Share) else value


def reconcile_claim(
    contract: str,
    claim: Claim,
    windows: Windows,
    then: Owed,
    now: Owed,
    as_of: date,
    recorded_on: datetime,
    payee: str | None = None,
) -> Reconciliation:
    """One claim, line by line, at `as_of` (payments and disputes by then).

    `then` and `now` read the facts known at the claim's recording and at `known_at`;
    `windows` are the payer's claim lines on the ledger. Lines name no events (`because`);
    the query fills them in for the lines whose due moved.
    """
    paid = claim.allocate(as_of)
    lines = []
    for line in claim.lines:
        after = windows.previous.get((claim.claim, line.case))
        lines.append(
            LineReconciliation(
                case=line.case,
                after=after,
                claimed=line.amount,
                claimed_weeks=line.weeks,
                due_then=then.due(line.case, claim.payer, after, claim.period_end),
                due_now=now.due(line.case, claim.payer, after, claim.period_end),
                paid=paid[line.case],
                dispute=claim.dispute(line.case, as_of),
                because=(),
            )
        )
    return Reconciliation(contract, claim, recorded_on, as_of, payee, tuple(lines))


def correcting_events(
    case: str,
    before: Sequence[Week],
    after: Sequence[Week],
    news: Sequence[EventRef],
    by_ref: Mapping[tuple[str, int], EventRef],
) -> tuple[int, ...]:
    """The events among `news` (recorded between two readings) that decided the weeks that
    differ between `before` and `after`: those the weeks name (care data only where it changed
    whether a week was verified), corrections and retractions of what they name, and changes
    to the case's lifecycle (which move every week)."""
    old = {(w.index, w.end): w for w in before}
    new = {(w.index, w.end): w for w in after}
    decided: set[int] = set()
    verification = False
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and (a.status, a.owed, a.capped) == (
            b.status,
            b.owed,
            b.capped,
        ):
            continue
        decided.update(a.because if a else (), b.because if b else ())
        verification |= "unverified" in (a.status if a else None, b.status if b else None)
    responsible = set()
    for e in news:
        target = by_ref.get((e.stream, e.target_version)) if e.target_version else None
        if e.position in decided:
            if verification or e.type != "CareDataReceived":
                responsible.add(e.position)
        elif target is not None and target.position in decided:
            responsible.add(e.position)
        elif e.case == case and (
            e.type in LIFECYCLE or (target is not None and target.type in LIFECYCLE)
        ):
            responsible.add(e.position)
    return tuple(sorted(responsible))
