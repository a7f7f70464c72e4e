"""The before/after examples in the docstrings of `domain/outcomes/`, checked against the code.

Each test names the module whose docstring it keeps true: change the example there when a
number here moves.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

from soc_ledger.domain.outcomes.assessment import Assessment, assess_case
from soc_ledger.domain.outcomes.care_days import Span, care_intervals, days_in_care
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    ContractFacts,
    Coverage,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement, tracking
from tests.outcome_builders import History

D = Decimal
F = date(2019, 1, 7)  # MST: tracking starts T = 2019-05-06
AS_OF = date(2019, 7, 31)


def read(h: History, known_at: date | None = None) -> tuple[ContractFacts, dict, Coverage]:
    facts = h.facts(known_at)
    return (
        contract_from_facts(h.contract, facts),
        cases_from_facts(facts, h.contract),
        coverage_from_facts(facts, h.contract),
    )


def sut(covers_until: date = date(2019, 12, 31), caps: list[dict] | None = None) -> History:
    h = History()
    h.agree(caps=caps)
    h.accede("SUT")
    h.coverage("SUT", covers_until)
    return h


def statuses(a: Assessment | None) -> dict[str, int]:
    assert a is not None
    return dict(Counter(w.status for w in a.weeks))


def test_facts():
    h = History()
    h.agree()
    h.accede("SUT")
    h.add(
        "ReferralReceived", "2018-02-01", case="A", borough="SUT", child_ref="child-A",
        date_of_birth="2006-01-15", behaviours=[], in_care=False,
    )
    h.add("ReferralAccepted", "2018-02-01", case="A", intervention="FFT")
    meeting = h.add("FirstFamilyMeeting", "2018-02-26", case="A")
    h.correct(meeting, "2018-04-01", effective="2018-02-27")
    h.coverage("SUT", "2018-03-31", "2018-04-10")
    _, cases, coverage = read(h, date(2018, 3, 1))
    assert cases["A"] == CaseFacts(
        "A", "SUT", "FFT", date(2018, 2, 1), date(2018, 2, 26), None, (), (3, 4, 5)
    )
    assert coverage == {}
    _, cases, coverage = read(h)
    assert (cases["A"].first_meeting, cases["A"].refs) == (date(2018, 2, 27), (3, 4, 5, 6))
    assert coverage == {"SUT": date(2018, 3, 31)} and coverage.refs == {"SUT": (7,)}


def test_prices_and_terms():
    h = sut()
    h.vary("v1", "2019-06-01", price_per_week="250.00")
    timeline = TermsTimeline(read(h)[0])
    segments = [timeline.at(day.toordinal()) for day in (date(2019, 5, 31), date(2019, 6, 1))]
    assert [(s.variation, s.borough_price, s.top_up_price) for s in segments] == [
        ("original", D("169.00"), D("45.00")),
        ("v1", D("205.00"), D("45.00")),
    ]
    assert len(timeline.segments) == 2 and timeline.starts == [date(2019, 6, 1).toordinal()]


def test_tracking():
    def case(ended: date | None) -> tuple[ContractFacts, CaseFacts]:
        h = sut()
        h.case("A", date(2018, 2, 26), intervention="FFT", referred=date(2018, 2, 1), ended=ended)
        contract, cases, _ = read(h)
        return contract, cases["A"]

    contract, a = case(None)
    assert engagement(a, contract, date(2018, 3, 20)) == "engaging"
    assert engagement(a, contract, date(2018, 3, 26)) == "tracked"
    window = tracking(a, contract, date(2018, 3, 26))
    assert window is not None
    assert (window.start, window.weeks, window.end) == (date(2018, 5, 14), 104, date(2020, 5, 10))
    contract, a = case(date(2018, 3, 10))
    assert engagement(a, contract, date(2018, 3, 26)) == "not_engaged"


def test_care_days():
    h = sut()
    h.case("C1", F, referred=date(2018, 12, 1))
    h.episode("C1", "E1", date(2019, 5, 15), date(2019, 5, 20))
    h.episode("C1", "E2", date(2019, 6, 3), None, legal_status="V3")
    contract, cases, _ = read(h)
    first = date(2019, 5, 6).toordinal()
    spans = [Span.of(s) for s in cases["C1"].spells]
    care = care_intervals(spans, TermsTimeline(contract), first, 104, AS_OF.toordinal())
    assert care == [(date(2019, 5, 15).toordinal(), date(2019, 5, 20).toordinal())]
    may_13 = date(2019, 5, 13).toordinal()
    assert days_in_care(care, may_13, 2, AS_OF.toordinal()) == [5, 0]
    # Only elapsed days count: as of May 16, two of the stay's days (15th, 16th).
    assert days_in_care(care, may_13, 2, date(2019, 5, 16).toordinal()) == [2, 0]


def test_weeks():
    h = sut(covers_until=date(2019, 7, 14))
    h.case("C1", F, referred=date(2018, 12, 1))
    contract, cases, coverage = read(h)
    a = assess_case(cases["C1"], contract, coverage, AS_OF)
    assert a is not None
    by_index = {w.index: w for w in a.weeks}
    assert {by_index[k].status for k in range(10)} == {"outcome"}
    assert (by_index[9].end, by_index[9].borough_amount, by_index[9].top_up_amount) == (
        date(2019, 7, 14), D("169.00"), D("45.00")
    )
    assert [(by_index[k].status, by_index[k].provisional_borough, by_index[k].owed)
            for k in (10, 11)] == [("unverified", D("169.00"), D("0.00"))] * 2
    assert {by_index[k].status for k in range(12, 104)} == {"pending"}
    assert by_index[12].start == date(2019, 7, 29)


def test_fixed_blocks_consecutive_runs_and_assessment():
    def assessed(stay_start: date, stay_end: date, rule: str | None = None) -> Assessment | None:
        h = sut()
        h.case("C1", F, referred=date(2018, 12, 1))
        h.episode("C1", "E1", stay_start, stay_end)
        contract, cases, coverage = read(h)
        return assess_case(cases["C1"], contract, coverage, AS_OF, rule)

    a = assessed(date(2019, 5, 15), date(2019, 5, 20))
    assert a is not None and a.tracking.start == date(2019, 5, 6)
    assert a.tracking.week_rule == "fixed_blocks"
    assert statuses(a) == {"outcome": 11, "in_care": 1, "pending": 92}
    assert (a.days_in_care, a.days_out_of_care) == (5, 82)
    one = a.weeks[1]
    assert (one.status, one.days_in_care, one.days_out_of_care) == ("in_care", 5, 2)
    assert (a.weeks[12].status, a.weeks[12].days_out_of_care) == ("pending", 3)

    runs = assessed(date(2019, 5, 15), date(2019, 5, 20), "consecutive_runs")
    paid = [(w.index, w.start) for w in runs.weeks if w.status == "outcome"]
    assert paid[0] == (0, date(2019, 5, 6)) and paid[1] == (2, date(2019, 5, 20))
    assert paid[-1] == (11, date(2019, 7, 22)) and len(paid) == 11

    assert statuses(assessed(date(2019, 5, 12), date(2019, 5, 14)))["outcome"] == 10
    runs = assessed(date(2019, 5, 12), date(2019, 5, 14), "consecutive_runs")
    paid = [(w.index, w.start) for w in runs.weeks if w.status == "outcome"]
    assert len(paid) == 11
    assert paid[0] == (2, date(2019, 5, 14)) and paid[-1] == (12, date(2019, 7, 23))

    h = sut()
    h.case("C1", F, referred=date(2018, 12, 1))
    contract, cases, coverage = read(h)
    assert assess_case(cases["C1"], contract, coverage, date(2019, 1, 31)) is None


def test_caps():
    cap = {"cap": "c1", "payer": "boroughs", "boroughs": ["SUT"], "amount": "2000.00"}
    h = sut(caps=[cap])
    h.case("C1", F, referred=date(2018, 12, 1))
    contract, cases, coverage = read(h)
    weeks = [w for w in liability(contract, cases, coverage, date(2019, 8, 31)).weeks
             if w.status == "outcome"]
    assert sum(w.borough_amount for w in weeks[:11]) == D("1859.00")
    assert (weeks[11].borough_amount, weeks[11].capped_borough) == (D("141.00"), D("28.00"))
    assert {(w.borough_amount, w.capped_borough) for w in weeks[12:]} == {(D("0.00"), D("169.00"))}
    assert {(w.top_up_amount, w.capped_top_up) for w in weeks} == {(D("45.00"), D("0.00"))}


def test_liability():
    h = sut()
    for case in ("C1", "C2"):
        h.case(case, F, referred=date(2018, 12, 1))
    h.episode("C1", "E1", date(2019, 5, 15), date(2019, 5, 20))
    result = liability(*read(h), AS_OF)
    assert result.totals.weeks.as_dict() == {
        "outcome": 23, "in_care": 1, "unverified": 0, "pending": 184
    }
    assert result.by_payer == {"SUT": D("3887.00"), "CBO": D("1035.00")}
    totals = result.totals
    assert (totals.days_in_care, totals.days_out_of_care) == (5, 169)
    assert totals.share_out_of_care == D("0.9713")
