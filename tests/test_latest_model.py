"""The latest read model (one row per case) answers as the rules over the facts do, followed
batch by batch or rebuilt, on a small history worked by hand with a cap that binds and care
data that arrives late.

The contract (SPEC §5): price 200.00 a week of which the top-up funder CBO pays 50.00, so a
borough 150.00; 10 tracking weeks starting 1 week after the first family meeting; fixed
blocks. Cap `sut-cap`: Sutton's share of its own cases, 2,000.00 (13 weeks and 50.00).

- A (SUT): first meeting Mon 2018-01-01, window T = 2018-01-08; week k ends on the Sunday
  2018-01-14 + 7k (k = 0..9, the last 2018-03-18).
- B (SUT): first meeting 2018-01-08, T = 2018-01-15; week ends 2018-01-21 .. 2018-03-25. In
  care 2018-02-05 .. 2018-02-11 (first day out 02-12): its week 3 (02-05 .. 02-11) is in care.
- C (MRT): as A but Merton's, which no cap covers.

Batch 1: Sutton's care data covers to 2018-02-28, Merton's to 2018-12-31.
Batch 2 (late care data): Sutton's now covers to 2018-12-31, so all of A's and B's weeks are
verified: 19 outcome weeks of Sutton gross 19 x 150 = 2,850.00 > 2,000.00: the cap binds.
Taken in order of last day then case: 01-14 A; 01-21 A, B; 01-28 A, B; 02-04 A, B; 02-11 A
(B in care); 02-18 A, B; 02-25 A, B; 03-04 A (13th, total 1,950), B (room 50: owes 50.00,
100.00 capped); every later Sutton week is capped whole.
Batch 3: A is found in care 2018-01-10 .. 2018-01-11: its week 0 is in care, so every later
Sutton week moves up one place in the cap's order: 03-04 B is now the 13th (1,950, nothing
capped at 2018-03-04) and 03-11 A the one owing 50.00.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import latest, latest_row, outcome_facts, queries, readmodel
from tests.outcome_builders import REFERENCE_TERMS

CONTRACT = "plcip"
# The reference terms, shortened and repriced so that hand-worked sums stay small.
TERMS = {
    **REFERENCE_TERMS,
    "price_per_week": "200.00",
    "top_up_per_week": "50.00",
    "tracking_weeks": 10,
    "tracking_offset_weeks": {"MST": 1, "FFT": 1},
}


def event(kind: str, day: str, key: str, recorded: str | None = None, **fields) -> str:
    return json.dumps(
        {"type": kind, "contract": CONTRACT, "effective": day, "recorded_on": recorded or day,
         "key": key, **fields}
    )


def a_case(case: str, borough: str, first_meeting: str) -> list[str]:
    return [
        event("ReferralReceived", "2017-12-01", f"ref-{case}", case=case, borough=borough,
              child_ref=f"{borough}-{case}", date_of_birth="2005-06-14",
              behaviours=["offending"], in_care=False),
        event("ReferralAccepted", "2017-12-05", f"acc-{case}", case=case, intervention="MST"),
        event("FirstFamilyMeeting", first_meeting, f"ffm-{case}", case=case),
        event("InterventionEnded", "2018-03-01", f"end-{case}", case=case, reason="completed"),
    ]


def stay(case: str, start: str, first_day_out: str, recorded: str) -> list[str]:
    episode = f"{case}-{start}"
    return [
        event("CareEpisodeStarted", start, f"start-{episode}", recorded, case=case,
              episode=episode, legal_status="C2", placement="U1"),
        event("CareEpisodeEnded", first_day_out, f"end-{episode}", recorded, case=case,
              episode=episode, reason="E11"),
    ]


def covered(borough: str, until: str, recorded: str) -> str:
    return event("CareDataReceived", recorded, f"cover-{borough}-{until}", borough=borough,
                 covers_until=until)


BATCH_1 = [
    event("ContractAgreed", "2017-09-01", "contract", name="Test", lead_commissioner="SUT",
          prime_contractor="PFP", top_up_funder="CBO", terms=TERMS,
          caps=[{"cap": "sut-cap", "payer": "boroughs", "boroughs": ["SUT"],
                 "amount": "2000.00"}]),
    event("BoroughAcceded", "2017-10-01", "accede-SUT", borough="SUT", name="Sutton",
          award="original"),
    event("BoroughAcceded", "2017-10-01", "accede-MRT", borough="MRT", name="Merton",
          award="original"),
    *a_case("A", "SUT", "2018-01-01"),
    *a_case("B", "SUT", "2018-01-08"),
    *a_case("C", "MRT", "2018-01-01"),
    *stay("B", "2018-02-05", "2018-02-12", "2018-04-02"),
    covered("SUT", "2018-02-28", "2018-04-02"),
    covered("MRT", "2018-12-31", "2018-04-02"),
]
BATCH_2 = [covered("SUT", "2018-12-31", "2019-02-01")]
BATCH_3 = stay("A", "2018-01-10", "2018-01-12", "2019-03-01")
AS_OFS = [date(2018, 1, 13), date(2018, 2, 28), date(2018, 3, 4), date(2018, 3, 9),
          date(2018, 3, 31), date(2030, 1, 1)]


def snapshot(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(latest.latest_case_weeks)))


def figures(result: Liability) -> tuple:
    return (result.cases, result.boroughs, result.payers, result.totals)


def fast(ledger: Ledger, as_of: date) -> Liability:
    timeline = TermsTimeline(queries.terms(ledger.engine, CONTRACT))
    return latest.liability_at(ledger.engine, CONTRACT, as_of, timeline)


def from_facts(ledger: Ledger, as_of: date) -> Liability:
    k = outcome_facts.knowledge(ledger.engine, CONTRACT)
    return liability(k.contract, k.cases, k.coverage, as_of)


def follow(ledger: Ledger, lines: list[str], source: str) -> list[tuple]:
    """Record a batch, follow it, and check the followed rows against the rules and a rebuild."""
    ledger.record_lines(lines, source)
    ledger.follow(latest.catch_up, latest.NAME)
    followed = snapshot(ledger.engine)
    for as_of in AS_OFS:
        assert figures(fast(ledger, as_of)) == figures(from_facts(ledger, as_of)), as_of
        for case in ("A", "B", "C"):
            explained = queries.explain_case(ledger.engine, CONTRACT, case, as_of)
            computed = from_facts(ledger, as_of).weeks_of(case)
            assert explained.weeks == computed, (as_of, case)
    readmodel.rebuild(ledger.engine, ledger.log)
    latest.rebuild(ledger.engine, ledger.log)
    assert snapshot(ledger.engine) == followed, source
    return followed


def owed(result: Liability) -> dict[str, Decimal]:
    return {p.payer: p.owed for p in result.payers}


def capped(result: Liability) -> dict[str, Decimal]:
    return {p.payer: p.capped for p in result.payers}


def test_the_latest_model_follows_a_late_coverage_and_a_binding_cap_as_the_rules_do(db_url):
    ledger = Ledger(db_url)
    follow(ledger, BATCH_1, "batch 1")
    # Sutton verified to 02-28: A 7 outcome + 3 unverified, B 5 + 1 in care + 4 unverified.
    end = fast(ledger, date(2018, 3, 31))
    assert end.totals.weeks.as_dict() == {
        "outcome": 22, "in_care": 1, "unverified": 7, "pending": 0
    }
    assert owed(end) == {"MRT": Decimal("1500.00"), "SUT": Decimal("1800.00"),
                         "CBO": Decimal("1100.00")}  # 12 x 150, 10 x 150, 22 x 50
    assert end.totals.provisional == Decimal("1400.00")  # 7 x 200, before caps
    assert not end.totals.capped

    rows = follow(ledger, BATCH_2, "batch 2 (late care data)")
    # Only the two Sutton cases are assessed again: their weeks' verification moved.
    assert len(rows) == 3
    end = fast(ledger, date(2018, 3, 31))
    assert end.totals.weeks.as_dict() == {
        "outcome": 29, "in_care": 1, "unverified": 0, "pending": 0
    }
    assert owed(end) == {"MRT": Decimal("1500.00"), "SUT": Decimal("2000.00"),
                         "CBO": Decimal("1450.00")}  # the cap; 29 x 50 uncapped
    assert capped(end)["SUT"] == Decimal("850.00")  # 19 x 150 - 2,000
    march_4 = fast(ledger, date(2018, 3, 4))
    assert owed(march_4)["SUT"] == Decimal("2000.00")  # 14 weeks: 13 x 150 + 50
    assert capped(march_4)["SUT"] == Decimal("100.00")
    (b,) = [c for c in march_4.cases if c.case == "B"]
    assert (b.owed_borough, b.capped_borough) == (Decimal("800.00"), Decimal("100.00"))
    weeks = latest.weeks_of(ledger.engine, CONTRACT, "B")
    assert weeks[(6, date(2018, 3, 4))].borough_amount == Decimal("50.00")
    assert weeks[(6, date(2018, 3, 4))].capped_borough == Decimal("100.00")

    follow(ledger, BATCH_3, "batch 3 (A's week 0 in care)")
    march_4 = fast(ledger, date(2018, 3, 4))
    assert owed(march_4)["SUT"] == Decimal("1950.00")  # 13 outcome weeks, none capped
    assert capped(march_4)["SUT"] == Decimal("0.00")
    end = fast(ledger, date(2018, 3, 31))
    assert owed(end)["SUT"] == Decimal("2000.00")
    assert capped(end)["SUT"] == Decimal("700.00")  # 18 x 150 - 2,000
    weeks = latest.weeks_of(ledger.engine, CONTRACT, "A")
    assert weeks[(0, date(2018, 1, 14))].status == "in_care"
    assert weeks[(8, date(2018, 3, 11))].borough_amount == Decimal("50.00")


@pytest.mark.parametrize(
    "as_of", [date(2018, 1, 28), date(2018, 1, 29), date(2018, 2, 3), date(2018, 2, 4)]
)
def test_a_week_is_owed_from_its_last_day_and_pending_before(sqlite_url, as_of):
    ledger = Ledger(sqlite_url)
    ledger.record_lines([*BATCH_1, *BATCH_2], "all")
    ledger.follow(latest.catch_up, latest.NAME)
    result = fast(ledger, as_of)
    assert figures(result) == figures(from_facts(ledger, as_of))
    found = [c for c in result.cases if c.case == "A"]
    if as_of < date(2018, 1, 29):  # engaged 28 days from 2018-01-01: tracked from 01-29
        assert not found
        return
    (a,) = found
    # A's week k ends 2018-01-14 + 7k: owed once that day is over, pending until then.
    elapsed = (as_of - date(2018, 1, 14)).days // 7 + 1
    assert (a.weeks.outcome, a.weeks.pending) == (elapsed, 10 - elapsed)
    assert a.days_in_care + a.days_out_of_care == (as_of - date(2018, 1, 8)).days + 1


def test_under_consecutive_runs_a_unit_is_owed_from_its_seventh_day_mid_block(sqlite_url):
    """After batch 3 A's out-of-care run starts 2018-01-12 (day 4 of its block 0), so its
    7-day units end on Thursdays, mid-block: every day's answer must count them then."""
    terms = {**TERMS, "week_rule": "consecutive_runs"}
    runs = [line.replace(json.dumps(TERMS)[1:-1], json.dumps(terms)[1:-1]) for line in BATCH_1]
    assert runs != BATCH_1
    ledger = Ledger(sqlite_url)
    ledger.record_lines(runs, "batch 1")
    ledger.follow(latest.catch_up, latest.NAME)
    ledger.record_lines([*BATCH_2, *BATCH_3], "batches 2 and 3")
    ledger.follow(latest.catch_up, latest.NAME)
    followed = snapshot(ledger.engine)
    latest.rebuild(ledger.engine, ledger.log)
    assert snapshot(ledger.engine) == followed
    for n in range(70):
        as_of = date.fromordinal(date(2018, 1, 29).toordinal() + n)
        assert figures(fast(ledger, as_of)) == figures(from_facts(ledger, as_of)), as_of
    # A: units of 7 days from 2018-01-12 end 01-18, 01-25, ..., 03-15 (a run to 03-18: 9 units).
    # On Thu 2018-02-01, day 3 of block 3, the third unit is owed; blocks 0-2 are over.
    for day, units in ((date(2018, 1, 31), 2), (date(2018, 2, 1), 3)):
        (a,) = [c for c in fast(ledger, day).cases if c.case == "A"]
        assert a.weeks.as_dict() == {
            "outcome": units, "in_care": 1, "unverified": 0, "pending": 7
        }


