"""Claims as facts (SPEC §7): each claim with its disputes, settlements and payments.

A claim asks a payer for outcome weeks up to its `period_end`; what it asks is decided by the
contract's rules (`owed`), what it is paid and disputed by the facts read here. The readings
(also in docs/claims.md):

- **On the ledger at (as_of, known_at)**: claims recorded by `known_at` and submitted
  (`effective`) on or before `as_of`; payments, disputes and resolutions likewise, each by its
  own effective date.
- **Disputes.** A `DisputeResolved` settles the line at its `amount` whatever its `outcome`
  (`upheld`: the payer was right, typically a lower amount; `rejected`: the claim stands, the
  claimed amount; `adjusted`: a compromise). It decides how payments are allocated, never what is
  due: what is due is what the contract's rules give from the facts. A dispute that showed the
  data wrong is settled in the data (an `EventCorrected` or `EventRetracted`), which moves *due
  now*. A line is `disputed` by its claimed amount while its dispute is open.
- **Payments.** A `PaymentReceived` pays a claim, not a line. All payments on a claim (on or
  before `as_of`) are allocated together: lines in claim order, each up to what it asks (its
  claimed amount, or the amount its dispute was settled at), lines under open dispute last;
  anything paid beyond every line's ask stays first on the lines settled below their claim (up
  to what was claimed: a payer who paid the claim in full over-paid exactly those lines), and
  only what is left beyond that goes on the claim's last line. So the lines' `paid` adds up to
  the claim's payments to the penny.

Before and after, the quickstart's CBO-2019Q1 (tests/test_claims.py works it by hand):

    ClaimSubmitted     CBO-2019Q1 to CBO for weeks to 2019-03-31: C001 1,530.00, C002 1,800.00
    ClaimLineDisputed  CBO-2019Q1 C001 by CBO, 2019-06-15 (never resolved)
    PaymentReceived    CBO-2019Q1 3,000.00, 2019-07-01

    claims_from_facts(...)["CBO-2019Q1"], at as_of 2019-12-31:
      claimed 3,330.00, paid(as_of) 3,000.00, dispute("C001", as_of).outcome "open"
      allocate(as_of): C002 1,800.00 (its whole ask, first: C001 is in dispute),
                       C001 1,200.00 (what is left)

    Had the dispute been settled (DisputeResolved upheld at 1,300.00) and CBO paid 3,330.00:
      allocate(as_of): C001 1,530.00 (1,300.00 asked + the 230.00 over-paid on it),
                       C002 1,800.00
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from soc_ledger.domain import contract as contract_rules
from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.prices import ZERO


class Line(NamedTuple):
    """A claim's line as the rules read it: the event's `ClaimLine` once validated, kept as a
    plain record (a claim to the top-up funder lists tens of thousands)."""

    case: str
    weeks: int
    amount: Decimal


def lines_of(lines: Sequence[ev.ClaimLine | Line]) -> tuple[Line, ...]:
    """A submission's lines as `Line`s (the claims read model gives them so already)."""
    if lines and type(lines[0]) is Line:
        return tuple(lines)  # type: ignore[arg-type]
    return tuple(Line(line.case, line.weeks, line.amount) for line in lines)


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim as read from the facts, with everything recorded about it (any date)."""

    claim: str
    payer: str
    period_end: date
    submitted: date  # the claim's effective date
    position: int  # log position of its ClaimSubmitted
    lines: tuple[Line, ...]
    disputes: tuple[ev.ClaimLineDisputed, ...] = ()
    resolutions: tuple[ev.DisputeResolved, ...] = ()
    payments: tuple[ev.PaymentReceived, ...] = ()

    @property
    def claimed(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def paid(self, as_of: date) -> Decimal:
        return sum((p.amount for p in self.payments if p.effective <= as_of), ZERO)

    def dispute(self, case: str, as_of: date) -> DisputeState | None:
        """The state of the dispute on a line at `as_of`, None if none was raised by then."""
        raised = next(
            (d for d in self.disputes if d.case == case and d.effective <= as_of), None
        )
        if raised is None:
            return None
        settled = next(
            (r for r in self.resolutions if r.case == case and r.effective <= as_of), None
        )
        return DisputeState(raised, settled)

    def allocate(self, as_of: date) -> dict[str, Decimal]:
        """The claim's payments at `as_of` spread over its lines (see the module's readings)."""
        disputes = {line.case: self.dispute(line.case, as_of) for line in self.lines}
        held = {case for case, d in disputes.items() if d is not None and d.open}
        order = [line for line in self.lines if line.case not in held] + [
            line for line in self.lines if line.case in held
        ]
        left = self.paid(as_of)
        paid = {line.case: ZERO for line in self.lines}
        for line in order:
            d = disputes[line.case]
            ask = d.resolution.amount if d is not None and d.resolution else line.amount
            take = min(left, ask)
            paid[line.case] += take
            left -= take
        # An over-payment of a line settled below its claim belongs to that line, not another
        # case's: it is what the payer paid for the claim as made.
        for line in self.lines:
            d = disputes[line.case]
            if left and d is not None and d.resolution and d.resolution.amount < line.amount:
                take = min(left, line.amount - d.resolution.amount)
                paid[line.case] += take
                left -= take
        if left and self.lines:
            paid[self.lines[-1].case] += left
        return paid


@dataclass(frozen=True, slots=True)
class DisputeState:
    raised: ev.ClaimLineDisputed
    resolution: ev.DisputeResolved | None

    @property
    def open(self) -> bool:
        return self.resolution is None

    @property
    def outcome(self) -> str:
        return "open" if self.resolution is None else self.resolution.outcome


def claims_from_facts(facts: Iterable[Fact], contract: str) -> dict[str, Claim]:
    """Every claim of `contract` with its disputes, resolutions and payments, in log order.

    Facts run through the contract's own rules (`domain.contract.apply`); a fact they would
    reject at this reading is left out, as `contract_from_facts` does. `facts` must include
    the `ContractAgreed` (the rules need an agreed contract).
    """
    state = ContractState(contract)
    drafts: dict[str, dict] = {}
    for fact in facts:
        event = fact.event
        if event.contract != contract:
            continue
        try:
            contract_rules.apply(state, event)
        except DomainError:
            continue
        if isinstance(event, ev.ClaimSubmitted):
            drafts[event.claim] = {
                "claim": event.claim,
                "payer": event.payer,
                "period_end": event.period_end,
                "submitted": event.effective,
                "position": fact.recorded.position,
                "lines": lines_of(event.lines),
                "disputes": [],
                "resolutions": [],
                "payments": [],
            }
        elif isinstance(event, ev.ClaimLineDisputed):
            drafts[event.claim]["disputes"].append(event)
        elif isinstance(event, ev.DisputeResolved):
            drafts[event.claim]["resolutions"].append(event)
        elif isinstance(event, ev.PaymentReceived):
            drafts[event.claim]["payments"].append(event)
    return {
        claim: Claim(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in draft.items()}
        )
        for claim, draft in drafts.items()
    }


def asked(
    made: Iterable[tuple[str, str]], payers: Collection[str] | None, named: Collection[str]
) -> set[str]:
    """Of the submissions `made` (claim, payer), the claim ids a question about `payers` or
    the claims `named` reads: those made to the payers or to a named claim's payer, every
    submission of those ids (the rules refuse a second one: which came first decides)."""
    made = list(made)
    wanted = set(payers or ()) | {payer for claim, payer in made if claim in named}
    return {claim for claim, payer in made if payer in wanted}


def on_ledger(claims: Iterable[Claim], as_of: date) -> list[Claim]:
    """The claims submitted on or before `as_of`, in order of period end, then of recording."""
    return sorted(
        (c for c in claims if c.submitted <= as_of), key=lambda c: (c.period_end, c.position)
    )


@dataclass(frozen=True, slots=True)
class Windows:
    """For one payer: where each claim line's weeks begin, and where the claimed weeks end."""

    previous: dict[tuple[str, str], date | None]  # (claim, case) -> the previous line's end
    last: dict[str, date]  # case -> the period end of its latest line
    # case -> the period ends of its lines and their claims, in order (never decreasing)
    lines: dict[str, tuple[list[date], list[Claim]]]

    @classmethod
    def of(cls, claims: Iterable[Claim], payer: str) -> Windows:
        """`claims` in order of period end, then of recording (`on_ledger`)."""
        previous: dict[tuple[str, str], date | None] = {}
        last: dict[str, date] = {}
        lines: dict[str, tuple[list[date], list[Claim]]] = {}
        for claim in claims:
            if claim.payer != payer:
                continue
            for line in claim.lines:
                previous[(claim.claim, line.case)] = last.get(line.case)
                last[line.case] = claim.period_end
                ends, made = lines.setdefault(line.case, ([], []))
                ends.append(claim.period_end)
                made.append(claim)
        return cls(previous, last, lines)

    def covering(self, case: str, end: date) -> Claim | None:
        """The claim whose line for `case` covers the week ending `end`: its window runs from
        the previous line's period end (exclusive) to its own (inclusive), so it is the first
        line whose period end is not before `end`."""
        found = self.lines.get(case)
        if found is None:
            return None
        ends, made = found
        i = bisect_left(ends, end)
        return made[i] if i < len(made) else None
