"""The interval engine agrees exactly with a naive day-by-day reference on random histories.

Random contracts (tracking length and offsets, engagement threshold, exclusions, a price and
exclusion variation on a random day, up to two caps defined at the start, by the variation, or
both) and random cases (first meeting, intervention end, care spells with excluded legal
statuses and placements, touching spells, an open last spell, some corrected or retracted
later), random care-data coverage per borough, a random `as_of` and a random `known_at`. For
each rule, every case's weeks by status, money (owed, provisional, capped, by payer share) and
days must be identical in `soc_ledger.projections` and `tests/naive_reference.py`.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import liability
from tests.naive_reference import naive_liability
from tests.outcome_builders import History, days

BASE = date(2019, 1, 7)
BOROUGHS = ("A", "B")
RESTATED = date(2019, 3, 1)  # corrections and retractions are recorded from here on


def money(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


caps = st.fixed_dictionaries(
    {
        "payer": st.sampled_from(["boroughs", "CBO", "A"]),
        "boroughs": st.sampled_from([None, ["A"], ["B"], ["A", "B"]]),
        "amount": st.integers(0, 400_000).map(money),
        "where": st.sampled_from(["agreed", "variation", "both"]),
        "amount_2": st.integers(0, 400_000).map(money),
    }
)


@st.composite
def histories(draw) -> tuple[History, date, date | None]:
    h = History()
    price = draw(st.integers(10_000, 30_000))
    cap_specs = draw(st.lists(caps, max_size=2))
    agreed_caps, varied_caps = [], []
    for i, spec in enumerate(cap_specs):
        cap = {"cap": f"cap{i}", "payer": spec["payer"], "amount": spec["amount"]}
        if spec["boroughs"] is not None:
            cap["boroughs"] = spec["boroughs"]
        if spec["where"] in ("agreed", "both"):
            agreed_caps.append(cap)
        if spec["where"] in ("variation", "both"):
            varied_caps.append({**cap, "amount": spec["amount_2"]})
    h.agree(
        caps=agreed_caps,
        price_per_week=money(price),
        top_up_per_week=money(draw(st.integers(0, price))),
        tracking_weeks=draw(st.integers(1, 16)),
        tracking_offset_weeks={"MST": draw(st.integers(0, 3)), "FFT": draw(st.integers(0, 3))},
        min_engagement_days=draw(st.sampled_from([0, 7, 28])),
        week_rule=draw(st.sampled_from(["fixed_blocks", "consecutive_runs"])),
        excluded_legal_statuses=draw(st.sampled_from([["V3", "V4"], ["V3"], []])),
        excluded_placements=draw(st.sampled_from([[], ["P1"]])),
    )
    for borough in BOROUGHS:
        h.accede(borough)
    if varied_caps or draw(st.booleans()):
        new_price = draw(st.integers(10_000, 30_000))
        changes = {
            "price_per_week": money(new_price),
            "top_up_per_week": money(draw(st.integers(0, new_price))),
        }
        if draw(st.booleans()):
            changes["excluded_legal_statuses"] = draw(st.sampled_from([["V4"], ["V3", "C2"]]))
        if draw(st.booleans()):
            changes["excluded_placements"] = draw(st.sampled_from([[], ["P1"], ["R1"]]))
        h.vary("v", days(BASE, draw(st.integers(0, 220))), caps=varied_caps, **changes)

    for n in range(draw(st.integers(1, 3))):
        case = f"C{n}"
        first = days(BASE, draw(st.integers(0, 40)))
        ended = draw(st.none() | st.integers(0, 60).map(lambda d, f=first: days(f, d)))
        h.case(
            case,
            first,
            borough=draw(st.sampled_from(BOROUGHS)),
            intervention=draw(st.sampled_from(["MST", "FFT"])),
            ended=ended,
        )
        cursor = days(first, draw(st.integers(-20, 60)))
        spells = draw(st.integers(0, 4))
        for i in range(spells):
            cursor = days(cursor, draw(st.integers(0, 30)))  # 0: touches the previous stay
            length = draw(st.integers(1, 25))
            is_open = i == spells - 1 and draw(st.booleans())
            end = None if is_open else days(cursor, length)
            started, ended_record = h.episode(
                case,
                f"E{i}",
                cursor,
                end,
                legal_status=draw(st.sampled_from(["C2", "C2", "V3", "V4", "E1"])),
                placement=draw(st.sampled_from(["U1", "P1", "R1"])),
            )
            restated = draw(st.sampled_from([None, None, "retract", "legal_status", "end"]))
            recorded = days(RESTATED, draw(st.integers(0, 60)))
            if restated == "retract":
                h.retract(started, recorded)
            elif restated == "legal_status":
                h.correct(started, recorded, legal_status=draw(st.sampled_from(["C2", "V3"])))
            elif restated == "end" and ended_record is not None:
                new_end = days(cursor, draw(st.integers(1, 25)))
                h.correct(ended_record, recorded, effective=str(new_end))
            if end is None:
                break
            cursor = end
    for borough in BOROUGHS:
        covers = draw(st.none() | st.integers(0, 250))
        if covers is not None:
            h.coverage(borough, days(BASE, covers))
    known_at = draw(st.none() | st.integers(0, 60).map(lambda d: days(RESTATED, d)))
    return h, days(BASE, draw(st.integers(0, 250))), known_at


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_engine_agrees_with_the_naive_day_by_day_reference(scenario):
    h, as_of, known_at = scenario
    facts = h.facts(known_at)
    contract = contract_from_facts(h.contract, facts)
    cases = cases_from_facts(facts, h.contract)
    coverage = coverage_from_facts(facts, h.contract)
    for rule in (None, "fixed_blocks", "consecutive_runs"):
        engine = liability(contract, cases, coverage, as_of, rule)
        naive = naive_liability(facts, h.contract, as_of, rule)
        assert sorted(c.case for c in engine.cases) == sorted(naive), rule
        for summary in engine.cases:
            expected = naive[summary.case]
            got = {
                "weeks": summary.weeks.as_dict(),
                "owed_borough": summary.owed_borough,
                "owed_top_up": summary.owed_top_up,
                "provisional_borough": summary.provisional_borough,
                "provisional_top_up": summary.provisional_top_up,
                "capped_borough": summary.capped_borough,
                "capped_top_up": summary.capped_top_up,
                "days_in_care": summary.days_in_care,
                "days_out_of_care": summary.days_out_of_care,
            }
            assert got == {k: getattr(expected, k) for k in got}, (rule, summary.case)
        _check_invariants(engine)


def _check_invariants(result) -> None:
    """What holds whatever the rule: totals add up, fixed blocks partition the window."""
    owed = sum((w.owed for w in result.weeks), start=result.totals.owed * 0)
    assert owed == result.totals.owed == sum(result.by_payer.values())
    for summary in result.cases:
        weeks = result.weeks_of(summary.case)
        assert all(w.start <= w.end for w in weeks)
        if summary.week_rule == "fixed_blocks":
            tracking_weeks = (summary.tracking_end - summary.tracking_start).days + 1
            assert len(weeks) * 7 == tracking_weeks
            assert sum(w.days_in_care for w in weeks) == summary.days_in_care
            assert sum(w.days_out_of_care for w in weeks) == summary.days_out_of_care
        else:
            paying = summary.weeks.outcome + summary.weeks.unverified
            assert 7 * paying <= summary.days_out_of_care
        for w in weeks:
            assert w.owed + w.capped == (w.owed + w.capped).quantize(w.owed)
            assert w.status == "outcome" or w.owed == w.capped == 0
