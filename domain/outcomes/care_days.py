"""SPEC §5 "In care on day d": a case's care as intervals of days, and a week's days in care.

Days are handled as intervals of date ordinals, never one object per day: a case's care is a
handful of half-open intervals [first day in care, first day out of care), and a week's days in
care are its overlap with them.

Readings:

- A day d of tracking week k is in care when a spell with start <= d < end (the end, the
  SSDA903 DEC, is the first day out of care; an open spell runs on) is not excluded by the
  `excluded_legal_statuses`/`excluded_placements` in force on the *last day of week k*
  (SPEC §3). The same classification of days serves both week rules, so switching the rule
  only regroups out-of-care days into paid weeks.
- Spells are read as corrected and retracted as known at `known_at` (`facts.cases_from_facts`).

Before/after, the reference terms (V3 and V4 excluded), a window from T = 2019-05-06 and
`as_of` 2019-07-31 (87 elapsed days):

    spells: E1 C2 2019-05-15 .. 2019-05-20 (ended), E2 V3 2019-06-03 (open: a short break)
    care_intervals(...) -> [(2019-05-15, 2019-05-20)] as ordinals: 5 days, E2 excluded
    days_in_care(care, first=May 13, count=2, today=Jul 31) -> [5, 0] (May 20 is out of care)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from soc_ledger.domain.outcomes.facts import Spell
from soc_ledger.domain.outcomes.terms import TermsTimeline

_OPEN = date.max.toordinal() + 1  # the end of an open spell: after every real day


@dataclass(frozen=True, slots=True)
class Span:
    """A `Spell` as ordinals: in care from `start` up to, not including, `end`."""

    start: int
    end: int  # exclusive; _OPEN while open
    legal_status: str
    placement: str
    refs: tuple[int, ...]

    @classmethod
    def of(cls, spell: Spell) -> Span:
        end = spell.end.toordinal() if spell.end is not None else _OPEN
        return cls(spell.start.toordinal(), end, spell.legal_status, spell.placement, spell.refs)


def care_intervals(
    spells: list[Span], timeline: TermsTimeline, first: int, count: int, upto: int
) -> list[tuple[int, int]]:
    """The window's elapsed days in care, [first day, first day after) ordinals, disjoint.

    Each day is judged by the exclusions in force on the last day of its fixed block, so the
    blocks are taken in groups that share one set of terms.
    """
    if upto < first or not spells:
        return []
    elapsed_blocks = min(count, (upto - first) // 7 + 1)
    pieces: list[tuple[int, int]] = []
    k = 0
    while k < elapsed_blocks:
        i = timeline.index(first + 7 * k + 6)
        seg = timeline.segments[i]
        if i < len(timeline.starts):  # blocks ending before the next variation share `seg`
            k_next = max(k + 1, -((first + 6 - timeline.starts[i]) // 7))
        else:
            k_next = elapsed_blocks
        k_next = min(k_next, elapsed_blocks)
        lo, hi = first + 7 * k, min(first + 7 * k_next, upto + 1)
        for s in spells:
            if s.legal_status in seg.excluded_statuses or s.placement in seg.excluded_placements:
                continue
            a, b = max(s.start, lo), min(s.end, hi)
            if a < b:
                pieces.append((a, b))
        k = k_next
    pieces.sort()
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def days_in_care(care: list[tuple[int, int]], first: int, count: int, today: int) -> list[int]:
    """Days in care of each of `count` fixed blocks of 7 days from `first`, counting only the
    days on or before `today` (the elapsed ones): one sweep of the intervals, a handful."""
    days = [0] * count
    stop = min(first + 7 * count, today + 1)
    for a, b in care:
        a, b = max(a, first), min(b, stop)
        while a < b:
            cut = min(b, first + 7 * ((a - first) // 7 + 1))
            days[(a - first) // 7] += cut - a
            a = cut
    return days


def touching(spells: list[Span], first: int, last: int) -> tuple[int, ...]:
    """Positions of the spells (excluded or not) with a day in first..last."""
    found: tuple[int, ...] = ()
    for s in spells:
        if s.start <= last and s.end > first:
            found += s.refs
    return found
