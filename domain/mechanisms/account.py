"""A payer's account under mechanisms other than weeks out of care (`statement PAYER`).

SPEC §7's statement checks each claim line against the weeks of its case; a care-days cohort,
a quarter's bonus or a return home has no weeks to check a line against. The reading here:

- a claim to the payer is a claim on account: its lines' amounts add up to what it claims
  (each line's `case` names what it is for, e.g. a case, a cohort or a quarter);
- due = what the payer owes at `as_of` under every mechanism the terms name (`payments`);
  paid = its `PaymentReceived` on those claims by `as_of`; balance = due - paid;
  unclaimed = due - claimed, when positive.

Before/after, Essex owing 7,100,000.00 at `as_of`, one claim ESX-1 of 3,000,000.00 paid in full:

    claimed 3,000,000.00, paid 3,000,000.00, unclaimed 4,100,000.00, balance 4,100,000.00
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.knowledge import Fact

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class ClaimOnAccount:
    claim: str
    period_end: date
    claimed: Decimal
    paid: Decimal


@dataclass(frozen=True, slots=True)
class Account:
    contract: str
    payer: str
    as_of: date
    due: Decimal
    claims: tuple[ClaimOnAccount, ...]

    @property
    def claimed(self) -> Decimal:
        return sum((c.claimed for c in self.claims), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((c.paid for c in self.claims), ZERO)

    @property
    def unclaimed(self) -> Decimal:
        return max(self.due - self.claimed, ZERO)

    @property
    def balance(self) -> Decimal:
        return self.due - self.paid


def account(contract: str, payer: str, due: Decimal, facts: Iterable[Fact], as_of: date) -> Account:
    """The payer's claims and payments by `as_of` against what it owes then (`due`)."""
    claimed: dict[str, tuple[date, Decimal]] = {}
    paid: dict[str, Decimal] = {}
    for fact in facts:
        e = fact.event
        if e.contract != contract or e.effective > as_of:
            continue
        if isinstance(e, ev.ClaimSubmitted) and e.payer == payer:
            claimed[e.claim] = (e.period_end, sum((line.amount for line in e.lines), ZERO))
        elif isinstance(e, ev.PaymentReceived) and e.payer == payer:
            paid[e.claim] = paid.get(e.claim, ZERO) + e.amount
    claims = tuple(
        ClaimOnAccount(claim, end, amount, paid.get(claim, ZERO))
        for claim, (end, amount) in sorted(claimed.items(), key=lambda kv: (kv[1][0], kv[0]))
    )
    return Account(contract, payer, as_of, due, claims)


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """One claim on account reconciled: what it claimed against what its period owed, as
    known when it was made and as known now, less what the payer's earlier claims took."""

    contract: str
    claim: str
    payer: str
    period_end: date
    claimed: Decimal
    paid: Decimal
    claimed_before: Decimal  # the payer's earlier claims (by period end)
    owed_then: Decimal  # owed by the period end, as known when the claim was made
    owed_now: Decimal  # the same, as known at the report's knowledge

    @property
    def due_then(self) -> Decimal:
        return max(self.owed_then - self.claimed_before, ZERO)

    @property
    def due_now(self) -> Decimal:
        return max(self.owed_now - self.claimed_before, ZERO)

    @property
    def over_claimed(self) -> Decimal:
        """What the claim asked beyond what is due now (negative: under-claimed)."""
        return self.claimed - self.due_now


def check_claim(held: Account, claim: str, owed_then: Decimal, owed_now: Decimal) -> ClaimCheck:
    """The claim `claim` of the payer's account `held`, given what its period owed."""
    found = next(c for c in held.claims if c.claim == claim)
    before = sum(
        (c.claimed for c in held.claims if (c.period_end, c.claim) < (found.period_end, claim)),
        ZERO,
    )
    return ClaimCheck(
        held.contract, claim, held.payer, found.period_end, found.claimed, found.paid, before,
        owed_then, owed_now,
    )  # fmt: skip
