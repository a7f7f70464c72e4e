"""SPEC §5 `fixed_blocks`: week k of the window covers the days T + 7k .. T + 7k + 6.

Each block takes one status (`weeks.py`): `pending` when its last day is after `as_of`, else
`in_care` with a day in care, else `outcome` when its last day is verified, else `unverified`.
Days counted are those of the window on or before `as_of` ("elapsed"), whatever the status, so
a pending block that is half over counts its elapsed days.

The blocks also report, under `consecutive_runs`, the time that pays nothing: that rule keeps
only the `in_care` and `pending` blocks and counts the paid time in 7-day units
(`consecutive_runs.py`).

Before/after, the reference terms (price 214.00, top-up 45.00), T = 2019-05-06, all verified,
`as_of` 2019-07-31, one stay 2019-05-15 .. 2019-05-20 (DEC):

    block 0 May 6-12   -> outcome, 7 days out of care, SUT 169.00 + CBO 45.00
    block 1 May 13-19  -> in_care, 5 days in care, 2 out
    block 2 May 20-26  -> outcome (May 20 is the first day out of care)
    blocks 3..11       -> outcome; block 12 Jul 29-Aug 4 -> pending (3 days elapsed)
    so 11 outcome, 1 in_care, 92 pending; 5 days in care, 82 out of care
"""

from __future__ import annotations

from soc_ledger.domain.outcomes.care_days import days_in_care
from soc_ledger.domain.outcomes.weeks import Dated


def block_statuses(
    care: list[tuple[int, int]],
    first: int,
    count: int,
    today: int,
    verified_to: int,
    paid: bool = True,
) -> list[Dated]:
    """The `count` fixed blocks of a window starting on day `first` (ordinals), by `today`
    (`as_of`) and `verified_to` (the borough's coverage), each as (k, first day, last day,
    status, days in care, days out of care, None); without the blocks that pay or would pay
    once verified unless `paid`."""
    in_care = days_in_care(care, first, count, today)
    if first + 7 * count - 1 <= today:
        # Every block over (the read models assess with every week elapsed): one pass in C.
        blocks = [
            (
                k,
                first + 7 * k,
                first + 7 * k + 6,
                "in_care"
                if days
                else "outcome"
                if first + 7 * k + 6 <= verified_to
                else "unverified",
                days,
                7 - days,
                None,
            )
            for k, days in enumerate(in_care)
        ]
        if paid:
            return blocks
        return [b for b in blocks if b[3] == "in_care"]
    blocks = []
    for k in range(count):
        start = first + 7 * k
        end = start + 6
        days_in = in_care[k]
        days_out = max(0, min(end, today) - start + 1) - days_in
        if end > today:
            status = "pending"
        elif days_in:
            status = "in_care"
        elif end <= verified_to:
            status = "outcome"
        else:
            status = "unverified"
        if not paid and status in ("outcome", "unverified"):
            continue
        blocks.append((k, start, end, status, days_in, days_out, None))
    return blocks