def test_one_sorted_pass_reads_each_case_as_the_reads_by_stream_do(db_url):
    """A rebuild reads the contract's case facts in one pass ordered by case: each case's facts
    are those, in log order, that its reads by stream give, and `wanted` only narrows them."""
    ledger = Ledger(db_url)
    ledger.record_lines([*BATCH_1, *BATCH_2, *BATCH_3], "all")
    readmodel.catch_up(ledger.engine, ledger.log)
    with ledger.engine.connect() as conn:
        passed = dict(outcome_facts.latest_case_facts(conn, CONTRACT))
        assert sorted(passed) == ["A", "B", "C"]
        for case, facts in passed.items():
            assert facts == outcome_facts.latest_facts(conn, CONTRACT, [case]), case
        assert dict(outcome_facts.latest_case_facts(conn, CONTRACT, {"B"})) == {"B": passed["B"]}


@pytest.mark.parametrize("share", [10**6, 0], ids=["one pass", "by stream"])
def test_a_refresh_reads_its_cases_in_one_sorted_pass_or_by_stream_with_the_same_rows(
    db_url, monkeypatch, share
):
    """A refresh of more than a share of the contract's stored cases reads the contract's
    case facts in one pass, of fewer by stream (a build always in one pass): each way forced
    for every batch (the late care data touches 2 cases of 3, A's late stay 1), the same rows
    as a rebuild and the answers of the rules."""
    monkeypatch.setattr(latest, "BY_STREAM_SHARE", share)
    reads: list[str] = []
    every_case, these_cases = latest._every_case, latest._these_cases

    def one_pass(conn, contract, wanted=None):
        reads.append("all" if wanted is None else "one pass")
        return every_case(conn, contract, wanted)

    def by_stream(conn, contract, ids):
        reads.append("by stream")
        return these_cases(conn, contract, ids)

    monkeypatch.setattr(latest, "_every_case", one_pass)
    monkeypatch.setattr(latest, "_these_cases", by_stream)
    ledger = Ledger(db_url)
    way = "one pass" if share else "by stream"
    for lines, source in ((BATCH_1, "batch 1"), (BATCH_2, "batch 2"), (BATCH_3, "batch 3")):
        reads.clear()
        follow(ledger, lines, source)
        # Followed (a first build reads everything), then rebuilt by `follow`.
        assert reads == ["all" if source == "batch 1" else way, "all"], source
    end = fast(ledger, date(2018, 3, 31))
    assert owed(end)["SUT"] == Decimal("2000.00")
    assert capped(end)["SUT"] == Decimal("700.00")  # 18 x 150 - 2,000


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_a_row_stores_the_json_text_the_standard_library_writes(value):
    """orjson writes the rows' JSON columns, character for character as `json.dumps` does
    (sorted keys, no spaces, ASCII escapes): rows are equal whichever wrote them."""
    assert latest_row.json_text(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)
