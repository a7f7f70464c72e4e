"""Hypothesis strategies: random, valid JSON Lines histories of one contract, as recorded.

`histories()` draws a contract like `examples/quickstart.jsonl` (price 214/45, MST 17 / FFT 11,
28 days' engagement, V3/V4 excluded), optionally a cap small enough to bind and a variation of
the price (and the cap) on some date; 1-3 boroughs acceded early; 1-6 cases per borough, each
referred (age 10-16), accepted and met, some ending the intervention (sometimes inside the
first 28 days), with 0-4 non-overlapping care episodes (some excluded by legal status, the last
sometimes open); care-data coverage per borough; and restatements: corrections of episode ends
(sometimes corrected again, or the correction retracted), retractions of whole episodes (the
start first, then the end, on the same recorded date), corrections of intervention ends and of
coverage dates.

Recorded dates are often late (weeks to a year after the effective date) and out of effective
order across cases and event kinds, sometimes with a time of day. The lines are sorted by
(recorded instant, dependency rank), an order the ledger accepts: every dependency A -> B has
recorded(A) <= recorded(B), and rank(A) < rank(B) breaks the tie. So the lines recorded on or
before any K are a prefix of the file, and a valid history in their own right.

The dependencies honoured (domain/case.py and contract.py):
- the contract and the accessions come first; a referral's borough has acceded by then;
- referral -> acceptance -> first meeting -> intervention end -> its correction;
- a case's episode events wait for its referral; episode i starts only once episode i-1's end is
  known (the aggregate reads a just-started episode as open, so it must not meet a later one);
- a correction is recorded no earlier than its target; a corrected end stays between its own
  start and the next episode's start, so no reading ever overlaps;
- an episode is retracted only once its end is known (an end arriving after its start was
  retracted would be rejected).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import strategies as st

from soc_ledger.domain.values import end_of_day

CONTRACT = "plcip"
AGREED = date(2017, 9, 1)
ACCEDED = date(2018, 2, 1)
LATEST = date(2025, 12, 31)  # no recorded date after this (the ledger refuses the future)
BOROUGHS = ("SUT", "MRT", "BEX")

TERMS: dict[str, Any] = {
    "price_per_week": "214.00",
    "top_up_per_week": "45.00",
    "tracking_weeks": 104,
    "tracking_offset_weeks": {"MST": 17, "FFT": 11},
    "min_engagement_days": 28,
    "week_rule": "fixed_blocks",
    "excluded_legal_statuses": ["V3", "V4"],
    "excluded_placements": [],
    "age_at_referral": {"min": 10, "max": 16, "exception_max": 17},
    "referrals_close": "2021-06-30",
    "co_commissioning_fee": [
        {"from": "2018-04-01", "annual_amount": "13000.00"},
        {"from": "2021-04-01", "annual_amount": "7500.00"},
    ],
}
TARGETS: dict[str, Any] = {
    "referrals": 0,
    "tracked": 0,
    "outcome_weeks": 0,
    "outcome_payments": {"low": "0.00", "medium": "0.00", "high": "0.00"},
    "investment": "0.00",
}


def plus(day: date, n: int) -> date:
    return day + timedelta(days=n)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def money(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


@dataclass(frozen=True)
class Line:
    recorded: datetime
    rank: tuple[int, int, int]
    seq: int
    text: str

    @property
    def day(self) -> date:
        return self.recorded.date()


@dataclass(frozen=True)
class History:
    """A generated history: the JSON lines in the order they are recorded."""

    lines: tuple[Line, ...] = field(repr=False)

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    @property
    def recorded_days(self) -> list[date]:
        return sorted({line.day for line in self.lines})

    @property
    def restating_days(self) -> list[date]:
        """Days on which coverage, a variation, a correction or a retraction was recorded."""
        kinds = ('"CareDataReceived"', '"VariationAgreed"', '"EventCorrected"', '"EventRetracted"')
        return sorted({line.day for line in self.lines if any(k in line.text for k in kinds)})

    def known_by(self, known_at: date) -> list[str]:
        """The lines recorded on or before `known_at` (a prefix of the file)."""
        until = end_of_day(known_at)
        return [line.text for line in self.lines if line.recorded <= until]

    def __repr__(self) -> str:  # the whole file, so a falsifying example can be replayed
        return "History(lines=[\n" + "".join(f"  {line.text!r},\n" for line in self.lines) + "])"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints an example
        printer.text(repr(self))


class _Builder:
    def __init__(self, draw) -> None:
        self.draw = draw
        self.lines: list[Line] = []

    # -- clocks -------------------------------------------------------------------------------

    def lag(self) -> int:
        """Days from the effective date to the recorded date: often prompt, often late."""
        if self.draw(st.booleans()):
            return self.draw(st.integers(0, 7))
        return self.draw(st.integers(20, 400))

    def recorded(self, effective: date, *after: datetime, lag: int | None = None) -> datetime:
        """A recorded instant `lag` days after `effective`, no earlier than any of `after`."""
        moment = midnight(min(plus(effective, self.lag() if lag is None else lag), LATEST))
        if self.draw(st.integers(0, 4)) == 0:
            moment += timedelta(hours=self.draw(st.integers(1, 23)))
        return max((moment, *after))

    # -- lines --------------------------------------------------------------------------------

    def add(
        self, type: str, effective: date, recorded: datetime, rank: tuple[int, int, int], **fields
    ) -> datetime:
        stamp = (
            recorded.date().isoformat()
            if recorded.time() == time.min
            else recorded.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        event = {
            "type": type,
            "contract": CONTRACT,
            "effective": effective.isoformat(),
            "recorded_on": stamp,
            **fields,
        }
        self.lines.append(Line(recorded, rank, len(self.lines), json.dumps(event)))
        return recorded

    def correct(
        self, target: str, recorded: datetime, rank: tuple[int, int, int], key: str, **changes
    ) -> datetime:
        return self.add(
            "EventCorrected", recorded.date(), recorded, rank, key=key, target=target,
            changes=changes, reason="restated",
        )

    def retract(self, target: str, recorded: datetime, rank: tuple[int, int, int], key: str):
        return self.add(
            "EventRetracted", recorded.date(), recorded, rank, key=key, target=target,
            reason="withdrawn",
        )

    def history(self) -> History:
        return History(tuple(sorted(self.lines, key=lambda x: (x.recorded, x.rank, x.seq))))


def _contract(b: _Builder) -> tuple[str, ...]:
    draw = b.draw
    cap_where = draw(st.sampled_from(["none", "none", "agreed", "variation", "both"]))
    cap: dict[str, Any] = {
        "cap": "cap1",
        "payer": draw(st.sampled_from(["boroughs", "CBO"])),
        # Up to 40 or 200 weeks of a borough's share (169.00): binds in many examples.
        "amount": money(draw(st.integers(0, 169 * draw(st.sampled_from([40, 200])) * 100))),
    }
    if draw(st.booleans()):
        cap["boroughs"] = draw(st.sampled_from([["SUT"], ["MRT", "BEX"], ["SUT", "MRT"]]))
    b.add(
        "ContractAgreed", AGREED, midnight(AGREED), (-3, 0, 0), key="contract",
        name="Generated contract", lead_commissioner="SUT", prime_contractor="PFP",
        top_up_funder="CBO", terms=TERMS, caps=[cap] if cap_where in ("agreed", "both") else [],
    )
    boroughs = BOROUGHS[: draw(st.integers(1, 3))]
    for borough in boroughs:
        b.add(
            "BoroughAcceded", ACCEDED, midnight(ACCEDED), (-2, 0, 0), key=f"accede-{borough}",
            borough=borough, name=borough, award="original",
        )
    if cap_where in ("variation", "both") or draw(st.booleans()):
        effective = plus(date(2018, 3, 1), draw(st.integers(0, 1200)))
        recorded = b.recorded(effective, midnight(plus(AGREED, 1)), lag=draw(st.integers(-60, 400)))
        varied = {**cap, "amount": money(draw(st.integers(0, 169 * 160 * 100)))}
        b.add(
            "VariationAgreed", effective, recorded, (-1, 0, 0), key="var", variation="v2",
            description="price changed",
            term_changes={"price_per_week": draw(st.sampled_from(["180.50", "200.00", "250.00"]))},
            caps=[varied] if cap_where in ("variation", "both") else [], targets=TARGETS,
        )
    return boroughs


def _coverage(b: _Builder, borough: str) -> None:
    draw = b.draw
    for j in range(draw(st.integers(1, 3))):
        covers = plus(date(2018, 3, 31), draw(st.integers(0, 1900)))
        recorded = b.recorded(covers, lag=draw(st.integers(1, 300)))
        key = f"cover-{borough}-{j}"
        b.add(
            "CareDataReceived", recorded.date(), recorded, (-1, 1, j), key=key, borough=borough,
            covers_until=covers.isoformat(),
        )
        restated = draw(st.sampled_from([None, None, None, None, "correct", "retract"]))
        later = b.recorded(recorded.date(), recorded, lag=draw(st.integers(0, 300)))
        if restated == "correct":
            new = plus(covers, draw(st.integers(-200, 200)))
            b.correct(key, later, (-1, 2, j), f"{key}-fix", covers_until=new.isoformat())
        elif restated == "retract":
            b.retract(key, later, (-1, 2, j), f"{key}-gone")


def _case(b: _Builder, case: str, borough: str) -> None:
    draw = b.draw
    referred = plus(ACCEDED, draw(st.integers(0, 500)))
    age = draw(st.integers(10, 16))
    born = plus(date(referred.year - age, referred.month, 1), -draw(st.integers(0, 300)))
    r_ref = b.add(
        "ReferralReceived", referred, b.recorded(referred), (0, 0, 0), key=f"{case}-ref",
        case=case, borough=borough, child_ref=f"{borough}-{case}", date_of_birth=born.isoformat(),
        behaviours=["offending"], in_care=False,
    )
    accepted = plus(referred, draw(st.integers(0, 20)))
    r_acc = b.add(
        "ReferralAccepted", accepted, b.recorded(accepted, r_ref), (0, 1, 0), key=f"{case}-acc",
        case=case, intervention=draw(st.sampled_from(["MST", "FFT"])),
    )
    met = plus(accepted, draw(st.integers(0, 30)))
    r_met = b.add(
        "FirstFamilyMeeting", met, b.recorded(met, r_acc), (0, 2, 0), key=f"{case}-ffm", case=case
    )
    ending = draw(st.sampled_from(["open", "short", "long", "long"]))
    if ending != "open":
        days = draw(st.integers(0, 27) if ending == "short" else st.integers(28, 400))
        ended = plus(met, days)
        r_end = b.add(
            "InterventionEnded", ended, b.recorded(ended, r_met), (0, 3, 0), key=f"{case}-end",
            case=case, reason=draw(st.sampled_from(["completed", "disengaged"])),
        )
        if draw(st.integers(0, 5)) == 0:
            new = plus(met, draw(st.integers(0, 60)))
            later = b.recorded(r_end.date(), r_end, lag=draw(st.integers(0, 200)))
            b.correct(f"{case}-end", later, (0, 4, 0), f"{case}-end-fix", effective=new.isoformat())

    # Care episodes: start_0 < end_0 <= start_1 < end_1 ... ; only the last may be open.
    n = draw(st.integers(0, 4))
    cursor = plus(met, draw(st.integers(-60, 200)))
    spans: list[tuple[date, date | None]] = []
    for i in range(n):
        start = plus(cursor, draw(st.integers(0, 90)) if i else 0)
        is_open = i == n - 1 and draw(st.booleans())
        end = None if is_open else plus(start, draw(st.integers(1, 150)))
        spans.append((start, end))
        if end is None:
            break
        cursor = end
    previous = r_ref  # episode i starts once episode i-1's end is known
    for i, (start, end) in enumerate(spans):
        ep = f"{case}-E{i}"
        r_start = b.add(
            "CareEpisodeStarted", start, b.recorded(start, previous), (1, i, 0),
            key=f"{ep}-start", case=case, episode=ep,
            legal_status=draw(st.sampled_from(["C2", "C2", "C2", "V3", "V4"])),
            placement=draw(st.sampled_from(["U1", "P1"])),
        )
        known = r_start
        if end is not None:
            r_end = b.add(
                "CareEpisodeEnded", end, b.recorded(end, r_start), (1, i, 1), key=f"{ep}-end",
                case=case, episode=ep, reason="E11",
            )
            known = previous = r_end
            # Any reading of the end stays in [start, next start]: never an overlap.
            upper = spans[i + 1][0] if i + 1 < len(spans) else plus(start, 300)
            new_end = st.integers(0, (upper - start).days).map(lambda d, s=start: plus(s, d))
            if draw(st.integers(0, 2)) == 0:
                fix = b.correct(
                    f"{ep}-end", b.recorded(r_end.date(), r_end), (1, i, 2), f"{ep}-fix",
                    effective=draw(new_end).isoformat(),
                )
                again = draw(st.sampled_from([None, None, "correct", "retract"]))
                if again == "correct":
                    b.correct(
                        f"{ep}-fix", b.recorded(fix.date(), fix), (1, i, 3), f"{ep}-fix-fix",
                        changes={"effective": draw(new_end).isoformat()},
                    )
                elif again == "retract":
                    b.retract(f"{ep}-fix", b.recorded(fix.date(), fix), (1, i, 4), f"{ep}-unfix")
        if draw(st.integers(0, 4)) == 0:
            # The start first, then the end, on the same recorded date.
            gone = b.recorded(known.date(), known, lag=draw(st.integers(0, 300)))
            b.retract(f"{ep}-start", gone, (1, i, 5), f"{ep}-start-gone")
            if end is not None:
                b.retract(f"{ep}-end", gone, (1, i, 6), f"{ep}-end-gone")


@st.composite
def histories(draw) -> History:
    b = _Builder(draw)
    boroughs = _contract(b)
    for borough in boroughs:
        _coverage(b, borough)
        for n in range(draw(st.integers(1, 6))):
            _case(b, f"{borough}{n}", borough)
    return b.history()


def store_settings(examples: int):
    """Hypothesis settings for properties that record into real stores (slow examples, a
    fixture's tmp_path shared by all). SOC_LEDGER_STORE_EXAMPLES=N runs N instead."""
    import os

    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get("SOC_LEDGER_STORE_EXAMPLES", str(examples))),
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# A day within the histories' span, as an `as_of`.
as_of_days = st.integers(0, 2200).map(lambda n: date(2018, 3, 1) + timedelta(days=n))


def knowledges(days: list[date], max_size: int) -> st.SearchStrategy[list[date]]:
    """Knowledge dates where answers change: each on, a day before or a day after a day
    something was recorded."""
    one = timedelta(days=1)
    around = st.sampled_from(days).flatmap(lambda d: st.sampled_from([d - one, d, d + one]))
    return st.lists(around, min_size=2, max_size=max_size)
