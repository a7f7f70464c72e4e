"""Reference contracts for the other payment mechanisms (`demo --contract essex|ttt|bucks`):
deterministic synthetic histories built from the published figures of the contracts they are
named after. No real person's data: every case, date of birth and care episode is invented.

- `bucks`: a residential contract paying a weighted `quality_bonus`; its 2015-16 area scores
  and published totals and payments are the published ones; the annual value is the £25m of
  its 5 + 3 years spread evenly (3,125,000.00 a year).
- `essex`: an edge-of-care MST contract paying `care_days_saved` against a comparison group
  that spent 55% of its days in care (target 27%), each young person tracked 30 months, outcome
  payments capped at £7.1m; 130 synthetic young people whose care share comes out near 11%;
  three invented social investors whose distributions come to 1.45x the capital drawn (the
  published multiple), with the same investor events as the PLCIP demo (SPEC §8).
- `ttt`: a contract paying `weeks_out_of_care`, `wellbeing_improvement` (an Outcomes Star
  read at the start and again 26 weeks on) and `reunification`, 48 synthetic young people on
  the edge of care and 12 referred in care.

The Essex and Bucks payers are claimed on account after each year end, for what they owed then
as known 50 days on (computed with the domain's rules, as a provider would), and pay 30 days
later.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from soc_ledger.domain.events import CASE_EVENTS, EVENT_ADAPTER
from soc_ledger.domain.knowledge import KnownAt, Recorded, known_facts
from soc_ledger.domain.mechanisms.payments import payments
from soc_ledger.domain.outcomes.facts import contract_from_facts
from soc_ledger.domain.values import money, parse_instant

Event = dict[str, Any]

AS_OF = {"bucks": date(2016, 6, 30), "essex": date(2019, 6, 30), "ttt": date(2022, 3, 31)}


def _d(day: date) -> str:
    return day.isoformat()


def _weeks_terms(**changes: Any) -> dict[str, Any]:
    """SPEC §3's weeks terms (every contract carries them; a contract not paying by
    `weeks_out_of_care` reads only its engagement and exclusions from them)."""
    terms = {
        "price_per_week": "0.00",
        "top_up_per_week": "0.00",
        "tracking_weeks": 104,
        "tracking_offset_weeks": {"MST": 0, "FFT": 0},
        "min_engagement_days": 28,
        "week_rule": "fixed_blocks",
        "excluded_legal_statuses": ["V3", "V4"],
        "excluded_placements": [],
        "age_at_referral": {"min": 10, "max": 17},
        "referrals_close": "2030-03-31",
        "co_commissioning_fee": [],
    }
    terms.update(changes)
    return terms


# --- Bucks: quality bonus -----------------------------------------------------------------

BUCKS_WEIGHTS = {
    "home": 20,
    "school": 20,
    "outcomes_homes": 30,
    "outcomes_college": 20,
    "attendance": 10,
}
# Published 2015-16 scores by area, quarter by quarter, then the published totals and payments.
BUCKS_SCORES = {
    "home": (73, 67, 80, 80),
    "school": (60, 60, 76, 80),
    "outcomes_homes": (80, 80, 80, 84),
    "outcomes_college": (64, 64, 68, 72),
    "attendance": (80, 83, 85, 85),
}
BUCKS_PUBLISHED_TOTALS = (72, 70, 77, 80)
BUCKS_PUBLISHED_PAYMENTS = (0, 0, 0, 1)
BUCKS_QUARTERS = (date(2015, 6, 30), date(2015, 9, 30), date(2015, 12, 31), date(2016, 3, 31))
# "Very high" bands: nothing below 80%; 1% from 80%, 1.5% from 85%, 2% from 90%.
BUCKS_BANDS = [
    {"from": "0", "payment": "0"},
    {"from": "80", "payment": "1"},
    {"from": "85", "payment": "1.5"},
    {"from": "90", "payment": "2"},
]
BUCKS_ANNUAL_VALUE = "3125000.00"  # £25m over 5 + 3 years


def bucks() -> Iterator[Event]:
    base = {"contract": "bucks"}
    yield {
        "type": "ContractAgreed", **base, "effective": "2014-04-01", "recorded_on": "2014-04-01",
        "key": "contract", "name": "Cross-regional residential placements (quality bonus)",
        "lead_commissioner": "BUC", "prime_contractor": "PRV", "top_up_funder": "BUC",
        "terms": _weeks_terms(
            mechanism=["quality_bonus"],
            quality_bonus={
                "weights": {a: str(w) for a, w in BUCKS_WEIGHTS.items()},
                "bands": BUCKS_BANDS,
                "annual_value": BUCKS_ANNUAL_VALUE,
                "max_percent_per_year": "2",
                "max_per_year": "60000.00",
            },
        ),
        "caps": [],
    }  # fmt: skip
    for q, quarter_end in enumerate(BUCKS_QUARTERS):
        scored = quarter_end + timedelta(days=30)
        for area, scores in BUCKS_SCORES.items():
            yield {
                "type": "QualityScored", **base, "effective": _d(scored),
                "recorded_on": _d(scored), "key": f"score-{_d(quarter_end)}-{area}",
                "area": area, "quarter_end": _d(quarter_end), "score": str(scores[q]),
            }  # fmt: skip
        published = scored + timedelta(days=14)
        yield {
            "type": "QualityPublished", **base, "effective": _d(published),
            "recorded_on": _d(published), "key": f"published-{_d(quarter_end)}",
            "quarter_end": _d(quarter_end), "weighted_total": str(BUCKS_PUBLISHED_TOTALS[q]),
            "payment": str(BUCKS_PUBLISHED_PAYMENTS[q]),
            "source": "published 2015-16 quality scores",
        }  # fmt: skip


# --- shared: a synthetic cohort ---------------------------------------------------------


def _cohort(
    contract: str,
    borough: str,
    seed: int,
    count: int,
    first_referral: date,
    referral_days: int,
    care_chance: float,
    stay_days: tuple[int, int],
    window_days: int,
) -> Iterator[tuple[date, Event]]:
    """Referral, acceptance, first meeting, end and care stays of `count` young people."""
    rng = random.Random(seed)
    base = {"contract": contract}
    for n in range(1, count + 1):
        case = f"{borough}{n:03d}"
        referred = first_referral + timedelta(days=rng.randrange(referral_days))
        birth = referred - timedelta(days=365 * rng.randint(11, 16) + rng.randrange(300))
        first = referred + timedelta(days=rng.randint(7, 21))
        ended = first + timedelta(days=rng.randint(120, 180))
        lifecycle = [
            ("ReferralReceived", referred, {
                "borough": borough, "child_ref": f"{borough}-{n:06d}",
                "date_of_birth": _d(birth), "behaviours": ["risk of care"], "in_care": False,
            }),
            ("ReferralAccepted", referred + timedelta(days=2), {"intervention": "MST"}),
            ("FirstFamilyMeeting", first, {}),
            ("InterventionEnded", ended, {"reason": "completed"}),
        ]  # fmt: skip
        for step, (kind, day, fields) in enumerate(lifecycle):
            yield day, {
                "type": kind, **base, "effective": _d(day), "recorded_on": _d(day),
                "key": f"{case}-{step}", "case": case, **fields,
            }  # fmt: skip
        if rng.random() < care_chance:
            length = rng.randint(*stay_days)
            start = first + timedelta(days=rng.randrange(max(window_days - length, 1)))
            end = start + timedelta(days=length)
            for kind, day, fields in (
                ("CareEpisodeStarted", start, {"legal_status": "C2", "placement": "U1"}),
                ("CareEpisodeEnded", end, {"reason": "E11"}),
            ):
                # Care data arrives with the next quarterly return.
                known = _quarter_end(day) + timedelta(days=45)
                yield known, {
                    "type": kind, **base, "effective": _d(day), "recorded_on": _d(known),
                    "key": f"{case}-{kind}", "case": case, "episode": f"{case}-E1", **fields,
                }  # fmt: skip


def _quarter_end(day: date) -> date:
    month = ((day.month - 1) // 3 + 1) * 3
    following = date(day.year + (month == 12), month % 12 + 1, 1)
    return following - timedelta(days=1)


def _coverage(contract: str, borough: str, first: date, last: date) -> Iterator[tuple[date, Event]]:
    """A return each quarter: the borough's care data complete to the quarter's end."""
    quarter = _quarter_end(first)
    while quarter <= last:
        received = quarter + timedelta(days=45)
        yield received, {
            "type": "CareDataReceived", "contract": contract, "effective": _d(received),
            "recorded_on": _d(received), "key": f"care-data-{_d(quarter)}",
            "borough": borough, "covers_until": _d(quarter),
        }  # fmt: skip
        quarter = _quarter_end(quarter + timedelta(days=1))


def _in_order(rows: list[tuple[date, Event]]) -> list[Event]:
    # Stable: events of one day keep their order (a start before its end, a case's lifecycle).
    return [
        event
        for _, event in sorted(rows, key=lambda row: (row[0], row[1]["type"] == "CareEpisodeEnded"))
    ]


# --- Essex: care days saved -------------------------------------------------------------

ESSEX_CAP = "7100000.00"

# Investor code, name (in `source`), commitment in pounds: 3:2:1, so that every drawdown and
# distribution below (each a multiple of 6,000) is shared pro rata in whole pounds and each
# investor's multiple is the contract's.
ESSEX_INVESTORS = [
    ("BLACKWATER", "Blackwater Social Outcomes Fund", 1_500_000),
    ("COLNE", "Colne Valley Social Investment Trust", 1_000_000),
    ("DENGIE", "Dengie Community Capital", 500_000),
]
# Capital drawn before the outcome payments came in (2,400,000.00, 80% of the commitments) ...
ESSEX_DRAWDOWNS = [
    (date(2013, 3, 1), 600_000, "working capital: mobilisation and the first MST team"),
    (date(2013, 9, 2), 600_000, "working capital: service delivery"),
    (date(2014, 3, 3), 600_000, "working capital: service delivery"),
    (date(2014, 9, 1), 360_000, "working capital: service delivery"),
    (date(2015, 3, 2), 240_000, "working capital: the last referrals"),
]
# ... and distributed each autumn after the June outcome payments, never more than received
# by then: 3,480,000.00 = 1.45 x 2,400,000.00.
ESSEX_DISTRIBUTIONS = [
    (date(2015, 9, 30), 360_000),
    (date(2016, 9, 30), 900_000),
    (date(2017, 9, 29), 1_020_000),
    (date(2018, 9, 28), 1_200_000),
]


def _essex_investors() -> Iterator[tuple[date, Event]]:
    """Commitments on the contract's day, then drawdowns and distributions pro rata."""
    base = {"contract": "essex"}
    agreed = date(2013, 2, 1)
    for code, name, amount in ESSEX_INVESTORS:
        yield agreed, {
            "type": "InvestmentCommitted", **base, "effective": _d(agreed),
            "recorded_on": _d(agreed), "key": f"commit-{code}",
            "source": f"investment agreement: {name}", "investor": code, "amount": f"{amount}.00",
        }  # fmt: skip
    for n, (day, amount, purpose) in enumerate(ESSEX_DRAWDOWNS, start=1):
        yield day, {
            "type": "CapitalDrawn", **base, "effective": _d(day), "recorded_on": _d(day),
            "key": f"draw-{n}", "source": "drawdown notice", "amount": f"{amount}.00",
            "purpose": purpose,
        }  # fmt: skip
    for n, (day, amount) in enumerate(ESSEX_DISTRIBUTIONS, start=1):
        yield day, {
            "type": "DistributionPaid", **base, "effective": _d(day), "recorded_on": _d(day),
            "key": f"distribution-{n}", "source": "distribution notice", "amount": f"{amount}.00",
        }  # fmt: skip


