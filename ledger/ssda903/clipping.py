"""One child's rows of an SSDA903 return: validated against the DfE rules, clipped to the period.

Readings (an auditor's, written down in docs/ssda903.md):

- **Clipping.** A used row is in care from max(DECOM, period start) up to, not including,
  min(DEC, the day after the period end); an open row runs to the end of the period. Rows with
  no day in the period are counted and ignored (not validated).
- **The period end.** Every clipped episode is recorded closed. One still open at the period
  end, or ending after it, gets a `CareEpisodeEnded` dated the day after the period end with
  reason `period-end` (not an SSDA903 code): the return says nothing about later days, which
  are the next return's to state (its episode starts on that same day; DEC is exclusive, so
  the two do not overlap). An episode whose DEC is exactly the day after the period end keeps
  its REC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from soc_ledger.ledger.problems import Problem
from soc_ledger.ledger.ssda903.period import Period
from soc_ledger.ledger.ssda903.reading import EpisodeRow

# The DfE code lists checked on used rows (SSDA903 guidance, collection year 2017-18, the year
# of the validator sample; DfE validation rules 144, 146 and 149). A later year's new codes are
# refused as unknown until they are added here.
LEGAL_STATUSES = frozenset("C1 C2 D1 E1 J1 J2 J3 L1 L2 L3 V2 V3 V4".split())
REASONS_EPISODE_CEASED = frozenset(
    "X1 E11 E12 E13 E14 E15 E16 E17 E2 E3 E4A E4B E41 E45 E46 E47 E48 E5 E6 E7 E8 E9".split()
)
PLACEMENTS = frozenset(
    "A3 A4 A5 A6 H5 K1 K2 P1 P2 P3 R1 R2 R3 R5 S1 T0 T1 T2 T3 T4 U1 U2 U3 U4 U5 U6 Z1".split()
)
NEW_EPISODE_SAME_DAY = "X1"
PERIOD_END = "period-end"  # the reason of an end that is only the end of the return's period

_DMY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_dfe_date(text: str, iso: bool = False) -> date:
    """A DfE date dd/mm/yyyy (or, from XML, YYYY-MM-DD); ValueError saying what is wrong."""
    match = _DMY.match(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
    elif iso and _YMD.match(text):
        year, month, day = (int(g) for g in _YMD.match(text).groups())  # type: ignore[union-attr]
    else:
        expected = "dd/mm/yyyy or YYYY-MM-DD" if iso else "dd/mm/yyyy"
        raise ValueError(f"expected a date {expected}, got {text!r}")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a real calendar date") from None


def _show(day: date | None) -> str:
    return "open" if day is None else day.strftime("%d/%m/%Y")


@dataclass(frozen=True, slots=True)
class Clip:
    """One used row clipped to the period: in care on start <= d < end."""

    row: EpisodeRow
    decom: date
    start: date
    end: date
    reason: str  # REC, or PERIOD_END when the row runs past the period
    legal_status: str
    placement: str


def clip_child(rows: Sequence[EpisodeRow], period: Period) -> tuple[list[Clip], int, list[Problem]]:
    """Validate one child's rows and clip them to the period.

    Returns the clipped episodes (in date order), the number of rows with no day in the period
    (ignored, not validated beyond their dates) and every problem of the used rows.
    """
    problems: list[Problem] = []
    dated: list[tuple[EpisodeRow, date, date | None]] = []
    starts: set[date] = set()
    outside = 0
    for row in rows:
        decom, decom_error = _try_date(row, "DECOM")
        dec, dec_error = _try_date(row, "DEC") if row["DEC"] else (None, None)
        if decom is not None:
            starts.add(decom)
        # A row that certainly has no day in the period is not used, whatever else is wrong.
        if (decom is not None and decom > period.end) or (
            dec is not None and dec <= period.start and (decom is None or decom <= dec)
        ):
            outside += 1
            continue
        if decom_error or dec_error:
            problems.extend(p for p in (decom_error, dec_error) if p is not None)
            continue
        assert decom is not None
        if dec is not None and dec < decom:
            problems.append(
                Problem(
                    row.source,
                    row.line,
                    "DEC",
                    f"{_show(dec)} is before DECOM {_show(decom)}: an episode cannot cease "
                    "before it starts",
                )
            )
            continue
        dated.append((row, decom, dec))

    used: list[tuple[EpisodeRow, date, date | None, date, date]] = []
    for row, decom, dec in dated:
        start = max(decom, period.start)
        end = min(dec or period.stop, period.stop)
        if start >= end:
            outside += 1
            continue
        used.append((row, decom, dec, start, end))
        problems.extend(_row_problems(row, dec, period, starts))
    problems.extend(_overlaps(used))
    if problems:
        return [], outside, problems
    clips = [
        Clip(
            row,
            decom,
            start,
            end,
            row["REC"] if dec is not None and dec <= period.stop else PERIOD_END,
            row["LS"],
            row["PLACE"],
        )
        for row, decom, dec, start, end in used
    ]
    clips.sort(key=lambda c: (c.start, c.end))
    return clips, outside, []


def _try_date(row: EpisodeRow, column: str) -> tuple[date | None, Problem | None]:
    try:
        return parse_dfe_date(row[column], row.iso_dates), None
    except ValueError as exc:
        return None, Problem(row.source, row.line, column, str(exc))


def _code_problem(row: EpisodeRow, column: str, codes: frozenset[str], what: str) -> list[Problem]:
    value = row[column]
    if not value:
        return [Problem(row.source, row.line, column, f"blank; expected {what}")]
    if value not in codes:
        return [
            Problem(
                row.source,
                row.line,
                column,
                f"{value!r} is not {what} (one of {' '.join(sorted(codes))})",
            )
        ]
    return []


def _row_problems(
    row: EpisodeRow, dec: date | None, period: Period, starts: set[date]
) -> list[Problem]:
    problems = _code_problem(row, "LS", LEGAL_STATUSES, "an SSDA903 legal status")
    problems += _code_problem(row, "PLACE", PLACEMENTS, "an SSDA903 placement code")
    rec = row["REC"]
    if rec and rec not in REASONS_EPISODE_CEASED:
        problems.append(
            Problem(
                row.source,
                row.line,
                "REC",
                f"{rec!r} is not an SSDA903 reason episode ceased "
                f"(one of {' '.join(sorted(REASONS_EPISODE_CEASED))})",
            )
        )
    if dec is not None and not rec:
        problems.append(
            Problem(
                row.source,
                row.line,
                "REC",
                f"blank, but DEC is {_show(dec)}: an episode that ceased needs its reason "
                "(DEC and REC are both given or both blank)",
            )
        )
    elif dec is None and rec:
        problems.append(
            Problem(
                row.source,
                row.line,
                "DEC",
                f"blank, but REC is {rec!r}: an open episode has neither DEC nor REC "
                "(DEC and REC are both given or both blank)",
            )
        )
    elif rec == NEW_EPISODE_SAME_DAY and dec is not None and dec <= period.end:
        if dec not in starts:
            problems.append(
                Problem(
                    row.source,
                    row.line,
                    "REC",
                    f"X1 says a new episode starts on DEC {_show(dec)}, but no episode of "
                    "this child in the return starts that day",
                )
            )
    return problems


def _overlaps(used: list[tuple[EpisodeRow, date, date | None, date, date]]) -> list[Problem]:
    """Problems for every used row that overlaps an earlier one inside the period."""
    problems: list[Problem] = []
    ordered = sorted(used, key=lambda u: (u[3], u[4], u[0].line))
    latest: tuple[EpisodeRow, date, date | None, date, date] | None = None
    for item in ordered:
        row, decom, dec, start, end = item
        if latest is not None and start < latest[4]:
            other = latest[0]
            same = dict(other.values) == dict(row.values)
            what = (
                f"duplicates the episode on line {other.line}"
                if same
                else (
                    f"this episode ({_show(decom)} to {_show(dec)}) overlaps the episode on "
                    f"line {other.line} ({_show(latest[1])} to {_show(latest[2])}) of the same "
                    "child inside the period"
                )
            )
            problems.append(Problem(row.source, row.line, "DECOM", what))
        if latest is None or end > latest[4]:
            latest = item
    return problems
