"""A payer's statement of account (SPEC §7): its claims, what is not yet claimed, its balance.

The reading (also in docs/claims.md):

- **Statement** of a payer at (as_of, known_at): each claim with its due (due now), paid,
  disputed and adjustment; *unclaimed* = what the payer owes at `as_of` for weeks no claim line
  has covered; balance = adjustments + unclaimed = everything the payer owes at `as_of` (as
  `liability` gives it) - everything it has paid.

Before and after, Sutton in the quickstart at as_of 2019-12-31 (tests/test_claims.py): SUT-2019Q1
claimed 34 weeks of C001 and was paid in full before a restatement took one week off;
SUT-2019Q2 claimed the next 13 weeks and is unpaid; 13 more weeks have ended since, verified.

    claim       claimed   due       paid      disputed  adjustment
    SUT-2019Q1  5,746.00  5,577.00  5,746.00      0.00     -169.00
    SUT-2019Q2  2,197.00  2,197.00      0.00      0.00    2,197.00
    unclaimed             2,197.00                         2,197.00  (C001, 13 weeks)

    statement_of(...): due 9,971.00 (= what SUT owes at 2019-12-31), balance 4,225.00
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.claims.claims import Claim, Windows, on_ledger
from soc_ledger.domain.claims.owed import NOTHING, Owed, Share
from soc_ledger.domain.outcomes.prices import ZERO


@dataclass(frozen=True, slots=True)
class ClaimAccount:
    """One claim on a payer's statement."""

    claim: Claim
    due: Decimal  # due now: the sum of its lines' due at the statement's knowledge
    paid: Decimal
    disputed: Decimal  # claimed amount of its lines under open dispute

    @property
    def claimed(self) -> Decimal:
        return self.claim.claimed

    @property
    def adjustment(self) -> Decimal:
        return self.due - self.paid


@dataclass(frozen=True, slots=True)
class Statement:
    contract: str
    payer: str
    as_of: date
    claims: tuple[ClaimAccount, ...]
    unclaimed: tuple[tuple[str, Share], ...]  # (case, share not covered by any claim line)

    def total(self, name: str) -> Decimal:
        return sum((getattr(c, name) for c in self.claims), ZERO)

    @property
    def unclaimed_amount(self) -> Decimal:
        return sum((s.amount for _, s in self.unclaimed), ZERO)

    @property
    def due(self) -> Decimal:
        """Everything the payer owes at `as_of`: claimed periods and unclaimed weeks."""
        return self.total("due") + self.unclaimed_amount

    @property
    def balance(self) -> Decimal:
        """Adjustments + unclaimed = due - paid: positive, the payer owes it."""
        return self.total("adjustment") + self.unclaimed_amount


def statement_of(
    contract: str, payer: str, claims: Iterable[Claim], owed: Owed, as_of: date
) -> Statement:
    """A payer's account at `as_of` from the claims on the ledger and what it owes."""
    mine = [c for c in on_ledger(claims, as_of) if c.payer == payer]
    windows = Windows.of(mine, payer)
    accounts = []
    for claim in mine:
        due = owed.claimed_due(
            payer,
            [(line.case, windows.previous[(claim.claim, line.case)]) for line in claim.lines],
            claim.period_end,
        )
        disputed = sum(
            (
                line.amount
                for line in (claim.lines if claim.disputes else ())  # most claims have none
                if (d := claim.dispute(line.case, as_of)) is not None and d.open
            ),
            ZERO,
        )
        accounts.append(ClaimAccount(claim, due, claim.paid(as_of), disputed))
    unclaimed = []
    for case in sorted(owed.cases):
        left = owed.share(case, payer, as_of) - owed.share(case, payer, windows.last.get(case))
        if left != NOTHING:
            unclaimed.append((case, left))
    return Statement(contract, payer, as_of, tuple(accounts), tuple(unclaimed))
