"""Does a return fit the period it is imported for? A wrong `--year` must not pass.

A return for a period lists the episodes open on some day of it: none starts after the period
ends, and every one has a day in it. So a return given the wrong period shows it, and is
refused (one line, naming the period the data looks like) before anything is planned:

- **Starting after.** Any episode row (of any child, referred or not) whose DECOM is after
  the period end: the return speaks of later days than its period has.
- **Mostly outside.** More than half of the matched rows (rows of the borough's referred
  children) have no day in the period (they end on or before its first day). One such row
  is an oddity the import counts and ignores; most of them mean another year.

The period the data looks like is the imported period moved by whole years until it holds
the latest date (DECOM or DEC) of any row: a return's latest date falls in its own period.
Rows whose dates cannot be read are left out of both tests (they are reported, if used, by
`clipping`).
"""

from __future__ import annotations

from datetime import date

from soc_ledger.ledger.ssda903.clipping import parse_dfe_date
from soc_ledger.ledger.ssda903.period import Period, ReturnError
from soc_ledger.ledger.ssda903.reading import EpisodeRow, Return

# More than this share of the matched rows outside the period refuses the return.
MOSTLY_OUTSIDE = 0.5


def _day(row: EpisodeRow, column: str) -> date | None:
    try:
        return parse_dfe_date(row[column], row.iso_dates) if row[column] else None
    except ValueError:
        return None


def _shifted(period: Period, years: int) -> Period:
    def move(day: date) -> date:
        try:
            return day.replace(year=day.year + years)
        except ValueError:  # 29 February
            return date(day.year + years, 2, 28)

    return Period(move(period.start), move(period.end))


def looks_like(ret: Return, period: Period) -> Period | None:
    """The period (of the same length, moved by whole years) holding the return's latest date;
    None when the return has no readable date."""
    days = [d for row in ret.episodes for c in ("DECOM", "DEC") if (d := _day(row, c))]
    if not days:
        return None
    latest = max(days)
    years = latest.year - period.end.year
    guess = _shifted(period, years)
    if latest > guess.end:
        guess = _shifted(period, years + 1)
    elif latest < guess.start:
        guess = _shifted(period, years - 1)
    return guess


def _hint(ret: Return, period: Period) -> str:
    guess = looks_like(ret, period)
    if guess is None or guess == period:
        return "check --year / --period-end"
    if guess != Period.of(guess.end):
        option = f"--period-start {guess.start} --period-end {guess.end}"
    elif (guess.end.month, guess.end.day) == (3, 31):
        option = f"--year {guess.end.year}"
    else:
        option = f"--period-end {guess.end}"
    return f"the episodes look like {guess}; {option}?"


def check_starts(ret: Return, period: Period) -> None:
    """ReturnError if any episode row starts after the period ends."""
    late = [row for row in ret.episodes if (d := _day(row, "DECOM")) and d > period.end]
    if late:
        first = late[0]
        raise ReturnError(
            f"{first.source}:{first.line}: DECOM: {len(late)} episode row(s) start after the "
            f"period {period} ends, so this is not its return: {_hint(ret, period)}"
        )


def check_matched(ret: Return, period: Period, used: int, outside: int) -> None:
    """ReturnError if most matched rows have no day in the period."""
    matched = used + outside
    if matched and outside > MOSTLY_OUTSIDE * matched:
        raise ReturnError(
            f"{ret.episodes_file}: {outside} of the {matched} rows of referred children have no "
            f"day in the period {period}, so this is not its return: {_hint(ret, period)}"
        )