def essex() -> list[Event]:
    base = {"contract": "essex"}
    rows: list[tuple[date, Event]] = [
        (date(2013, 2, 1), {
            "type": "ContractAgreed", **base, "effective": "2013-02-01",
            "recorded_on": "2013-02-01", "key": "contract",
            "name": "Edge-of-care MST (care days saved)", "lead_commissioner": "ESX",
            "prime_contractor": "AFC", "top_up_funder": "ESX",
            "terms": _weeks_terms(
                mechanism=["care_days_saved"],
                care_days_saved={
                    "price_per_day": "140.00", "comparison_care_share": "0.55",
                    "target_care_share": "0.27", "tracking_months": 30,
                },
            ),
            "caps": [{"cap": "outcome-payments", "payer": "boroughs", "amount": ESSEX_CAP}],
        }),
        (date(2013, 2, 1), {
            "type": "BoroughAcceded", **base, "effective": "2013-02-01",
            "recorded_on": "2013-02-01", "key": "accede-ESX", "borough": "ESX",
            "name": "Essex", "award": "original",
        }),
    ]  # fmt: skip
    rows += _cohort("essex", "ESX", 20130201, 130, date(2013, 4, 1), 3 * 365, 0.3, (100, 560), 913)
    rows += _coverage("essex", "ESX", date(2013, 4, 1), date(2019, 3, 31))
    rows += _essex_investors()
    return _in_order(rows)


