"""SPEC §5 `consecutive_runs`: every run of days out of care pays a week per 7 days.

Reading: every maximal run of elapsed out-of-care days inside the window is cut into 7-day
units from its first day; a unit is `outcome` when its 7th day is verified, else `unverified`
(it would pay once the data arrives: coverage only moves forward, so the units that will pay
start on the same days). Time that pays nothing is reported by the fixed blocks
(`fixed_blocks.py`): the blocks with a day in care (`in_care`) and the blocks not yet over
(`pending`). So `weeks.outcome` is the number of paid units; `in_care` and `pending` count fixed
blocks; the leftover days of a run (fewer than 7) appear in no row but in the day totals. A
row's `index` is the fixed block k its last day falls in.

Before/after, the reference terms, T = 2019-05-06, all verified, `as_of` 2019-07-31:

    one stay 2019-05-15 .. 2019-05-20 (DEC)
      run May 6-14 (9 days)      -> 1 unit May 6-12 (index 0); 2 days left over
      run May 20-Jul 31 (73)     -> 10 units May 20-26 .. Jul 22-28 (index 2..11); 3 left over
      so 11 outcome units, as `fixed_blocks` pays (the stay lies in one block)
    a two-day stay 2019-05-12 .. 2019-05-14 (DEC), across blocks 0 and 1
      run May 6-11 (6 days)      -> no unit
      run May 14-Jul 31 (79)     -> 11 units, May 14-20 (index 2) .. Jul 23-29 (index 12)
      so 11 outcome units where `fixed_blocks` pays 10 (blocks 0 and 1 in care)
"""

from __future__ import annotations

from soc_ledger.domain.outcomes.care_days import Span, touching
from soc_ledger.domain.outcomes.weeks import Dated


def run_statuses(
    care: list[tuple[int, int]], first: int, upto: int, verified_to: int
) -> list[Dated]:
    """`consecutive_runs`: each maximal run of elapsed out-of-care days in the window pays
    floor(length / 7) weeks, each dated by its 7th day; a unit whose 7th day is not verified
    is `unverified`. Each unit is (k of its last day, first day, last day, status, 0, 7,
    (the run's first day, the first day after it))."""
    units: list[Dated] = []
    cursor = first
    for a, b in [*care, (upto + 1, upto + 1)]:
        if a > cursor:
            run = (cursor, a)
            for start in range(cursor, a - 6, 7):
                end = start + 6
                status = "outcome" if end <= verified_to else "unverified"
                units.append(((end - first) // 7, start, end, status, 0, 7, run))
        cursor = max(cursor, b)
    return units


def unit_refs(spells: list[Span], run: tuple[int, int], start: int, end: int) -> tuple[int, ...]:
    """A unit's `because`: the spells around its run (the stay that ended where the run
    starts and the one that cuts it) and any it touches."""
    bounds = tuple(p for s in spells if s.end == run[0] or s.start == run[1] for p in s.refs)
    return bounds + touching(spells, start, end)

