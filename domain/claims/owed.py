"""What a payer owes for a case at any as_of (SPEC §7): what a claim line is measured against.

The reading (also in docs/claims.md):

- **What a claim line asks for.** A claim line asks its payer for the payer's share of one
  case's outcome weeks that ended after the period the payer's previous claim line for that case
  covered, up to the claim's `period_end`. "The previous line" is the line for the same case in
  the payer's claim with the latest `period_end` before it (claims of the same payer in order of
  `period_end`, then of recording). The payer's share is the borough share (after caps) for
  the case's referring borough, the top-up share (after caps) for the top-up funder, nothing for
  anyone else. Exactly:

      due(line) = owed(case, payer, as_of=period_end) - owed(case, payer, as_of=previous end)

  where `owed` is what `liability` gives that payer for that case (0 before any claim), both
  read with the same knowledge. Because a week's amount is final once it has ended, that is the
  payer's share of the case's weeks ending in (previous end, period_end]; written as a
  difference, a case's lines add up, claim by claim, to what it owes at the last one exactly.

Before and after, case C001 of Sutton in the quickstart (169.00 a week from the borough, 45.00
from the top-up funder CBO; 37 weeks ended by 2019-03-31 and 50 by 2019-06-30; a stay in care
over weeks 25-27, restated on 2019-09-02 to take in week 28 too):

    Owed(known on 2019-06-01).share("C001", "SUT", 2019-03-31)   34 weeks   5,746.00
    Owed(known now).share("C001", "SUT", 2019-03-31)             33 weeks   5,577.00
    Owed(known now).share("C001", "CBO", 2019-03-31)             33 weeks   1,485.00
    Owed(known now).share("C001", "MRT", 2019-03-31)              0 weeks       0.00
    Owed(known now).due("C001", "SUT", 2019-03-31, 2019-06-30)   13 weeks   2,197.00
      (SUT-2019Q2's line: 46 weeks 7,774.00 at 2019-06-30 less 33 weeks 5,577.00)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.outcomes.facts import CaseFacts
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement
from soc_ledger.domain.outcomes.weeks import Week


@dataclass(frozen=True, slots=True)
class Share:
    """A payer's share of a case's outcome weeks: money after caps, and how many weeks."""

    amount: Decimal = ZERO
    weeks: int = 0

    def __sub__(self, other: Share) -> Share:
        return Share(self.amount - other.amount, self.weeks - other.weeks)


NOTHING = Share()


class _Reading:
    """One `liability` answer, indexed for `owed` lookups: per case, its outcome weeks' last
    days and the running sums of the borough and top-up shares."""

    def __init__(self, result: Liability) -> None:
        self.result = result
        self.borough = {c.case: c.borough for c in result.cases}
        self.table: dict[str, tuple[list[date], list[Decimal], list[Decimal]]] = {}
        for case, (_, weeks) in result.by_case.items():
            ends: list[date] = []
            borough, top_up = [ZERO], [ZERO]
            for w in weeks:
                if w.status == "outcome":
                    ends.append(w.end)
                    borough.append(borough[-1] + w.borough_amount)
                    top_up.append(top_up[-1] + w.top_up_amount)
            self.table[case] = (ends, borough, top_up)


class Owed:
    """What each payer owes for each case at any `as_of` up to `horizon`, at one knowledge.

    One `liability` at `horizon` answers every earlier `as_of`: a week's status and amount are
    final once it has ended (caps take weeks in the order of their last days), so the weeks that
    ended by `as_of` are the same in both. The one exception is a case that had outcome weeks by
    `as_of` but was not yet tracked then (still inside its first `min_engagement_days`, possible
    only under terms whose tracking offset is shorter than that): for such an `as_of` the
    liability is computed at `as_of` itself. Either way the answer is `liability(as_of)`'s.
    """

    def __init__(
        self,
        contract: ContractState,
        cases: Mapping[str, CaseFacts],
        coverage: Mapping[str, date],
        horizon: date,
    ) -> None:
        self.contract = contract
        self.cases = cases
        self.coverage = coverage
        self.horizon = horizon
        self.timeline = TermsTimeline(contract)
        self.funder = self.timeline.top_up_funder
        self._full = _Reading(liability(contract, cases, coverage, horizon))
        self._first_outcome = {
            case: ends[0] for case, (ends, _, _) in self._full.table.items() if ends
        }
        self._readings: dict[date, _Reading] = {horizon: self._full}

    def _reading(self, as_of: date) -> _Reading:
        if as_of > self.horizon:
            raise ValueError(f"as_of {as_of} is after the horizon {self.horizon}")
        found = self._readings.get(as_of)
        if found is None:
            early = any(
                end <= as_of and engagement(self.cases[case], self.timeline, as_of) != "tracked"
                for case, end in self._first_outcome.items()
            )
            found = (
                _Reading(liability(self.contract, self.cases, self.coverage, as_of))
                if early
                else self._full
            )
            self._readings[as_of] = found
        return found

    def share(self, case: str, payer: str, as_of: date | None) -> Share:
        """The payer's share of the case's outcome weeks at `as_of` (None: nothing yet)."""
        if as_of is None:
            return NOTHING
        reading = self._reading(as_of)
        entry = reading.table.get(case)
        if entry is None:
            return NOTHING
        ends, borough, top_up = entry
        i = bisect_right(ends, as_of)
        pays_borough = payer == reading.borough[case]
        pays_top_up = payer == self.funder
        amount = (borough[i] if pays_borough else ZERO) + (top_up[i] if pays_top_up else ZERO)
        return Share(amount, i if pays_borough or pays_top_up else 0)

    def due(self, case: str, payer: str, after: date | None, upto: date) -> Share:
        """A claim line's due: the share at `upto` less the share at `after`."""
        return self.share(case, payer, upto) - self.share(case, payer, after)

    def claimed_due(
        self, payer: str, lines: Iterable[tuple[str, date | None]], upto: date
    ) -> Decimal:
        """A claim's due: its lines' (case, where its weeks begin) `due`s to `upto`, added."""
        return sum((self.due(case, payer, after, upto).amount for case, after in lines), ZERO)

    def weeks(self, case: str, after: date | None, upto: date) -> list[Week]:
        """The case's weeks (any status) ending in (after, upto], as read at `upto`."""
        reading = self._reading(upto)
        return [
            w
            for w in reading.result.weeks_of(case)
            if w.end <= upto and (after is None or w.end > after)
        ]
