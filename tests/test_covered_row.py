"""A case's row under any coverage is its row with every week verified, re-covered.

`case_versions` assesses a case once per basis (facts and terms known) with every week
verified, and derives its row under each coverage of its borough with `covered_row`. On
random contracts and cases (`test_outcomes_property.histories`: variations of price and
exclusions, caps, spells corrected or retracted, both week rules), the derived row must equal
the row `case_row` writes from an assessment at that coverage, column for column, for
coverage before, inside and after the window.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc_ledger.domain.outcomes.assessment import week_statuses
from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.facts import cases_from_facts, contract_from_facts
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.projections.latest import FOREVER
from soc_ledger.projections.latest_row import EVERY_DAY, case_row, covered_row
from tests.test_outcomes_property import BASE, histories


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.integers(-30, 900), min_size=1, max_size=4))
def test_a_row_re_covered_is_the_row_assessed_at_that_coverage(scenario, offsets):
    h, _, known_at = scenario
    facts = h.facts(known_at)
    timeline = TermsTimeline(contract_from_facts(h.contract, facts))
    caps = CapAllocator(timeline)
    compared = 0
    for case in cases_from_facts(facts, h.contract).values():
        every = week_statuses(case, timeline, {case.borough: date.max}, FOREVER)
        if every is None:
            continue
        verified = case_row(h.contract, every, timeline, EVERY_DAY, caps)
        for offset in offsets:
            day = BASE.toordinal() + offset
            at = week_statuses(case, timeline, {case.borough: date.fromordinal(day)}, FOREVER)
            assert at is not None
            expected = case_row(h.contract, at, timeline, day, caps).values_row(sealed=False)
            got = covered_row(verified, day, timeline, caps).values_row(sealed=False)
            assert got == expected, (case.case, day)
            compared += 1
    cases = cases_from_facts(facts, h.contract).values()
    assert compared or not any(week_statuses(c, timeline, {}, FOREVER) for c in cases)


def test_weeks_past_the_coverage_trade_their_outcome_kind_for_the_unverified_one():
    # By hand: a 4-week window from T, no care, price 100.00 + 30.00 top-up; covered to the
    # last day of week 1, weeks 0-1 are owed and weeks 2-3 provisional.
    from tests.outcome_builders import History

    h = History()
    h.agree(
        price_per_week="130.00",
        top_up_per_week="30.00",
        tracking_weeks=4,
        tracking_offset_weeks={"MST": 0, "FFT": 0},
        min_engagement_days=0,
        caps=[{"cap": "all", "payer": "boroughs", "amount": "1000.00"}],
    )
    h.accede("A")
    h.case("C0", BASE, borough="A", intervention="MST")
    facts = h.facts(None)
    timeline = TermsTimeline(contract_from_facts(h.contract, facts))
    caps = CapAllocator(timeline)
    case = cases_from_facts(facts, h.contract)["C0"]
    every = week_statuses(case, timeline, {"A": date.max}, FOREVER)
    assert every is not None
    verified = case_row(h.contract, every, timeline, EVERY_DAY, caps)
    first = verified.values["first_day"]
    row = covered_row(verified, first + 13, timeline, caps)
    assert row.kinds == [("outcome", 10000, 3000, 0, 0), ("unverified", 0, 0, 10000, 3000)]
    assert row.outline == [(6, 0), (13, 0), (20, 1), (27, 1)]
    assert row.values["verified"] == first + 13
    assert row.values["cap_gross"] == '{"all":20000}'
