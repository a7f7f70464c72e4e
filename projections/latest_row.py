"""The row of one tracked case in the latest read model (`latest.py`), `latest_case_weeks`.

The row (money in pence, as integers: exact in any database, never a binary float):

- the window: `first_day` (ordinal of the tracking start T) and `weeks`; fixed block k covers
  T+7k .. T+7k+6. `care` holds the window's days in care as intervals, for the day totals;
- `kinds` and `outline`: every week before caps as (last day - T, kind), a kind being
  (status, borough, top-up, provisional borough, provisional top-up); `verified`, the
  borough's care-data coverage clipped to the window (all its weeks' statuses depend on);
- `capped`: what the caps left owed of the outcome weeks they limited ({week: [borough,
  top-up, cap positions]}), NULL when none; `cap_gross`: the gross pence each cap covers in
  this case. Summed over the contract, it says whether a cap can bind at all;
- `counted` and `tally`, what `liability_at` reads: `counted` lists the kinds after caps
  (status and the six money columns of `Tally.money`); `tally` holds `weeks + 1` slices of
  `width` characters. Slice k counts, per counted kind, the weeks whose last day is before
  block k starts (the weeks owed once k blocks have elapsed) in `digits` decimal digits each;
  under `consecutive_runs` it then names the one 7-day unit, if any, whose last day falls on
  day d = 0..5 of block k (d, then its kind; d = 9: none): a unit lasts 7 days, so no other
  week ends there. The database hands over just slice k, k computed from `as_of` in SQL.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Column, Date, Index, Integer, String, Table, Text

from soc_ledger.domain.outcomes.assessment import Statuses
from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.care_days import care_intervals
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.weeks import week_amounts
from soc_ledger.ledger.encryption import seal_text
from soc_ledger.ledger.index import metadata

NAME = "latest_case_weeks"
PENNY = Decimal("0.01")
NO_UNIT = 9  # the day-of-block digit of a slice with no unit ending early in its block

latest_case_weeks = Table(
    NAME,
    metadata,
    Column("contract", String(200), primary_key=True),
    Column("case_id", String(200), primary_key=True),
    Column("borough", String(200), nullable=False),
    Column("intervention", String(20), nullable=False),
    Column("first_meeting", Date, nullable=False),
    Column("tracked_from", Date, nullable=False),  # the first as_of at which it is tracked
    Column("tracking_start", Date, nullable=False),
    Column("first_day", Integer, nullable=False),  # ordinal of tracking_start
    Column("weeks", Integer, nullable=False),
    Column("week_rule", String(40), nullable=False),
    Column("care", Text, nullable=False),  # JSON [[first day, first day after], ...] ordinals
    Column("verified", Integer, nullable=False),  # coverage clipped to [first_day - 1, last]
    Column("kinds", Text, nullable=False),  # JSON [[status, 4 x pence], ...] before caps
    Column("outline", Text, nullable=False),  # JSON [last day - first_day, kind, ...]
    Column("capped", Text),  # JSON {week: [owed borough, owed top-up, [positions]]} or NULL
    Column("cap_gross", Text, nullable=False),  # JSON {cap: gross pence}, `seal_text`ed
    Column("counted", Text, nullable=False),  # JSON [[status, 6 x pence], ...] after caps
    Column("width", Integer, nullable=False),  # characters per slice of `tally`
    Column("tally", Text, nullable=False),  # weeks + 1 slices, see the module docstring
    Index("ix_latest_case_weeks_borough", "contract", "borough"),
)
COLUMNS = tuple(c.name for c in latest_case_weeks.columns)  # a row's values, in this order


def to_pence(amount: Decimal) -> int:
    return int(amount / PENNY)


def to_pounds(pence: int) -> Decimal:
    return Decimal(pence).scaleb(-2)


def count_digits(weeks: int) -> int:
    """Digits per count in a slice: enough for any count of weeks or kinds of one case (a
    case has at most `weeks` fixed blocks and `weeks` 7-day units, so fewer than 2 x weeks + 1
    kinds)."""
    return len(str(2 * weeks + 1))


# Care data covering every day there is: every week that would pay is verified.
EVERY_DAY = date.max.toordinal()


def clip(day: int, first: int, weeks: int) -> int:
    """Coverage as far as the window's weeks can tell: clipped to [first - 1, its last day]."""
    return min(max(day, first - 1), first + 7 * weeks - 1)