# --- Turning the Tide: weeks out of care and a wellbeing measure ---------------------------


def ttt() -> list[Event]:
    base = {"contract": "ttt"}
    rows: list[tuple[date, Event]] = [
        (date(2019, 4, 1), {
            "type": "ContractAgreed", **base, "effective": "2019-04-01",
            "recorded_on": "2019-04-01", "key": "contract",
            "name": "Turning the Tide (care outcome and wellbeing)", "lead_commissioner": "NSM",
            "prime_contractor": "TTT", "top_up_funder": "NSM",
            "terms": _weeks_terms(
                price_per_week="150.00",
                tracking_weeks=78,
                tracking_offset_weeks={"MST": 12, "FFT": 12},
                mechanism=["weeks_out_of_care", "wellbeing_improvement", "reunification"],
                reunification={
                    "price_per_return": "5000.00", "stay_home_weeks": 26, "min_referrals": 15,
                },
                wellbeing_improvement={
                    "measure": "outcomes_star", "price_per_improvement": "1000.00",
                    "min_improvement": "10", "min_weeks_between": 12,
                },
            ),
            "caps": [],
        }),
        (date(2019, 4, 1), {
            "type": "BoroughAcceded", **base, "effective": "2019-04-01",
            "recorded_on": "2019-04-01", "key": "accede-NSM", "borough": "NSM",
            "name": "North Somerset", "award": "original",
        }),
    ]  # fmt: skip
    cohort = list(_cohort("ttt", "NSM", 20190401, 48, date(2019, 5, 1), 365, 0.25, (30, 200), 546))
    rows += cohort
    rng = random.Random(2019)
    for _, event in cohort:
        if event["type"] != "FirstFamilyMeeting":
            continue
        first = date.fromisoformat(event["effective"])
        case = event["case"]
        start = rng.randint(25, 55)
        for step, (day, score) in enumerate(
            (
                (first + timedelta(days=7), start),
                (first + timedelta(weeks=26), start + rng.randint(-5, 25)),
            )
        ):
            rows.append((day, {
                "type": "WellbeingMeasured", **base, "effective": _d(day), "recorded_on": _d(day),
                "key": f"{case}-star-{step}", "case": case, "measure": "outcomes_star",
                "score": str(max(0, min(100, score))),
            }))  # fmt: skip
    rows += _reunification_cohort(random.Random(20190402), 12)
    rows += _coverage("ttt", "NSM", date(2019, 4, 1), date(2021, 12, 31))
    return _in_order(rows)


