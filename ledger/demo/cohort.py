"""The reference contract (SPEC §12) as a deterministic synthetic history. No real person's data.

Ten London boroughs join on the published dates, the contract is varied four times, 410 young
people start family therapy between February 2018 and March 2021 and 345 of them engage long
enough to be tracked. Care episodes arrive with the boroughs' quarterly returns, some a quarter
late, some with an end date restated in a later return, a few recorded in error and retracted.

The history is calibrated, with everything known, at as_of 2023-12-31: exactly 30,533 outcome
weeks owed 6,534,062.00 (boroughs 5,160,077.00, CBO 1,373,985.00), and a share of tracked days
out of care between 88.5% and 89.5%. The same seed gives the same bytes on every run.

`scale` multiplies the cohort (and the caps with it) for benchmarks: the contract keeps its
shape, each copy of a case has its own ids, and every figure is `scale` times the original.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

CONTRACT = "plcip"
SEED = 20170901
AS_OF = date(2023, 12, 31)
TARGET_OUTCOME_WEEKS = 30_533
STARTS = 410
TRACKED = 345
TRACKING_WEEKS = 104
OFFSETS = {"MST": 17, "FFT": 11}
EXCLUDED = ("V3", "V4")

BOROUGHS = [
    # code, name, accession, award, share of referrals while a member
    ("BEX", "Bexley", date(2018, 2, 1), "original", 9),
    ("MRT", "Merton", date(2018, 2, 1), "original", 8),
    ("NWM", "Newham", date(2018, 2, 1), "original", 11),
    ("SUT", "Sutton", date(2018, 2, 1), "original", 9),
    ("TWH", "Tower Hamlets", date(2018, 2, 1), "original", 10),
    ("BDG", "Barking and Dagenham", date(2018, 9, 1), "original", 8),
    ("RIC", "Richmond", date(2019, 4, 1), "expansion", 5),
    ("KIN", "Kingston", date(2019, 4, 1), "expansion", 5),
    ("HNS", "Hounslow", date(2019, 8, 1), "expansion", 7),
    ("HRY", "Haringey", date(2019, 8, 1), "expansion", 7),
]
FOUNDING = ["BEX", "MRT", "NWM", "SUT", "TWH"]
FIRST_START = date(2018, 2, 26)
LAST_START = date(2021, 3, 31)


def _d(day: date) -> str:
    return day.isoformat()


def terms() -> dict[str, Any]:
    return {
        "price_per_week": "214.00",
        "top_up_per_week": "45.00",
        "tracking_weeks": TRACKING_WEEKS,
        "tracking_offset_weeks": dict(OFFSETS),
        "min_engagement_days": 28,
        "week_rule": "fixed_blocks",
        "excluded_legal_statuses": list(EXCLUDED),
        "excluded_placements": [],
        "age_at_referral": {"min": 10, "max": 16, "exception_max": 17},
        "referrals_close": "2021-06-30",
        "co_commissioning_fee": [
            {"from": "2018-04-01", "annual_amount": "13000.00"},
            {"from": "2021-04-01", "annual_amount": "7500.00"},
        ],
    }


def contract_events(scale: int) -> list[dict[str, Any]]:
    """The contract, its boroughs and its four variations (SPEC §12)."""
    cap = f"{5_061_888 * scale}.00"
    events: list[dict[str, Any]] = [
        {
            "type": "ContractAgreed", "contract": CONTRACT, "effective": "2017-09-01",
            "recorded_on": "2017-09-01", "key": "contract",
            "source": "original award 2017",
            "name": "Pan London Care Impact Partnership", "lead_commissioner": "SUT",
            "prime_contractor": "PFP", "top_up_funder": "CBO", "terms": terms(),
            "caps": [{"cap": "founding-five", "payer": "boroughs", "boroughs": FOUNDING,
                      "amount": cap}],
        }
    ]
    for code, name, accession, award, _ in BOROUGHS:
        events.append({
            "type": "BoroughAcceded", "contract": CONTRACT, "effective": _d(accession),
            "recorded_on": _d(accession - timedelta(days=14)), "key": f"accede-{code}",
            "borough": code, "name": name, "award": award,
        })

    def targets(referrals: int, tracked: int, weeks: int, low: int, medium: int, high: int,
                investment: int, profile: list[tuple[str, int, int]]) -> dict[str, Any]:
        return {
            "referrals": referrals * scale, "tracked": tracked * scale,
            "outcome_weeks": weeks * scale,
            "outcome_payments": {"low": f"{low * scale}.00", "medium": f"{medium * scale}.00",
                                 "high": f"{high * scale}.00"},
            "investment": f"{investment * scale}.00",
            "profile": [{"date": d, "referrals": r * scale, "outcome_payments": f"{p * scale}.00"}
                        for d, r, p in profile],
        }

    variations = [
        ("2019", "2019-08-01", "2019-07-15", "later boroughs join; baseline reset",
         {"price_per_week": "214.00"},
         targets(410, 345, 36_000, 6_000_000, 7_704_119, 8_500_000, 4_234_000,
                 [("2019-03-31", 120, 150_000), ("2020-03-31", 250, 1_500_000),
                  ("2021-03-31", 410, 3_500_000), ("2022-03-31", 410, 5_600_000),
                  ("2023-03-31", 410, 7_200_000), ("2023-12-31", 410, 7_704_119)])),
        ("2021", "2021-04-01", "2021-03-20", "awards merged; referral target revised to 384",
         {},
         targets(384, 330, 33_000, 5_800_000, 7_062_000, 7_900_000, 4_234_000,
                 [("2021-03-31", 384, 3_200_000), ("2022-03-31", 384, 5_100_000),
                  ("2023-03-31", 384, 6_600_000), ("2023-12-31", 384, 7_062_000)])),
        ("2022", "2022-04-01", "2022-03-25", "outcomes reprofiled after final referrals",
         {},
         targets(410, 345, 30_500, 6_200_000, 6_527_000, 6_900_000, 2_867_704,
                 [("2022-03-31", 410, 4_300_000), ("2023-03-31", 410, 5_900_000),
                  ("2023-12-31", 410, 6_527_000)])),
    ]
    for vid, effective, recorded, description, changes, target in variations:
        events.append({
            "type": "VariationAgreed", "contract": CONTRACT, "effective": effective,
            "recorded_on": recorded, "key": f"var-{vid}", "variation": vid,
            "description": description, "term_changes": changes, "caps": [],
            "targets": target,
        })
    return events


# --- the cohort ------------------------------------------------------------------------------


@dataclass(slots=True)
class Stay:
    start: date
    end: date | None  # first day out of care; None: still open
    legal_status: str = "C2"
    placement: str = "U1"
    late: bool = False  # arrives a return late
    misread_end: date | None = None  # first recorded end, restated later


@dataclass(slots=True)
class Case:
    case: str
    borough: str
    child_ref: str
    birth: date
    intervention: str
    referred: date
    accepted: date
    first_meeting: date
    ended: date
    end_reason: str
    stays: list[Stay] = field(default_factory=list)
    phantom: Stay | None = None  # recorded in error, retracted

    @property
    def tracked(self) -> bool:
        return (self.ended - self.first_meeting).days >= 28

    @property
    def window(self) -> tuple[date, date]:
        """Tracking start and the day after its last day."""
        start = self.first_meeting + timedelta(weeks=OFFSETS[self.intervention])
        return start, start + timedelta(weeks=TRACKING_WEEKS)


def _member_boroughs(day: date) -> list[tuple[str, int]]:
    return [(code, share) for code, _, accession, _, share in BOROUGHS
            if accession + timedelta(days=25) <= day]


def _cohort(rng: random.Random) -> list[Case]:
    span = (LAST_START - FIRST_START).days
    # Starts ramp up as boroughs join: draw days weighted by the members' shares on each day.
    days = [FIRST_START + timedelta(days=i) for i in range(span + 1)]
    weights = [sum(s for _, s in _member_boroughs(d)) for d in days]
    starts = sorted(rng.choices(days, weights=weights, k=STARTS - 2)) + [FIRST_START, LAST_START]
    starts.sort()
    not_engaged = set(rng.sample(range(STARTS), STARTS - TRACKED))
    cases = []
    for i, first in enumerate(starts):
        members = _member_boroughs(first)
        borough = rng.choices([c for c, _ in members], weights=[s for _, s in members])[0]
        intervention = "MST" if rng.random() < 0.55 else "FFT"
        accepted = first - timedelta(days=rng.randint(2, 9))
        referred = accepted - timedelta(days=rng.randint(3, 14))
        age = rng.randint(10, 16)
        birth = referred - timedelta(days=365 * age + rng.randint(30, 330))
        if i in not_engaged:
            ended, reason = first + timedelta(days=rng.randint(3, 27)), "disengaged"
        else:
            length = rng.randint(90, 150) if intervention == "MST" else rng.randint(60, 120)
            ended = first + timedelta(days=length)
            reason = rng.choices(["completed", "disengaged", "moved_away"], [85, 10, 5])[0]
        cases.append(Case(f"PLC{i + 1:04d}", borough, f"SYN-{borough}-{i + 1:05d}", birth,
                          intervention, referred, accepted, first, ended, reason))
    return cases


def _care(rng: random.Random, case: Case) -> None:
    """Stays in and around the tracking window: long stays, short ones, short breaks (V3)."""
    start, stop = case.window
    cursor = case.first_meeting + timedelta(days=rng.randint(20, 60))
    roll = rng.random()
    plan: list[tuple[int, int, str]] = []  # (gap before, length, legal status)
    if roll < 0.46:
        for _ in range(rng.choice([1, 1, 1, 2])):
            plan.append((rng.randint(30, 500), rng.randint(20, 260), "C2"))
    elif roll < 0.53:
        for _ in range(rng.randint(1, 3)):
            plan.append((rng.randint(40, 200), rng.randint(1, 12), "C2"))
    if rng.random() < 0.08:
        plan.append((rng.randint(20, 200), rng.randint(1, 3), rng.choice(EXCLUDED)))
    for gap, length, status in plan:
        s = cursor + timedelta(days=gap)
        if s >= stop + timedelta(days=200):
            break
        e = s + timedelta(days=length)
        case.stays.append(Stay(s, e, status, rng.choice(["U1", "U4", "K2", "R1"])))
        cursor = e + timedelta(days=3)
    # Some stays begin and never end: still in care at the end of the window.
    if case.stays and case.stays[-1].end and case.stays[-1].end > stop and rng.random() < 0.5:
        case.stays[-1].end = None
    _ = start


def _counted_weeks(case: Case) -> set[int]:
    """Tracking weeks (fixed blocks) with a day in a counted stay: the rule of SPEC §5."""
    start, stop = case.window
    weeks: set[int] = set()
    for stay in case.stays:
        if stay.legal_status in EXCLUDED:
            continue
        s, e = max(stay.start, start), min(stay.end or stop, stop)
        if s < e:
            weeks.update(range((s - start).days // 7, ((e - start).days - 1) // 7 + 1))
    return weeks


def _free_week(rng: random.Random, case: Case) -> int | None:
    """A tracking week with no episode of any kind in it or a day either side."""
    start, _ = case.window
    taken = _counted_weeks(case)
    for k in rng.sample(range(TRACKING_WEEKS), TRACKING_WEEKS):
        if k in taken:
            continue
        ws = start + timedelta(weeks=k)
        lo, hi = ws - timedelta(days=1), ws + timedelta(days=8)
        if all((stay.end or date.max) <= lo or stay.start >= hi for stay in case.stays):
            return k
    return None


def _calibrate(rng: random.Random, cases: list[Case]) -> None:
    """Exactly the published outcome weeks: drop long stays if over, add short stays if under."""
    tracked = [c for c in cases if c.tracked]
    target_in_care = len(tracked) * TRACKING_WEEKS - TARGET_OUTCOME_WEEKS
    in_care = sum(len(_counted_weeks(c)) for c in tracked)
    while in_care > target_in_care:
        case = rng.choice([c for c in tracked if c.stays])
        case.stays.pop(rng.randrange(len(case.stays)))
        in_care = sum(len(_counted_weeks(c)) for c in tracked)
    while in_care < target_in_care:
        case = rng.choice(tracked)
        k = _free_week(rng, case)
        if k is None:
            continue
        s = case.window[0] + timedelta(weeks=k, days=rng.randint(0, 3))
        case.stays.append(Stay(s, s + timedelta(days=rng.randint(1, 3)), "C2", "U1"))
        case.stays.sort(key=lambda st: st.start)
        in_care += 1


def _restatements(rng: random.Random, cases: list[Case]) -> None:
    """Late returns, restated end dates and episodes recorded in error — like real data."""
    for case in cases:
        for i, stay in enumerate(case.stays):
            if rng.random() < 0.10:
                stay.late = True
            if stay.end is not None and rng.random() < 0.06:
                nxt = case.stays[i + 1].start if i + 1 < len(case.stays) else date.max
                shift = rng.choice([-3, -2, -1, 1, 2, 3, 5])
                misread = stay.end + timedelta(days=shift)
                if stay.start < misread < nxt:
                    stay.misread_end = misread
        if case.tracked and rng.random() < 0.012:
            start, stop = case.window
            k = _free_week(rng, case)
            if k is not None:
                s = start + timedelta(weeks=k, days=1)
                case.phantom = Stay(s, s + timedelta(days=4), "C2", "U1")


def build_cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    cases = _cohort(rng)
    for case in cases:
        if case.tracked:
            _care(rng, case)
    _calibrate(rng, cases)
    _restatements(rng, cases)
    return cases


# --- returns: when care data becomes known ---------------------------------------------------


def quarter_end(day: date) -> date:
    month = ((day.month - 1) // 3 + 1) * 3
    nxt = date(day.year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def received(borough: str, period_end: date) -> date:
    """Each borough sends its quarterly return 40–70 days after the quarter ends."""
    lag = 40 + (sum(map(ord, borough)) * 7 + period_end.month) % 31
    return period_end + timedelta(days=lag)


def next_quarter(period_end: date) -> date:
    return quarter_end(period_end + timedelta(days=1))


LAST_RETURN = date(2023, 12, 31)


def _return_for(borough: str, day: date, late: bool = False) -> date:
    """The received date of the return that first reports `day` (a quarter later if late)."""
    period = quarter_end(day)
    if late:
        period = next_quarter(period)
    return received(borough, period)


# --- events ----------------------------------------------------------------------------------


def case_events(case: Case, copy: int) -> Iterator[tuple[date, int, dict[str, Any]]]:
    """(recorded date, ordering group, event) for one case and its care history."""
    cid = case.case if copy == 0 else f"{case.case}-{copy}"
    child = case.child_ref if copy == 0 else f"{case.child_ref}-{copy}"
    base = {"contract": CONTRACT, "case": cid}

    def life(kind: str, day: date, lag: int, **fields: Any) -> tuple[date, int, dict]:
        event = {"type": kind, **base, "effective": _d(day), "recorded_on": _d(day + timedelta(
            days=lag)), "key": f"{cid}-{kind}", **fields}
        return day + timedelta(days=lag), 1, event

    yield life("ReferralReceived", case.referred, 0, borough=case.borough, child_ref=child,
               date_of_birth=_d(case.birth), behaviours=["risk of care"], in_care=False,
               source="referral form")
    yield life("ReferralAccepted", case.accepted, 0, intervention=case.intervention,
               source="panel minutes")
    yield life("FirstFamilyMeeting", case.first_meeting, 2, source="therapist log")
    yield life("InterventionEnded", case.ended, 3, reason=case.end_reason,
               source="therapist log")

    def care(kind: str, stay: Stay, n: int, day: date, recorded: date, **fields: Any):
        event = {"type": kind, **base, "effective": _d(day), "recorded_on": _d(recorded),
                 "key": f"{cid}-ep{n}-{'start' if kind == 'CareEpisodeStarted' else 'end'}",
                 "episode": f"{cid}-{n}", "source": f"903 return {case.borough}", **fields}
        return recorded, 2, event

    known = date.min  # a stay is reported no earlier than the end of the one before it
    ends: list[tuple[date, date]] = []  # (start of stay, when its end became known)
    for n, stay in enumerate(case.stays, start=1):
        opened = max(known, _return_for(case.borough, stay.start, stay.late))
        yield care("CareEpisodeStarted", stay, n, stay.start, opened,
                   legal_status=stay.legal_status, placement=stay.placement)
        if stay.end is None:
            continue
        closed = max(opened, _return_for(case.borough, stay.end - timedelta(days=1), stay.late))
        known = closed
        ends.append((stay.start, closed))
        first_end = stay.misread_end or stay.end
        yield care("CareEpisodeEnded", stay, n, first_end, closed, reason="E11")
        if stay.misread_end is not None:
            fixed = next_quarter(quarter_end(closed))
            recorded = received(case.borough, fixed)
            yield recorded, 3, {
                "type": "EventCorrected", "contract": CONTRACT, "effective": _d(recorded),
                "recorded_on": _d(recorded), "key": f"{cid}-ep{n}-end-restated",
                "target": f"{cid}-ep{n}-end", "changes": {"effective": _d(stay.end)},
                "reason": "end date restated in a later return",
                "source": f"903 resubmission {case.borough}",
            }
    if case.phantom is not None:
        stay = case.phantom
        opened = max([_return_for(case.borough, stay.start)]
                     + [closed for began, closed in ends if began < stay.start])
        yield care("CareEpisodeStarted", stay, 99, stay.start, opened,
                   legal_status=stay.legal_status, placement=stay.placement)
        yield care("CareEpisodeEnded", stay, 99, stay.end, opened, reason="E11")  # type: ignore[arg-type]
        recorded = received(case.borough, next_quarter(quarter_end(opened)))
        for part in ("start", "end"):
            yield recorded, 3, {
                "type": "EventRetracted", "contract": CONTRACT, "effective": _d(recorded),
                "recorded_on": _d(recorded), "key": f"{cid}-ep99-{part}-retracted",
                "target": f"{cid}-ep99-{part}",
                "reason": "episode belonged to another child (matching error)",
                "source": f"903 resubmission {case.borough}",
            }


def coverage_events() -> Iterator[tuple[date, int, dict[str, Any]]]:
    """Quarterly `CareDataReceived`: each borough's data complete to the quarter's end."""
    for code, _, accession, _, _ in BOROUGHS:
        period = quarter_end(accession)
        while period <= LAST_RETURN:
            day = received(code, period)
            yield day, 4, {
                "type": "CareDataReceived", "contract": CONTRACT, "effective": _d(day),
                "recorded_on": _d(day), "key": f"cover-{code}-{_d(period)}", "borough": code,
                "covers_until": _d(period), "source": f"903 return {code} to {_d(period)}",
            }
            period = next_quarter(period)
