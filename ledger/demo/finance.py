"""The reference contract's money (SPEC §12): investors, drawdowns, distributions, cost lines,
unit costs and the original award's baseline. Synthetic and deterministic; no real party.

Published figures reproduced (scale 1, everything effective by 2023-12-31):

- commitments 5,175,000.00 from four social investors (invented names);
- capital drawn 2,867,704.00, of which 200,000.00 in 2020 for the pandemic response (the one
  drawdown of 2020, allocated as stated to the two largest investors; the others pro rata);
- returned to investors 3,084,931.00 (drawn plus a 217,227.00 return), pro rata;
- cost lines exactly as published: delivery 4,762,802; management 1,018,871; overheads
  126,293; investment return 217,227; evaluation 138,535; SOC management 281,012 (together
  6,544,740.00, 10,678.00 more than the 6,534,062.00 of outcome payments);
- unit costs for avoided care costs;
- the original 2017 award's baseline, as a `VariationAgreed` "2017" effective on the contract's
  date with no term changes (`ContractAgreed` has no targets; see docs/finances.md).

`scale` multiplies every amount of money and every target count, exactly (unit costs are per
week and stay as they are).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

CONTRACT = "plcip"
GROUP = 6  # the ordering group of these events in demo.history()

# investor code, name (in `source`), commitment in pounds
INVESTORS = [
    ("BRIDGEWAY", "Bridgeway Social Outcomes Fund", 2_500_000),
    ("CITYTRUST", "City Social Investment Trust", 1_500_000),
    ("HEARTH", "Hearth Foundation", 875_000),
    ("KESTREL", "Kestrel Community Capital", 300_000),
]
COMMITTED_ON = date(2017, 12, 1)

# effective date, pounds, purpose, stated allocation (None: pro rata to commitments)
DRAWDOWNS: list[tuple[date, int, str, dict[str, int] | None]] = [
    (date(2018, 1, 15), 800_000, "working capital: mobilisation and first therapists", None),
    (date(2018, 7, 2), 700_000, "working capital: service delivery", None),
    (date(2019, 1, 14), 600_000, "working capital: service delivery", None),
    (date(2019, 8, 15), 567_704, "working capital: the four boroughs joining in 2019", None),
    (date(2020, 4, 20), 200_000, "pandemic response",
     {"BRIDGEWAY": 120_000, "CITYTRUST": 80_000}),
]

# effective date, pounds (pro rata to commitments)
DISTRIBUTIONS: list[tuple[date, int]] = [
    (date(2020, 9, 30), 300_000),
    (date(2021, 9, 30), 600_000),
    (date(2022, 3, 31), 500_000),
    (date(2022, 9, 30), 700_000),
    (date(2023, 3, 31), 600_000),
    (date(2023, 12, 15), 384_931),
]

# category, provider, [(effective, pounds)]: each category adds up to its published line
COSTS: list[tuple[str, str | None, list[tuple[date, int]]]] = [
    ("delivery", "PFP", [
        (date(2018, 3, 31), 180_000), (date(2019, 3, 31), 1_020_000),
        (date(2020, 3, 31), 1_310_000), (date(2021, 3, 31), 1_240_000),
        (date(2022, 3, 31), 640_000), (date(2023, 3, 31), 250_000),
        (date(2023, 12, 31), 122_802),
    ]),
    ("management", "PFP", [
        (date(2018, 3, 31), 60_000), (date(2019, 3, 31), 190_000),
        (date(2020, 3, 31), 210_000), (date(2021, 3, 31), 205_000),
        (date(2022, 3, 31), 150_000), (date(2023, 3, 31), 120_000),
        (date(2023, 12, 31), 83_871),
    ]),
    ("overheads", None, [
        (date(2018, 3, 31), 8_000), (date(2019, 3, 31), 24_000),
        (date(2020, 3, 31), 26_000), (date(2021, 3, 31), 25_000),
        (date(2022, 3, 31), 18_000), (date(2023, 3, 31), 15_000),
        (date(2023, 12, 31), 10_293),
    ]),
    # The return paid to investors above the capital drawn: the last distribution's excess.
    ("investment_return", None, [(date(2023, 12, 15), 217_227)]),
    ("evaluation", "EVAL", [
        (date(2019, 3, 31), 20_000), (date(2020, 3, 31), 25_000),
        (date(2021, 3, 31), 25_000), (date(2022, 3, 31), 25_000),
        (date(2023, 3, 31), 25_000), (date(2023, 12, 31), 18_535),
    ]),
    ("soc_management", None, [
        (date(2018, 3, 31), 15_000), (date(2019, 3, 31), 45_000),
        (date(2020, 3, 31), 50_000), (date(2021, 3, 31), 50_000),
        (date(2022, 3, 31), 45_000), (date(2023, 3, 31), 40_000),
        (date(2023, 12, 31), 36_012),
    ]),
]
PUBLISHED_COSTS = {
    "delivery": 4_762_802,
    "management": 1_018_871,
    "overheads": 126_293,
    "investment_return": 217_227,
    "evaluation": 138_535,
    "soc_management": 281_012,
}

UNIT_COSTS = {
    "effective": date(2019, 8, 1),
    "recorded": date(2019, 7, 15),
    # Weekly cost of a placement by group, and the mix of placements expected without the
    # service: children's homes, independent and in-house fostering, other (semi-independent).
    "weekly_cost": {"residential": "4200.00", "fostering_ifa": "950.00",
                    "fostering_in_house": "520.00", "other": "1600.00"},
    "placement_mix": {"residential": "0.15", "fostering_ifa": "0.45",
                      "fostering_in_house": "0.30", "other": "0.10"},
    "counterfactual_rate": "0.40",
}

# The original award (2017): 384 young people from the founding boroughs and Barking and
# Dagenham; 85% tracked (326); 75% of their 104 weeks (25,428) at 214.00 = 5,441,592.00.
ORIGINAL_TARGETS: dict[str, Any] = {
    "referrals": 384, "tracked": 326, "outcome_weeks": 25_428,
    "outcome_payments": {"low": 4_500_000, "medium": 5_441_592, "high": 6_100_000},
    "investment": 3_500_000,
    "per_borough": {"BEX": 68, "MRT": 60, "NWM": 84, "SUT": 68, "TWH": 76, "BDG": 28},
    "profile": [("2019-03-31", 130, 200_000), ("2020-03-31", 260, 1_400_000),
                ("2021-03-31", 384, 2_900_000), ("2022-03-31", 384, 4_300_000),
                ("2023-03-31", 384, 5_200_000), ("2023-12-31", 384, 5_441_592)],
}


def _pounds(amount: int, scale: int) -> str:
    return f"{amount * scale}.00"


def _event(kind: str, effective: date, recorded: date, key: str, **fields: Any) -> dict:
    return {"type": kind, "contract": CONTRACT, "effective": effective.isoformat(),
            "recorded_on": recorded.isoformat(), "key": key, **fields}


def original_award(scale: int) -> dict[str, Any]:
    t = ORIGINAL_TARGETS
    return _event(
        "VariationAgreed", date(2017, 9, 1), date(2017, 9, 1), "var-2017",
        source="original award 2017 (business case)",
        variation="2017",
        description="original award: the baseline of the 2017 award (terms as agreed)",
        term_changes={}, caps=[],
        targets={
            "referrals": t["referrals"] * scale, "tracked": t["tracked"] * scale,
            "outcome_weeks": t["outcome_weeks"] * scale,
            "outcome_payments": {k: _pounds(v, scale) for k, v in t["outcome_payments"].items()},
            "investment": _pounds(t["investment"], scale),
            "per_borough": {b: n * scale for b, n in t["per_borough"].items()},
            "profile": [{"date": d, "referrals": r * scale,
                         "outcome_payments": _pounds(p, scale)} for d, r, p in t["profile"]],
        },
    )


def finance_events(scale: int = 1) -> list[dict[str, Any]]:
    """Every money event of the demo (and the 2017 baseline), each with its recorded date."""
    events = [original_award(scale)]
    for code, name, amount in INVESTORS:
        events.append(_event(
            "InvestmentCommitted", COMMITTED_ON, COMMITTED_ON, f"commit-{code}",
            source=f"investment agreement: {name}", investor=code,
            amount=_pounds(amount, scale),
        ))
    for n, (day, amount, purpose, stated) in enumerate(DRAWDOWNS, start=1):
        fields: dict[str, Any] = {"amount": _pounds(amount, scale), "purpose": purpose}
        if stated is not None:
            fields["allocation"] = {k: _pounds(v, scale) for k, v in stated.items()}
        events.append(_event("CapitalDrawn", day, day, f"draw-{n}",
                             source="drawdown notice", **fields))
    for n, (day, amount) in enumerate(DISTRIBUTIONS, start=1):
        events.append(_event("DistributionPaid", day, day, f"distribution-{n}",
                             source="distribution notice", amount=_pounds(amount, scale)))
    for category, provider, lines in COSTS:
        for day, amount in lines:
            fields = {"category": category, "amount": _pounds(amount, scale)}
            if provider is not None:
                fields["provider"] = provider
            events.append(_event("CostIncurred", day, day + timedelta(days=30),
                                 f"cost-{category}-{day.isoformat()}",
                                 source="management accounts", **fields))
    u = UNIT_COSTS
    events.append(_event(
        "UnitCostsSet", u["effective"], u["recorded"], "unit-costs-2019",
        source="unit cost estimates at the 2019 baseline reset",
        weekly_cost=u["weekly_cost"], placement_mix=u["placement_mix"],
        counterfactual_rate=u["counterfactual_rate"],
    ))
    return events


def finance_rows(scale: int, start: int) -> list[tuple[date, int, int, dict[str, Any]]]:
    """`(recorded, group, seq, event)` rows for `demo.history`, seq counting from `start`."""
    return [
        (date.fromisoformat(e["recorded_on"]), GROUP, start + i, e)
        for i, e in enumerate(finance_events(scale))
    ]
