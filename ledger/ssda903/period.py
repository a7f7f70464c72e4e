"""The period an SSDA903 return speaks for, and the error that stops an import as a whole.

A return is a borough's statement about one period: for every referred child, the days of that
period on which they were looked after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from soc_ledger.domain.errors import LedgerError

ONE_DAY = timedelta(days=1)


class ReturnError(LedgerError):
    """The import as a whole cannot go ahead (period, received date, contract); one line."""


@dataclass(frozen=True, slots=True)
class Period:
    """The days a return speaks for: `start` to `end`, both included."""

    start: date
    end: date

    @classmethod
    def of(
        cls, end: date | None = None, year: int | None = None, start: date | None = None
    ) -> Period:
        """`end` (or 31 March of `year`); `start` by default the day after `end` a year earlier."""
        if year is not None:
            if not 1900 <= year <= 9998:
                raise ReturnError(f"--year {year} is not a collection year")
            by_year = date(year, 3, 31)
            if end is not None and end != by_year:
                raise ReturnError(
                    f"--year {year} means a period ending {by_year}, but --period-end is {end}"
                )
            end = by_year
        if end is None:
            raise ReturnError("give --period-end (or --year for a collection year to 31 March)")
        if start is None:
            start = _a_year_before(end) + ONE_DAY
        if start > end:
            raise ReturnError(f"the period starts on {start}, after it ends on {end}")
        return cls(start, end)

    @property
    def stop(self) -> date:
        """The first day after the period (the exclusive end of its clipped episodes)."""
        return self.end + ONE_DAY

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end

    def __str__(self) -> str:
        return f"{self.start} to {self.end}"


def _a_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return date(day.year - 1, 2, 28)
