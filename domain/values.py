"""Value types shared by every event: exact money, strict ISO dates, codes, bounded counts.

Validation happens here, once, at the boundary: a value that passes is exact (no binary
float ever reaches a Decimal) and a value that fails names what would have been right.
Numbers are read strictly: ASCII digits only (no `_`, no other script's digits), no string
read as a number or a flag, and every integer within `MAX_INTEGER`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints

PENNY = Decimal("0.01")
# The largest integer every reader of the stored JSON holds exactly: orjson, both stores, and
# a JavaScript or jq reader that reads numbers as doubles (2^53 - 1).
MAX_INTEGER = 2**53 - 1
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_YEAR_MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")
# A number written as a string: ASCII digits, an optional fraction and exponent (how `str`
# writes a Decimal, so a stored number reads back); no `_`, no sign but minus, no spaces.
_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_PENNIES = re.compile(r"[0-9]{1,18}\.[0-9]{2}")  # money as stored: at most 18 digits of pounds
# Characters that reorder text as displayed (Trojan Source): an id or a report line could show
# something other than what is stored.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f" + "".join(sorted(BIDI_CONTROLS)) + "]")


def parse_iso_date(value: Any) -> date:
    """A date written exactly `YYYY-MM-DD`; nothing else is a date here."""
    if isinstance(value, datetime):
        raise ValueError("expected a date YYYY-MM-DD, not a date and time")
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a real calendar date") from None


def parse_instant(value: Any) -> datetime:
    """`recorded_on`: an ISO date (midnight UTC) or a UTC date and time."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time.min)
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        dt = datetime.combine(parse_iso_date(value), time.min)
    elif isinstance(value, str) and value.isascii():
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO date or UTC date and time, got {value!r}") from None
    else:
        raise ValueError(f"expected an ISO date or UTC date and time, got {value!r}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    if dt.utcoffset() != timedelta(0):
        raise ValueError(f"{value!r} is not in UTC; write it with Z or +00:00")
    return dt.astimezone(UTC)


def parse_money(value: Any) -> Decimal:
    """Pounds and pence, exact: a JSON string or number, never negative, at most 2 places."""
    if type(value) is str and _PENNIES.fullmatch(value):
        # The form every stored amount takes ("169.00"): already within every check below,
        # and read as they would leave it (a claim lists one per case: tens of thousands).
        return Decimal(value)
    amount = _parse_decimal(value, "an amount of money")
    if amount < 0:
        raise ValueError(f"money cannot be negative, got {value!r}")
    if amount.adjusted() > 20:  # beyond any contract, and beyond exact pence in 28 digits
        raise ValueError(f"money is too large to be an amount, got {value!r}")
    if amount != amount.quantize(PENNY):
        raise ValueError(f"money has at most two decimal places, got {value!r}")
    return amount.quantize(PENNY)


def parse_share(value: Any) -> Decimal:
    """A fraction between 0 and 1 inclusive, exact."""
    share = _parse_decimal(value, "a share between 0 and 1")
    if not 0 <= share <= 1:
        raise ValueError(f"a share is between 0 and 1, got {value!r}")
    return share


def parse_percent(value: Any) -> Decimal:
    """A percentage between 0 and 100 inclusive, exact ("72.5" is 72.5%)."""
    percent = _parse_decimal(value, "a percentage between 0 and 100")
    if not 0 <= percent <= 100:
        raise ValueError(f"a percentage is between 0 and 100, got {value!r}")
    return percent


def parse_number(value: Any) -> Decimal:
    """Any exact number (an audited figure: money or a count)."""
    number = _parse_decimal(value, "a number")
    if number.adjusted() > 20:  # as for money: beyond any figure a ledger computes
        raise ValueError(f"the number is too large to be a figure, got {value!r}")
    return number


def _parse_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        # A float has already lost exactness; JSON input is parsed with Decimal.
        raise ValueError(f"expected {what} written exactly, got {value!r}")
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"expected {what}, got {value!r}") from None
    elif isinstance(value, str):
        raise ValueError(
            f"expected {what} written with ASCII digits and an optional decimal point "
            f"(no spaces, no '_', no '+'), got {value!r}"
        )
    else:
        raise ValueError(f"expected {what}, got {value!r}")
    if not amount.is_finite():
        raise ValueError(f"expected {what}, got {value!r}")
    return amount


def parse_birth_date(value: Any) -> str:
    """A full birth date on input; only `YYYY-MM` is ever stored (SPEC §11)."""
    if not isinstance(value, str) or not _YEAR_MONTH.fullmatch(value):
        raise ValueError(f"expected a date of birth YYYY-MM-DD, got {value!r}")
    probe = value if len(value) == 10 else value + "-01"
    parse_iso_date(probe)
    return value


def check_code(value: str) -> str:
    """An id or code: printable, so what a report shows is what is stored."""
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        kind = "a bidi control" if bad in BIDI_CONTROLS else "a control or invisible character"
        raise ValueError(f"an id or code must be printable; it holds {kind} (U+{ord(bad):04X})")
    return value


def check_text(value: str) -> str:
    """Free text: any line breaks and tabs, but no other control character and no bidi
    control (a reason or name could otherwise display as something it does not say)."""
    found = _NOT_IN_TEXT.search(value)
    if found is not None:
        c = found.group()
        kind = "a bidi control" if c in BIDI_CONTROLS else "a control character"
        raise ValueError(f"text may not hold {kind} (U+{ord(c):04X})")
    return value


def _money_str(amount: Decimal) -> str:
    return f"{amount:.2f}"


IsoDate = Annotated[date, BeforeValidator(parse_iso_date)]
Instant = Annotated[datetime, BeforeValidator(parse_instant)]
Money = Annotated[Decimal, BeforeValidator(parse_money), PlainSerializer(_money_str)]
Share = Annotated[Decimal, BeforeValidator(parse_share), PlainSerializer(str)]
Number = Annotated[Decimal, BeforeValidator(parse_number), PlainSerializer(str)]
Percent = Annotated[Decimal, BeforeValidator(parse_percent), PlainSerializer(str)]
BirthDate = Annotated[str, BeforeValidator(parse_birth_date)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(check_code)]
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(check_text)]
Count = Annotated[int, Field(ge=0, le=MAX_INTEGER)]


def money(value: Decimal | int | str) -> str:
    """Money as the JSON interface writes it: a string with two decimals."""
    if not value:  # zero as it is: -0 equals 0 but writes "-0.00", so it is not remembered
        return f"{Decimal(value).quantize(PENNY):.2f}"
    return _money(value)


@lru_cache(maxsize=65536)
def _money(value: Decimal | int | str) -> str:
    # Remembered: a report of 34,500 cases writes half a million amounts of a few hundred
    # values, and equal non-zero amounts write alike.
    return f"{Decimal(value).quantize(PENNY):.2f}"


def end_of_day(day: date) -> datetime:
    """`known_at` D means everything recorded on or before day D (UTC)."""
    return datetime.combine(day, time.max, tzinfo=UTC)