def elapsed_blocks(today: int, first: int, weeks: int) -> int:
    """Fixed blocks of the window whose last day is on or before `today`."""
    return min(weeks, max(0, (today - first + 1) // 7))


@dataclass(slots=True)
class CaseRow:
    """One case's row; written from an assessment, re-capped from its stored columns."""

    values: dict[str, Any]  # the columns that do not change with the caps
    kinds: list[tuple]  # (status, borough, top-up, provisional borough, provisional top-up)
    outline: list[tuple[int, int]]  # (last day - first_day, kind) per week, by last day
    capped: dict[int, tuple[int, int, list[int]]] = field(default_factory=dict)

    def columns(self, sealed: bool = True) -> dict[str, Any]:
        """Every column, with the weeks counted after the caps in `capped` (and `cap_gross`
        in clear unless `sealed`)."""
        weeks = self.values["weeks"]
        runs = self.values["week_rule"] == "consecutive_runs"
        outline = json_text([x for pair in self.outline for x in pair])
        kinds = self.kinds
        capped = None
        if not self.capped and len(set(kinds)) == len(kinds):
            # Nothing capped: the counted kinds are the kinds (none merged, distinct as they
            # are) in the order of their first week, so the tally depends on the outline
            # alone. Cases share a few hundred outlines among tens of thousands: each tally
            # is built once.
            key = (weeks, runs, outline)
            found = _UNCAPPED.get(key)
            if found is None:
                order = list(dict.fromkeys(kind for _, kind in self.outline))
                rank = {kind: i for i, kind in enumerate(order)}
                per_week = [rank[kind] for _, kind in self.outline]
                found = (order, _tally(self.outline, per_week, len(order), weeks, runs))
                if len(_UNCAPPED) >= 4096:  # bounded: a contract of many odd windows
                    _UNCAPPED.clear()
                _UNCAPPED[key] = found
            order, tally = found
            counted = [(*kinds[kind], 0, 0) for kind in order]
        else:
            keys: dict[tuple, int] = {}
            per_week = []
            for i, (_, kind) in enumerate(self.outline):
                status, borough, top_up, prov_borough, prov_top_up = kinds[kind]
                owed = self.capped.get(i)
                if owed is None:
                    key7 = (status, borough, top_up, prov_borough, prov_top_up, 0, 0)
                else:
                    key7 = (status, owed[0], owed[1], prov_borough, prov_top_up,
                            borough - owed[0], top_up - owed[1])
                per_week.append(keys.setdefault(key7, len(keys)))
            counted = list(keys)
            tally = _tally(self.outline, per_week, len(counted), weeks, runs)
            if self.capped:
                capped = json_text(
                    {str(i): [b, t, refs] for i, (b, t, refs) in self.capped.items()}
                )
        columns = {
            **self.values,
            "kinds": json_text(kinds),
            "outline": outline,
            "capped": capped,
            "counted": json_text(counted),
            "width": len(tally) // (weeks + 1),
            "tally": tally,
        }
        if sealed and "cap_gross" in columns:
            # Cap names are the contract's words: encrypted at rest like every payload column.
            columns["cap_gross"] = seal_text(columns["cap_gross"])
        return columns

    def values_row(self, sealed: bool = True) -> tuple:
        """Every column, in `COLUMNS` order (what `bulk.insert_rows` writes); `cap_gross` in
        clear unless `sealed` (encryption draws a fresh nonce: rows compare in clear)."""
        columns = self.columns(sealed)
        return tuple(columns[name] for name in COLUMNS)


# (weeks, consecutive runs?, outline text) -> (kinds in order of first week, tally): see
# `CaseRow.columns`.
_UNCAPPED: dict[tuple[int, bool, str], tuple[list[int], str]] = {}


def _tally(
    outline: list[tuple[int, int]], per_week: list[int], kinds: int, weeks: int, runs: bool
) -> str:
    """The `tally` column (see the module docstring): `weeks + 1` slices of equal width, the
    weeks counted per counted kind (`per_week`, the counted kind of each week of `outline`)."""
    digits = count_digits(weeks)
    counts = [0] * kinds
    zero = "0" * digits
    texts = [zero] * kinds  # `counts`, formatted (only when one changes)
    slices = []
    j, n = 0, len(outline)
    for k in range(weeks + 1):
        while j < n and outline[j][0] < 7 * k:
            kind = per_week[j]
            counts[kind] += 1
            texts[kind] = f"{counts[kind]:0{digits}d}"
            j += 1
        piece = "".join(texts)
        if runs:
            # Only a 7-day unit can end on days 0..5 of a block, and only one.
            if j < n and outline[j][0] <= 7 * k + 5:
                piece += f"{outline[j][0] - 7 * k}{per_week[j]:0{digits}d}"
                assert j + 1 == n or outline[j + 1][0] > 7 * k + 5, "two early ends"
            else:
                piece += f"{NO_UNIT}{zero}"
        slices.append(piece)
    return "".join(slices)


def json_text(value: Any) -> str:
    """Compact JSON with sorted keys, as `json.dumps` writes it (ASCII only, `\\u` escapes):
    orjson writes the same text several times faster, except for characters past `~` (which
    it leaves raw) and integers beyond 64 bits, so those go the standard library's way and a
    row reads the same text whichever wrote it."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if text.isascii() and b"\x7f" not in text:
            return text.decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def case_row(
    contract: str, a: Statuses, timeline: TermsTimeline, verified_to: int, caps: CapAllocator
) -> CaseRow:
    """The row of one tracked case from its dated statuses (assessed with every week elapsed),
    its weeks priced by kind: (status, segment) gives the kind, without a `Week` per week."""
    case = a.case
    assert case.first_meeting is not None and case.intervention is not None
    first = a.tracking.start.toordinal()
    weeks = a.tracking.weeks
    care = care_intervals(a.spells, timeline, first, weeks, first + 7 * weeks - 1)
    engaged = timeline.at(case.first_meeting.toordinal()).terms.min_engagement_days
    # A hundred weeks a case, every case: a lookup per week, the pricing once per kind.
    # Each week's (status, terms segment of its last day), then a kind per distinct pair in
    # order of first week, priced once: a few kinds, a hundred weeks.
    starts = timeline.starts
    pairs = [(d[3], bisect_right(starts, d[2])) for d in a.dated]
    kinds: dict[tuple, int] = {}  # (status, 4 x pence) -> kind: weeks share their prices
    kind_of = {
        (status, segment): kinds.setdefault(
            (status, *map(to_pence, week_amounts(timeline.segments[segment], status))),
            len(kinds),
        )
        for status, segment in dict.fromkeys(pairs)
    }
    offsets = [d[2] - first for d in a.dated]
    outline = list(zip(offsets, map(kind_of.__getitem__, pairs), strict=True))
    pence = list(kinds)
    cap_gross = _cap_gross(pence, outline, first, case.borough, timeline, caps)
    values = {
        "contract": contract,
        "case_id": case.case,
        "borough": case.borough,
        "intervention": case.intervention,
        "first_meeting": case.first_meeting,
        "tracked_from": date.fromordinal(case.first_meeting.toordinal() + engaged),
        "tracking_start": a.tracking.start,
        "first_day": first,
        "weeks": weeks,
        "week_rule": a.week_rule,
        "care": json_text(care),
        "verified": clip(verified_to, first, weeks),
        "cap_gross": json_text(cap_gross),  # sealed as a column (`CaseRow.columns`)
    }
    return CaseRow(values, pence, outline)


def _cap_gross(
    pence: list[tuple],
    outline: list[tuple[int, int]],
    first: int,
    borough: str,
    timeline: TermsTimeline,
    caps: CapAllocator,
) -> dict[str, int]:
    """The gross pence of the outcome weeks each cap covers in one case's row."""
    cap_gross: dict[str, int] = {}
    outcome = [kind for kind, key in enumerate(pence) if key[0] == "outcome"]
    if caps.any and outcome:
        # The weeks come by last day, so each terms segment's are a slice of the outline,
        # cut where the segment starts; any last day in it stands for the segment, since the
        # caps covering a share depend on the segment only.
        cuts = [bisect_left(outline, (start - first,)) for start in timeline.starts]
        for segment, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(outline)], strict=True)):
            if lo == hi:
                continue
            found = Counter(map(itemgetter(1), outline[lo:hi]))
            day = timeline.starts[segment - 1] if segment else 0
            on_borough, on_top_up = caps.plan(day, borough)
            for kind in outcome:
                n = found.get(kind)
                if not n:  # a cap this case has no week under is not named in its row
                    continue
                for use in on_borough:
                    cap_gross[use.cap] = cap_gross.get(use.cap, 0) + n * pence[kind][1]
                for use in on_top_up:
                    cap_gross[use.cap] = cap_gross.get(use.cap, 0) + n * pence[kind][2]
    return cap_gross


