"""Which claims a change of knowledge moves (SPEC §7 and §10 `diff`).

The reading (also in docs/claims.md): a claim line asks its payer for that payer's share of
one case's weeks ending after the payer's previous line for the case, up to the claim's
`period_end` (`owed.py`). A changed week moves a claim when

- the week is one of the claim's lines' weeks: the same case, ending in the line's window
  (previous end, period_end];
- the claim's payer's share of that week changed (the borough's share for the case's borough,
  the top-up share for the top-up funder); and
- the claim was made by the earlier reading (recorded by its `known_at`): everything the diff
  shows was learnt after it was made, so its due now moves by exactly the changes of its weeks.
  A claim made between the two readings asked with part of that news already known; the diff
  cannot tell which part, so it does not name it (`reconcile` compares it with what it asked).

A line is moved when the changes of its weeks do not cancel out (its due moves by their sum);
a claim is moved when one of its lines is. A change no claim covers (a week after the payer's
last claim) moves only the payer's account: its unclaimed due.

Before and after, the quickstart's C001 (Sutton; 169.00 a week from the borough, 45.00 from the
top-up funder CBO), claims SUT-2019Q1 and CBO-2019Q1 (to 2019-03-31, recorded 2019-06-01) and
SUT-2019Q2 (to 2019-06-30, recorded 2019-09-15). The stay restated on 2019-09-02 puts week 28
(ending 2019-01-27) in care, an outcome week before:

    diff --known-at 2019-06-30 (SUT-2019Q2 not yet made) --vs everything:
    ShareChange("C001", 2019-01-27, "SUT", -169.00)
    ShareChange("C001", 2019-01-27, "CBO",  -45.00)

    claims_moved(those, [SUT-2019Q1, CBO-2019Q1, SUT-2019Q2], made={the first two}) ->
      SUT-2019Q1  SUT  C001  -169.00
      CBO-2019Q1  CBO  C001   -45.00
    (SUT-2019Q2 covers weeks ending after 2019-03-31: not moved)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.claims.claims import Claim, Windows
from soc_ledger.domain.outcomes.prices import ZERO


@dataclass(frozen=True, slots=True)
class ShareChange:
    """One payer's share of one case's week, changed by `amount`."""

    case: str
    end: date  # the week's last day
    payer: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ClaimMoved:
    claim: str
    payer: str
    period_end: date
    lines: tuple[tuple[str, Decimal], ...]  # (case, change of its due), lines that moved

    @property
    def change(self) -> Decimal:
        return sum((amount for _, amount in self.lines), ZERO)


def covering(change: ShareChange, windows: Windows) -> Claim | None:
    """The claim whose line for the change's case and payer (`windows` are the payer's)
    covers the change's week."""
    return windows.covering(change.case, change.end)


def claims_moved(
    changes: Iterable[ShareChange], claims: Sequence[Claim], made: Collection[str]
) -> list[ClaimMoved]:
    """The claims among `made` whose due the changes move, each with its moved lines, in the
    order of `claims` (the claims on the ledger, `on_ledger` order, which decide the lines'
    windows)."""
    windows = {payer: Windows.of(claims, payer) for payer in {c.payer for c in claims}}
    moved: dict[str, dict[str, Decimal]] = {}
    for change in changes:
        if change.amount == 0 or change.payer not in windows:
            continue
        claim = covering(change, windows[change.payer])
        if claim is None or claim.claim not in made:
            continue
        lines = moved.setdefault(claim.claim, {})
        lines[change.case] = lines.get(change.case, ZERO) + change.amount
    return [
        ClaimMoved(
            c.claim,
            c.payer,
            c.period_end,
            tuple((case, v) for case, v in moved[c.claim].items() if v != 0),
        )
        for c in claims
        if c.claim in moved and any(v != 0 for v in moved[c.claim].values())
    ]
