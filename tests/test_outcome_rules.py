"""SPEC §5 outcome rules, each checked on a small history against a number worked out by hand.

Longer than 500 lines because every rule of §5 is checked here against the one case set out
below, so each number can be followed from the same dates.

Histories are built in memory (`outcome_builders.History`) and read through `known_facts`:
no database. Unless a test says otherwise the contract has the reference terms (price 214.00,
top-up 45.00, so a borough owes 169.00 a week and CBO 45.00; MST offset 17 weeks, FFT 11; 104
weeks; 28 days' engagement; V3 and V4 excluded), and the case is:

    first family meeting F = 2019-01-07 (a Monday), MST
    tracking starts T = F + 17 x 7 = F + 119 days = 2019-05-06 (Jan 7 -> Jan 31 is 24 days,
    + Feb 28 = 52, + Mar 31 = 83, + Apr 30 = 113, + 6 = 119), so the fixed weeks are
      k=0 May 6-12   k=1 May 13-19  k=2 May 20-26  k=3 May 27-Jun 2  k=4 Jun 3-9
      k=5 Jun 10-16  k=6 Jun 17-23  k=7 Jun 24-30  k=8 Jul 1-7       k=9 Jul 8-14
      k=10 Jul 15-21 k=11 Jul 22-28 k=12 Jul 29-Aug 4 ...
    at as_of 2019-07-31 weeks 0-11 are over (12 weeks), 92 are pending, and the elapsed days
    of the window are May 6-31 (26) + June (30) + July (31) = 87.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from soc_ledger.domain.contract import DomainError
from soc_ledger.domain.outcomes.assessment import case_weeks
from soc_ledger.domain.outcomes.caps import apply_caps
from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.tracking import engagement
from tests.outcome_builders import History, days, pounds

F = date(2019, 1, 7)
T = date(2019, 5, 6)
AS_OF = date(2019, 7, 31)
ALL_VERIFIED = date(2019, 12, 31)


def reference(coverage: date | None = ALL_VERIFIED, caps: list[dict] | None = None, **terms):
    h = History()
    h.agree(caps=caps, **terms)
    for borough in ("SUT", "MRT"):
        h.accede(borough)
    if coverage is not None:
        h.coverage("SUT", coverage)
        h.coverage("MRT", coverage)
    return h


def run(
    h: History, as_of: date = AS_OF, known_at: date | None = None, week_rule: str | None = None
) -> Liability:
    facts = h.facts(known_at)
    return liability(
        contract_from_facts(h.contract, facts),
        cases_from_facts(facts, h.contract),
        coverage_from_facts(facts, h.contract),
        as_of,
        week_rule,
    )


def counts(result: Liability, case: str = "C1") -> dict[str, int]:
    summary = result.case(case)
    assert summary is not None, f"{case} is not tracked"
    return summary.weeks.as_dict()


def status_of(result: Liability, case: str = "C1") -> dict[int, str]:
    return {w.index: w.status for w in result.weeks_of(case)}


# --- tracking ----------------------------------------------------------------------------


def test_mst_tracking_starts_17_weeks_after_the_first_family_meeting():
    h = reference()
    h.case("C1", F, intervention="MST")
    summary = run(h).case("C1")
    # T = 2019-01-07 + 119 days = 2019-05-06; 104 weeks = 728 days, so the last day is
    # T + 727: 2019-05-06 + 731 days is 2021-05-06 (2020 is a leap year), minus 4 = 2021-05-02.
    assert summary.tracking_start == date(2019, 5, 6)
    assert summary.tracking_end == date(2021, 5, 2)
    first = run(h).weeks_of("C1")[0]
    assert (first.index, first.start, first.end) == (0, date(2019, 5, 6), date(2019, 5, 12))


def test_fft_tracking_starts_11_weeks_after_the_first_family_meeting():
    h = reference()
    h.case("C1", F, intervention="FFT")
    summary = run(h).case("C1")
    # 11 x 7 = 77 days: Jan 7 -> Jan 31 is 24, + Feb 28 = 52, + 25 = Mar 25.
    # Last day: 2019-03-25 + 727 = 2021-03-25 (731 days) - 4 = 2021-03-21.
    assert summary.tracking_start == date(2019, 3, 25)
    assert summary.tracking_end == date(2021, 3, 21)


def test_fixed_block_k_covers_t_plus_7k_to_t_plus_7k_plus_6_for_104_weeks():
    h = reference()
    h.case("C1", F)
    weeks = run(h).weeks_of("C1")
    assert len(weeks) == 104
    # week 103 starts T + 721 = 2021-04-26 and ends T + 727 = 2021-05-02
    assert (weeks[103].index, weeks[103].start, weeks[103].end) == (
        103, date(2021, 4, 26), date(2021, 5, 2)
    )


def test_a_case_that_disengaged_on_day_27_is_never_tracked():
    h = reference()
    # F + 27 days = 2019-02-03: engaged 27 < 28 days.
    h.case("C1", F, ended=date(2019, 2, 3))
    result = run(h)
    assert result.case("C1") is None
    assert result.engagement["C1"] == "not_engaged"
    assert result.totals.cases_tracked == 0


def test_a_case_that_disengaged_on_day_28_is_tracked():
    h = reference()
    # F + 28 days = 2019-02-04: engaged exactly 28 days.
    h.case("C1", F, ended=date(2019, 2, 4))
    result = run(h)
    assert result.engagement["C1"] == "tracked"
    # Tracking does not stop at disengagement: 12 elapsed weeks, all verified, none in care.
    assert counts(result) == {"outcome": 12, "in_care": 0, "unverified": 0, "pending": 92}


def test_an_open_case_is_engaging_until_day_28_then_tracked():
    h = reference()
    h.case("C1", F)
    assert run(h, as_of=date(2019, 2, 3)).engagement["C1"] == "engaging"  # 27 days
    result = run(h, as_of=date(2019, 2, 4))  # 28 days: tracked, every week still pending
    assert counts(result) == {"outcome": 0, "in_care": 0, "unverified": 0, "pending": 104}
    assert run(h, as_of=date(2019, 1, 6)).engagement["C1"] == "not_started"


def test_an_end_dated_after_as_of_has_not_happened_at_as_of():
    h = reference()
    h.case("C1", F, ended=date(2019, 2, 1))  # 25 days: never tracked once it has ended
    assert run(h, as_of=date(2019, 1, 31)).engagement["C1"] == "engaging"  # 24 days, open
    assert run(h, as_of=date(2019, 2, 1)).engagement["C1"] == "not_engaged"


def test_tracking_terms_are_those_in_force_on_the_first_family_meeting():
    h = reference()
    # A variation effective after F shortens the offset: C1 (F before it) keeps 17 weeks.
    h.vary("v", "2019-02-01", tracking_offset_weeks={"MST": 10, "FFT": 11})
    h.case("C1", F)
    h.case("C2", date(2019, 2, 4))
    result = run(h)
    assert result.case("C1").tracking_start == T
    # C2: 2019-02-04 + 70 days = 2019-04-15 (Feb 4 -> Feb 28 is 24, + Mar 31 = 55, + 15)
    assert result.case("C2").tracking_start == date(2019, 4, 15)


def test_an_intervention_without_a_tracking_offset_is_an_error_naming_the_term():
    h = reference()
    h.vary("v", "2019-01-01", tracking_offset_weeks={"MST": 17})
    h.case("C1", F, intervention="FFT")
    with pytest.raises(DomainError, match="tracking_offset_weeks for 'FFT'") as error:
        run(h)
    assert error.value.field == "tracking_offset_weeks"


# --- in care -----------------------------------------------------------------------------


def test_a_stay_whose_dec_is_a_weeks_first_day_leaves_that_week_out_of_care():
    h = reference()
    h.case("C1", F)
    # In care May 22 .. Jun 2 (DEC Jun 3 is the first day out of care, SPEC §5):
    # week 2 (May 20-26) has 5 days in care, week 3 (May 27-Jun 2) 7, week 4 (Jun 3-9) none.
    h.episode("C1", "E1", date(2019, 5, 22), date(2019, 6, 3))
    result = run(h)
    statuses = status_of(result)
    assert (statuses[2], statuses[3], statuses[4]) == ("in_care", "in_care", "outcome")
    weeks = result.weeks_of("C1")
    assert (weeks[2].days_in_care, weeks[3].days_in_care, weeks[4].days_in_care) == (5, 7, 0)
    assert counts(result) == {"outcome": 10, "in_care": 2, "unverified": 0, "pending": 92}
    # 10 + 2 = 12 days in care of 87 elapsed.
    assert (result.case("C1").days_in_care, result.case("C1").days_out_of_care) == (12, 75)


def test_a_stay_ending_after_a_weeks_first_day_makes_that_week_in_care_and_not_the_next():
    h = reference()
    h.case("C1", F)
    # Last night in care is Monday Jun 3, week 4's first day (DEC Jun 4):
    # week 4 (Jun 3-9) has one day in care, week 5 (Jun 10-16) none.
    h.episode("C1", "E1", date(2019, 5, 22), date(2019, 6, 4))
    result = run(h)
    statuses = status_of(result)
    assert (statuses[3], statuses[4], statuses[5]) == ("in_care", "in_care", "outcome")
    assert result.weeks_of("C1")[4].days_in_care == 1
    assert counts(result) == {"outcome": 9, "in_care": 3, "unverified": 0, "pending": 92}
    assert result.case("C1").owed == pounds("1926.00")  # 9 x 214


def test_a_v3_short_break_does_not_break_a_week():
    h = reference()
    h.case("C1", F)
    h.case("C2", F)
    # Jun 5, 6, 7 in week 4 (Jun 3-9): V3 (short break) for C1, C2 (care order) for C2.
    h.episode("C1", "E1", date(2019, 6, 5), date(2019, 6, 8), legal_status="V3")
    h.episode("C2", "E1", date(2019, 6, 5), date(2019, 6, 8), legal_status="C2")
    result = run(h)
    assert status_of(result, "C1")[4] == "outcome"
    assert status_of(result, "C2")[4] == "in_care"
    assert counts(result, "C1") == {"outcome": 12, "in_care": 0, "unverified": 0, "pending": 92}
    assert result.case("C1").days_in_care == 0
    assert result.case("C2").days_in_care == 3
    # Nor a run: C1 is out of care for all 87 days: floor(87 / 7) = 12 units. C2's runs are
    # May 6-Jun 4 (30 days: 4 units) and Jun 8-Jul 31 (23 + 31 = 54 days: 7 units) = 11.
    runs = run(h, week_rule="consecutive_runs")
    assert runs.case("C1").weeks.outcome == 12
    assert runs.case("C2").weeks.outcome == 11


def test_excluded_placement_does_not_count_as_in_care():
    h = reference(excluded_placements=["P5"])
    h.case("C1", F)
    h.episode("C1", "E1", date(2019, 6, 5), date(2019, 6, 8), placement="P5")
    assert status_of(run(h))[4] == "outcome"


def test_an_open_episode_runs_on_to_as_of():
    h = reference()
    h.case("C1", F)
    # Starts Wed Jun 12 (week 5: Jun 10-16) and never ends.
    h.episode("C1", "E1", date(2019, 6, 12))
    result = run(h)
    # weeks 0-4 outcome (5), weeks 5-11 in care (7), 92 pending
    assert counts(result) == {"outcome": 5, "in_care": 7, "unverified": 0, "pending": 92}
    summary = result.case("C1")
    # in care Jun 12-30 (19) + July (31) = 50 of 87 days; out 37; 37/87 = 0.42528... -> 0.4253
    assert (summary.days_in_care, summary.days_out_of_care) == (50, 37)
    assert summary.share_out_of_care == Decimal("0.4253")
    # 5 x 169 = 845.00 from the borough, 5 x 45 = 225.00 from CBO
    assert (summary.owed_borough, summary.owed_top_up) == (pounds(845), pounds(225))
    # the week after as_of is pending even though the episode is still open
    assert status_of(result)[12] == "pending"


def test_a_half_elapsed_pending_week_counts_its_elapsed_days():
    h = reference()
    h.case("C1", F)
    h.episode("C1", "E1", date(2019, 7, 30), date(2019, 8, 2))
    # Week 12 (Jul 29-Aug 4) is pending at Jul 31; of its elapsed days Jul 29-31, 2 in care.
    week = run(h).weeks_of("C1")[12]
    assert (week.status, week.days_in_care, week.days_out_of_care) == ("pending", 2, 1)
    assert week.owed == week.provisional == Decimal("0.00")


# --- verification ------------------------------------------------------------------------


def test_unverified_weeks_become_outcome_weeks_when_care_data_arrives():
    h = reference(coverage=None)
    h.case("C1", F)
    h.coverage("SUT", "2019-06-30", recorded="2019-07-10")
    h.coverage("SUT", "2019-09-30", recorded="2019-10-15")

    # Known on Jul 1: no care data yet: all 12 elapsed weeks are unverified,
    # provisional 12 x 214 = 2,568.00, nothing owed.
    before = run(h, known_at=date(2019, 7, 1))
    assert counts(before) == {"outcome": 0, "in_care": 0, "unverified": 12, "pending": 92}
    assert (before.totals.owed, before.totals.provisional) == (pounds(0), pounds(2568))

    # Known on Jul 20: verified to Jun 30 = the last day of week 7: weeks 0-7 pay
    # (8 x 214 = 1,712.00), weeks 8-11 stay provisional (4 x 214 = 856.00).
    partly = run(h, known_at=date(2019, 7, 20))
    assert counts(partly) == {"outcome": 8, "in_care": 0, "unverified": 4, "pending": 92}
    assert (partly.totals.owed, partly.totals.provisional) == (pounds(1712), pounds(856))

    # Known on Oct 20: verified to Sep 30: all 12 pay, 2,568.00.
    after = run(h, known_at=date(2019, 10, 20))
    assert counts(after) == {"outcome": 12, "in_care": 0, "unverified": 0, "pending": 92}
    assert (after.totals.owed, after.totals.provisional) == (pounds(2568), pounds(0))


def test_verification_never_goes_backwards():
    h = reference(coverage=None)
    h.coverage("SUT", "2019-09-30", recorded="2019-10-01")
    h.coverage("SUT", "2019-06-30", recorded="2019-10-02")  # an older period resubmitted
    coverage = coverage_from_facts(h.facts())
    assert coverage["SUT"] == date(2019, 9, 30)
    assert coverage.refs["SUT"] == (h.records[-2].position,)


def test_a_week_is_verified_when_coverage_reaches_its_last_day_exactly():
    h = reference(coverage=date(2019, 5, 12))  # week 0's last day
    h.case("C1", F)
    statuses = status_of(run(h))
    assert (statuses[0], statuses[1]) == ("outcome", "unverified")


# --- pricing -----------------------------------------------------------------------------


def test_a_price_variation_effective_on_a_weeks_last_day_prices_that_week():
    h = reference()
    h.case("C1", F)
    # Effective Sun Jun 9, the last day of week 4 (Jun 3-9): week 4 on is 230.00 (180 + 50).
    variation = h.vary("2019b", "2019-06-09", price_per_week="230.00", top_up_per_week="50.00")
    result = run(h)
    weeks = result.weeks_of("C1")
    assert (weeks[3].variation, weeks[3].borough_amount, weeks[3].top_up_amount) == (
        "original", pounds(169), pounds(45)
    )
    assert (weeks[4].variation, weeks[4].borough_amount, weeks[4].top_up_amount) == (
        "2019b", pounds(180), pounds(50)
    )
    assert variation.position in weeks[4].because
    assert variation.position not in weeks[3].because
    # weeks 0-3: 4 x 214 = 856.00; weeks 4-11: 8 x 230 = 1,840.00; total 2,696.00
    # borough 4 x 169 + 8 x 180 = 2,116.00; CBO 4 x 45 + 8 x 50 = 580.00
    assert result.totals.owed == pounds(2696)
    assert result.by_payer == {"MRT": pounds(0), "SUT": pounds(2116), "CBO": pounds(580)}


def test_an_exclusion_variation_applies_to_weeks_ending_on_or_after_it():
    h = reference()
    h.case("C1", F)
    # V3 stops being a short break from Wed Jun 5: week 4 (Jun 3-9) ends after it, so its
    # V3 days on Mon Jun 3-Tue Jun 4 (before the variation) count as in care too.
    h.vary("v", "2019-06-05", excluded_legal_statuses=["V4"])
    h.episode("C1", "E1", date(2019, 6, 3), date(2019, 6, 5), legal_status="V3")
    h.episode("C1", "E2", date(2019, 5, 29), date(2019, 5, 30), legal_status="V3")
    statuses = status_of(run(h))
    assert statuses[3] == "outcome"  # May 29 in week 3 (ends Jun 2, before the variation)
    assert statuses[4] == "in_care"


def test_unverified_weeks_are_priced_as_provisional_by_payer():
    h = reference(coverage=None)
    h.case("C1", F)
    h.case("C2", F, borough="MRT")
    result = run(h)
    # 12 unverified weeks each: SUT 12 x 169 = 2,028.00, MRT the same, CBO 24 x 45 = 1,080.00
    provisional = {p.payer: p.provisional for p in result.payers}
    assert provisional == {"MRT": pounds(2028), "SUT": pounds(2028), "CBO": pounds(1080)}
    assert result.totals.provisional == pounds(5136)
    assert [b.borough for b in result.boroughs] == ["MRT", "SUT"]
    assert result.boroughs[0].provisional == pounds(2568)  # both shares of MRT's case


# --- caps --------------------------------------------------------------------------------


def test_a_cap_that_binds_halfway_through_a_week_caps_exactly_the_excess():
    cap = {"cap": "sut", "payer": "boroughs", "boroughs": ["SUT"], "amount": "591.50"}
    h = reference(caps=[cap])
    h.case("C1", F)
    h.case("C2", F)
    h.case("C3", F, borough="MRT")  # not covered by the cap
    # as_of May 26: weeks 0-2 of each case pay. SUT weeks in order (last day, case):
    #   May 12 C1 169 (169.00)  May 12 C2 169 (338.00)  May 19 C1 169 (507.00)
    #   May 19 C2: room 591.50 - 507.00 = 84.50 owed, 84.50 capped (591.50 reached)
    #   May 26 C1: 169.00 capped   May 26 C2: 169.00 capped
    result = run(h, as_of=date(2019, 5, 26))
    c2_week1 = result.weeks_of("C2")[1]
    assert (c2_week1.borough_amount, c2_week1.capped_borough) == (pounds("84.50"),) * 2
    assert c2_week1.top_up_amount == pounds(45)  # CBO's share is not under this cap
    c1, c2, c3 = (result.case(c) for c in ("C1", "C2", "C3"))
    assert (c1.owed_borough, c1.capped_borough) == (pounds(338), pounds(169))
    assert (c2.owed_borough, c2.capped_borough) == (pounds("253.50"), pounds("253.50"))
    assert (c3.owed_borough, c3.capped_borough) == (pounds(507), pounds(0))
    by_payer = {p.payer: (p.owed, p.capped) for p in result.payers}
    assert by_payer["SUT"] == (pounds("591.50"), pounds("422.50"))
    assert by_payer["CBO"] == (pounds(405), pounds(0))  # 9 x 45
    # 591.50 + 507.00 + 405.00 = 1,503.50 owed; capped weeks are still outcome weeks
    assert result.totals.owed == pounds("1503.50")
    assert result.totals.weeks.outcome == 9
    assert result.totals.capped == pounds("422.50")


def test_weeks_owed_before_a_cap_came_into_force_stay_owed_but_count_toward_it():
    h = reference()
    h.case("C1", F)
    # A CBO cap of 50.00, agreed from May 26 (the last day of week 2).
    h.vary("v", "2019-05-26", caps=[{"cap": "cbo", "payer": "CBO", "amount": "50.00"}])
    # Weeks 0 and 1 (May 12, 19) end before it: 45.00 each owed, running total 90.00.
    # From week 2 the cap limits: room max(0, 50 - 90) = 0, so 45.00 capped a week.
    result = run(h, as_of=date(2019, 6, 9))  # weeks 0-4 pay
    weeks = result.weeks_of("C1")
    assert [w.top_up_amount for w in weeks[:5]] == [pounds(45)] * 2 + [pounds(0)] * 3
    assert [w.capped_top_up for w in weeks[:5]] == [pounds(0)] * 2 + [pounds(45)] * 3
    summary = result.case("C1")
    assert (summary.owed_top_up, summary.capped_top_up) == (pounds(90), pounds(135))
    assert summary.owed_borough == pounds(845)  # 5 x 169, uncapped
    assert h.records[-1].position in weeks[2].because


def test_a_varied_cap_amount_applies_from_its_effective_date():
    cap = {"cap": "all", "payer": "boroughs", "amount": "169.00"}
    h = reference(caps=[cap])
    h.case("C1", F)
    # Raised to 507.00 (3 weeks) from Jun 2, the last day of week 3.
    h.vary("v", "2019-06-02", caps=[{**cap, "amount": "507.00"}])
    weeks = run(h, as_of=date(2019, 6, 16)).weeks_of("C1")
    # wk0 169 (169), wk1 capped, wk2 capped, wk3 room 507 - 169 = 338: 169 (338),
    # wk4 169 (507), wk5 capped
    assert [w.borough_amount for w in weeks[:6]] == [
        pounds(n) for n in (169, 0, 0, 169, 169, 0)
    ]


def test_apply_caps_is_the_identity_without_caps_and_stable_when_reapplied():
    cap = {"cap": "sut", "payer": "boroughs", "amount": "250.00"}
    h = reference(caps=[cap])
    h.case("C1", F)
    facts = h.facts()
    contract, cases = contract_from_facts("plcip", facts), cases_from_facts(facts)
    weeks = case_weeks(cases["C1"], contract, coverage_from_facts(facts), AS_OF)
    assert all(w.capped == 0 for w in weeks)
    once = apply_caps(weeks, cases, contract)
    assert apply_caps(once, cases, contract) == once
    assert sum(w.borough_amount for w in once) == pounds(250)


# --- the two week rules ------------------------------------------------------------------


def test_consecutive_runs_and_fixed_blocks_differ_when_stays_are_short():
    h = reference()
    h.case("C1", F)
    # One night in care on T+0 (May 6), T+15 (May 21) and T+30 (Jun 5); as_of T+41 = Jun 16.
    for name, offset in (("E1", 0), ("E2", 15), ("E3", 30)):
        start = days(T, offset)
        h.episode("C1", name, start, days(start, 1))
    as_of = date(2019, 6, 16)

    # fixed_blocks: weeks 0, 2, 4 have a night in care; weeks 1, 3, 5 pay: 3 x 214 = 642.00
    fixed = run(h, as_of=as_of)
    assert counts(fixed) == {"outcome": 3, "in_care": 3, "unverified": 0, "pending": 98}
    assert fixed.totals.owed == pounds(642)

    # consecutive_runs: out-of-care runs May 7-20 (14 days: 2), May 22-Jun 4 (14 days: 2)
    # and Jun 6-16 (11 days: 1) pay 5 x 214 = 1,070.00, dated by their 7th days.
    runs = run(h, as_of=as_of, week_rule="consecutive_runs")
    assert counts(runs) == {"outcome": 5, "in_care": 3, "unverified": 0, "pending": 98}
    assert runs.totals.owed == pounds(1070)
    paid = [w for w in runs.weeks_of("C1") if w.status == "outcome"]
    assert [(w.start, w.end) for w in paid] == [
        (date(2019, 5, 7), date(2019, 5, 13)),
        (date(2019, 5, 14), date(2019, 5, 20)),
        (date(2019, 5, 22), date(2019, 5, 28)),
        (date(2019, 5, 29), date(2019, 6, 4)),
        (date(2019, 6, 6), date(2019, 6, 12)),
    ]
    # each unit's index is the fixed block its last day falls in
    assert [w.index for w in paid] == [1, 2, 3, 4, 5]
    # the day totals do not depend on the rule: 3 nights in care of 42 days
    for result in (fixed, runs):
        assert (result.totals.days_in_care, result.totals.days_out_of_care) == (3, 39)


def test_a_contract_agreed_on_consecutive_runs_uses_them_without_an_override():
    h = reference(week_rule="consecutive_runs")
    h.case("C1", F)
    h.episode("C1", "E1", date(2019, 5, 21), date(2019, 5, 22))
    # runs May 6-20 (15 days: 2 units) and May 22-Jun 16 (26 days: 3 units)
    result = run(h, as_of=date(2019, 6, 16))
    assert result.case("C1").week_rule == "consecutive_runs"
    assert result.totals.weeks.outcome == 5
    assert run(h, as_of=date(2019, 6, 16), week_rule="fixed_blocks").totals.weeks.outcome == 5


def test_consecutive_runs_units_past_the_coverage_are_unverified():
    h = reference(coverage=date(2019, 5, 20))
    h.case("C1", F)
    # one run May 6-Jun 16 (42 days): units end May 12, 19 (verified), 26, Jun 2, 9, 16 (not)
    result = run(h, as_of=date(2019, 6, 16), week_rule="consecutive_runs")
    assert counts(result) == {"outcome": 2, "in_care": 0, "unverified": 4, "pending": 98}
    assert result.totals.provisional == pounds(856)


def test_an_unknown_week_rule_is_rejected():
    h = reference()
    h.case("C1", F)
    with pytest.raises(ValueError, match="week_rule"):
        run(h, week_rule="weekly")


# --- two clocks --------------------------------------------------------------------------


def test_corrected_and_retracted_episodes_give_different_answers_at_two_known_at_dates():
    h = reference(coverage=None)
    h.case("C1", F)
    _, e1_end = h.episode("C1", "E1", date(2019, 5, 22), date(2019, 6, 20), recorded="2019-07-05")
    e2_start, e2_end = h.episode(
        "C1", "E2", date(2019, 7, 10), date(2019, 7, 12), recorded="2019-07-20"
    )
    h.coverage("SUT", "2019-07-31", recorded="2019-08-05")
    # On Sep 1 the borough restates: E1 ended on May 25, and E2 never happened.
    correction = h.correct(e1_end, "2019-09-01", effective="2019-05-25")
    h.retract(e2_start, "2019-09-01")
    h.retract(e2_end, "2019-09-01")

    # Known on Aug 10: E1 May 22-Jun 19 puts weeks 2-6 in care (May 20-26 ... Jun 17-23),
    # E2 Jul 10-11 week 9 (Jul 8-14): 6 in care, 6 pay = 1,284.00;
    # days in care 10 (May 22-31) + 19 (Jun 1-19) + 2 = 31 of 87.
    then = run(h, known_at=date(2019, 8, 10))
    assert counts(then) == {"outcome": 6, "in_care": 6, "unverified": 0, "pending": 92}
    assert then.totals.owed == pounds(1284)
    assert (then.totals.days_in_care, then.totals.days_out_of_care) == (31, 56)

    # Known on Sep 10: E1 May 22-24 puts only week 2 in care; 11 pay = 2,354.00; 3 days.
    now = run(h, known_at=date(2019, 9, 10))
    assert counts(now) == {"outcome": 11, "in_care": 1, "unverified": 0, "pending": 92}
    assert now.totals.owed == pounds(2354)
    assert (now.totals.days_in_care, now.totals.days_out_of_care) == (3, 84)
    assert correction.position in now.weeks_of("C1")[2].because
    assert correction.position not in then.weeks_of("C1")[2].because

    # Known on Jul 1, nothing of E1 and no care data: 12 unverified weeks.
    assert counts(run(h, known_at=date(2019, 7, 1)))["unverified"] == 12


# --- folding facts -----------------------------------------------------------------------


def test_case_facts_keep_the_positions_that_decided_them():
    h = reference()
    h.case("C1", F, ended=date(2019, 3, 1))
    start, end = h.episode("C1", "E1", date(2019, 6, 1), date(2019, 6, 5))
    case = cases_from_facts(h.facts())["C1"]
    assert (case.borough, case.intervention, case.first_meeting, case.ended) == (
        "SUT", "MST", F, date(2019, 3, 1)
    )
    assert case.spells[0].refs == (start.position, end.position)
    lifecycle = [r.position for r in h.records if r.stream == "plcip/C1"][:4]
    assert case.refs == tuple(lifecycle)


def test_a_case_whose_referral_is_retracted_is_not_a_case():
    h = reference()
    h.case("C1", F)
    referral = next(r for r in h.records if r.event.type == "ReferralReceived")
    h.retract(referral, "2019-03-01")
    assert "C1" in cases_from_facts(h.facts(date(2019, 2, 1)))
    assert cases_from_facts(h.facts()) == {}


def test_contract_facts_remember_the_positions_of_each_terms_change():
    h = reference()
    variation = h.vary("v", "2019-06-09", price_per_week="230.00")
    contract = contract_from_facts("plcip", h.facts())
    assert contract.refs == {"original": (1,), "v": (variation.position,)}
    assert contract.terms_on(date(2019, 6, 9)).price_per_week == pounds(230)


def test_engagement_of_a_declined_or_unmet_case():
    h = reference()
    h.add("ReferralReceived", "2018-06-01", case="C9", borough="SUT", child_ref="x",
          date_of_birth="2006-01-15", behaviours=[], in_care=False)
    facts = h.facts()
    case = cases_from_facts(facts)["C9"]
    assert engagement(case, contract_from_facts("plcip", facts), AS_OF) == "not_accepted"