def _reunification_cohort(rng: random.Random, count: int) -> list[tuple[date, Event]]:
    """Young people referred while in care: each in care from before the referral, home some
    weeks after the first meeting, and one in four back in care within half a year."""
    base = {"contract": "ttt"}
    rows: list[tuple[date, Event]] = []
    for n in range(1, count + 1):
        case = f"NSMR{n:02d}"
        referred = date(2019, 6, 1) + timedelta(days=rng.randrange(300))
        birth = referred - timedelta(days=365 * rng.randint(11, 15) + rng.randrange(300))
        first = referred + timedelta(days=rng.randint(7, 21))
        home = first + timedelta(weeks=rng.randint(4, 20))
        lifecycle = [
            ("ReferralReceived", referred, {
                "borough": "NSM", "child_ref": f"NSM-R{n:05d}", "date_of_birth": _d(birth),
                "behaviours": ["in care"], "in_care": True,
            }),
            ("ReferralAccepted", referred + timedelta(days=2), {"intervention": "MST"}),
            ("FirstFamilyMeeting", first, {}),
            ("InterventionEnded", first + timedelta(days=rng.randint(120, 180)),
             {"reason": "completed"}),
        ]  # fmt: skip
        for step, (kind, day, fields) in enumerate(lifecycle):
            rows.append((day, {
                "type": kind, **base, "effective": _d(day), "recorded_on": _d(day),
                "key": f"{case}-{step}", "case": case, **fields,
            }))  # fmt: skip
        stays = [(referred - timedelta(days=rng.randint(60, 400)), home)]
        if rng.random() < 0.25:
            again = home + timedelta(weeks=rng.randint(3, 20))
            stays.append((again, again + timedelta(days=rng.randint(20, 90))))
        for e, (start, end) in enumerate(stays, start=1):
            for kind, day, fields in (
                ("CareEpisodeStarted", start, {"legal_status": "C2", "placement": "U1"}),
                ("CareEpisodeEnded", end, {"reason": "E11"}),
            ):
                known = max(_quarter_end(day), referred) + timedelta(days=45)
                rows.append((known, {
                    "type": kind, **base, "effective": _d(day), "recorded_on": _d(known),
                    "key": f"{case}-E{e}-{kind}", "case": case, "episode": f"{case}-E{e}",
                    **fields,
                }))  # fmt: skip
    return rows