def covered_row(
    verified: CaseRow, verified_to: int, timeline: TermsTimeline, caps: CapAllocator
) -> CaseRow:
    """The row `case_row` gives for the same case, facts and terms when its borough's care
    data covers `verified_to`, from its row with every week verified (`EVERY_DAY`).

    Coverage decides only whether a week that would pay is `outcome` (its last day covered) or
    `unverified` (priced the same, provisionally): a week's days in care, its price and the
    window do not read it (`weeks.py`). So the weeks of `verified` ending after `verified_to`
    trade their outcome kind for the unverified kind of the same prices, the kinds are
    numbered again in order of first week (as `case_row` numbers them), and what the caps
    cover is summed again over the outcome weeks left.

        weeks by last day - T:  6 outcome(16900, 4500) .. 13 in_care .. 20 outcome(16900, 4500)
        covered to T + 10   ->  6 outcome(16900, 4500) .. 13 in_care .. 20 unverified(0, 0,
                                16900, 4500)
    """
    first = verified.values["first_day"]
    weeks = verified.values["weeks"]
    day = clip(verified_to, first, weeks)
    # The weeks come by last day: those not covered are a tail; the head keeps its kinds,
    # numbered as before (their first weeks come first).
    cut = bisect_right(verified.outline, (day - first, len(verified.kinds)))
    if cut == len(verified.outline):
        values = {**verified.values, "verified": day}
        return CaseRow(values, verified.kinds, verified.outline)
    outline = verified.outline[:cut]
    head = len({kind for _, kind in outline})  # the head's kinds are the first `head`
    kinds = {key: kind for kind, key in enumerate(verified.kinds[:head])}
    tail = verified.outline[cut:]
    renamed = {}  # the tail's kinds, in order of first week, to their kinds here
    for kind in dict.fromkeys(kind for _, kind in tail):
        key = verified.kinds[kind]
        if key[0] == "outcome":
            key = ("unverified", 0, 0, key[1], key[2])
        renamed[kind] = kinds.setdefault(key, len(kinds))
    outline += [(offset, renamed[kind]) for offset, kind in tail]
    pence = list(kinds)
    cap_gross = _cap_gross(pence, outline[:cut], first, verified.values["borough"], timeline, caps)
    values = {
        **verified.values,
        "verified": day,
        "cap_gross": json_text(cap_gross),  # sealed as a column (`CaseRow.columns`)
    }
    return CaseRow(values, pence, outline)