# --- claims on account, computed from what was known when each was made -----------------------


def _records(events: list[Event]) -> list[Recorded]:
    """The events as the ledger would hold them (no corrections in these histories)."""
    kept: list[Recorded] = []
    versions: dict[str, int] = {}
    for data in events:
        case = data.get("case") if data["type"] in CASE_EVENTS else None
        stream = f"{data['contract']}/{case}" if case else data["contract"]
        versions[stream] = versions.get(stream, 0) + 1
        moment = parse_instant(data["recorded_on"])
        event = EVENT_ADAPTER.validate_python(data)
        kept.append(Recorded(len(kept) + 1, stream, versions[stream], moment, moment, event))
    return kept


def _claims(events: list[Event], payer: str, period_ends: list[date]) -> list[Event]:
    """A claim after each period end for what the payer owed by then, as known 50 days on,
    less what was claimed before; paid in full 30 days after it was made."""
    contract = events[0]["contract"]
    records = _records(events)
    claimed = Decimal("0.00")
    out: list[Event] = []
    for end in period_ends:
        made = end + timedelta(days=50)
        facts = known_facts(records, KnownAt.on(made))
        owed = payments(contract_from_facts(contract, facts), facts, end).payers
        due = next((p.owed for p in owed if p.payer == payer), Decimal("0.00"))
        if due <= claimed:
            continue
        claim, amount = f"{payer}-{_d(end)}", money(due - claimed)
        claimed = due
        paid = made + timedelta(days=30)
        out += [
            {
                "type": "ClaimSubmitted", "contract": contract, "effective": _d(made),
                "recorded_on": _d(made), "key": f"claim-{claim}", "claim": claim,
                "payer": payer, "period_end": _d(end),
                "lines": [{"case": f"to-{_d(end)}", "weeks": 0, "amount": amount}],
            },
            {
                "type": "PaymentReceived", "contract": contract, "effective": _d(paid),
                "recorded_on": _d(paid), "key": f"paid-{claim}", "claim": claim,
                "payer": payer, "amount": amount,
            },
        ]  # fmt: skip
    return out


def _with_claims(events: list[Event], payer: str, period_ends: list[date]) -> list[Event]:
    rows = [(date.fromisoformat(e["recorded_on"]), e) for e in events]
    rows += [(date.fromisoformat(e["recorded_on"]), e) for e in _claims(events, payer, period_ends)]
    return [event for _, event in sorted(rows, key=lambda row: row[0])]


def _years(first: int, last: int) -> list[date]:
    return [date(year, 3, 31) for year in range(first, last + 1)]


HISTORIES = {
    "bucks": lambda: _with_claims(list(bucks()), "BUC", [date(2016, 3, 31)]),
    "essex": lambda: _with_claims(essex(), "ESX", _years(2014, 2019)),
    "ttt": ttt,
}
