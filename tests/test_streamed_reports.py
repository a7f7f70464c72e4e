"""The streamed reports answer as the full computation does.

`queries.liability_at` at an earlier `known_at` (or under `--week-rule`) and `diff.diff`
read the contract's cases one at a time (`liability.LiabilityStream`) and keep no week, unless a
cap may bind, when they fall back to computing every week of the contract at once. Here:

- on random histories (tests/history_strategies.py) recorded into real SQLite stores, the
  streamed liability at random (as_of, known_at) has every figure of `liability.liability` over
  `outcome_facts.knowledge` (per case, per borough, per payer, the totals, each case's engagement),
  and the streamed diff every change, responsible event and total of the full one;
- on a small history worked by hand, on SQLite and PostgreSQL (a server-side cursor, and
  the database deciding which reading knows each fact version): with no cap, and with a cap
  too large to bind, the reports are streamed; with a cap that binds, they fall back.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from sqlalchemy import Engine

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import diff, latest, outcome_facts, queries
from tests.history_strategies import (
    CONTRACT,
    TERMS,
    History,
    as_of_days,
    histories,
    knowledges,
    store_settings,
)

SETTINGS = store_settings(24)


def record(ledger: Ledger, lines: list[str]) -> None:
    ledger.record_lines(lines, "history")
    ledger.follow(latest.catch_up, latest.NAME)


# --- comparing answers --------------------------------------------------------------------------


def figures(result: Liability) -> dict[str, Any]:
    """Every figure a liability report shows, and each case's engagement (not the weeks: a
    streamed answer keeps none)."""
    return {
        "contract": result.contract,
        "as_of": result.as_of,
        "week_rule": result.week_rule,
        "top_up_funder": result.top_up_funder,
        "totals": result.totals,
        "boroughs": result.boroughs,
        "payers": result.payers,
        "cases": result.cases,
        "engagement": list(result.engagement.items()),  # in case order, as `liability` lists
    }


def full_liability(
    engine: Engine, as_of: date, known_at: KnownAt, week_rule: str | None = None
) -> Liability | str:
    try:
        k = outcome_facts.knowledge(engine, CONTRACT, known_at)
    except QueryError as exc:
        return f"QueryError: {exc}"
    return liability(k.contract, k.cases, k.coverage, as_of, week_rule)


def check_liability(
    engine: Engine, as_of: date, known_at: KnownAt, week_rule: str | None = None
) -> str:
    """The streamed liability (when it streams) and `liability_at` against the full one;
    which way it went."""
    full = full_liability(engine, as_of, known_at, week_rule)
    if isinstance(full, str):
        with pytest.raises(QueryError) as raised:
            queries.liability_at(engine, CONTRACT, as_of, known_at, week_rule)
        assert f"QueryError: {raised.value}" == full
        return "not agreed"
    streamed = queries._streamed_liability(engine, CONTRACT, as_of, known_at, week_rule)
    if streamed is not None:
        assert figures(streamed) == figures(full)
        assert streamed.weeks == () and all(not w for _, w in streamed.by_case.values())
        # The fallback is taken only when needed: whatever streams caps nothing.
        assert full.totals.capped == 0
    answered = queries.liability_at(engine, CONTRACT, as_of, known_at, week_rule)
    assert figures(answered) == figures(full)
    return "streamed" if streamed is not None else "fell back"


def diff_figures(d: diff.Diff) -> dict[str, Any]:
    return {
        "contract": d.contract,
        "as_of": d.as_of,
        "before": figures(d.before),
        "after": figures(d.after),
        "changes": d.changes,  # each week before and after, its borough and responsible events
        "refs": d.refs,
        "total_change": d.total_change,
        "by_payer": d.by_payer(),
    }


def check_diff(engine: Engine, as_of: date, first: KnownAt, second: KnownAt) -> str:
    """The streamed diff (when it streams) and `diff` against the full computation."""
    try:
        full = diff._full_diff(engine, CONTRACT, as_of, first, second)
    except QueryError as exc:
        with pytest.raises(QueryError) as raised:
            diff.diff(engine, CONTRACT, as_of, first, second)
        assert str(raised.value) == str(exc)
        return "not agreed"
    streamed = diff._streamed_diff(engine, CONTRACT, as_of, first, second)
    if streamed is not None:
        assert diff_figures(streamed) == diff_figures(full)
    assert diff_figures(diff.diff(engine, CONTRACT, as_of, first, second)) == diff_figures(
        full
    )
    return "streamed" if streamed is not None else "fell back"


# --- random histories ------------------------------------------------------------------------


@SETTINGS
@given(history=histories(), data=st.data())
def test_streamed_reports_answer_as_the_full_computation(
    tmp_path: Path, history: History, data: st.DataObject
) -> None:
    ks = data.draw(knowledges(history.recorded_days, 3), label="known_at")
    as_ofs = data.draw(st.lists(as_of_days, min_size=1, max_size=2), label="as_of")
    readings = [KnownAt.on(k) for k in ks]
    with Ledger(f"sqlite:///{tempfile.mkdtemp(dir=tmp_path)}/ledger.db") as ledger:
        record(ledger, history.texts)
        engine = ledger.engine
        for as_of in as_ofs:
            for known_at in readings:
                note(f"liability as_of={as_of} known_at={known_at.until}")
                event(f"liability: {check_liability(engine, as_of, known_at)}")
            rule = data.draw(st.sampled_from(["fixed_blocks", "consecutive_runs"]), label="rule")
            what_if = data.draw(st.sampled_from([EVERYTHING, *readings]), label="what-if known")
            note(f"liability as_of={as_of} known_at={what_if.until} week_rule={rule}")
            event(f"what-if: {check_liability(engine, as_of, what_if, rule)}")
            first, second = readings[0], data.draw(
                st.sampled_from([EVERYTHING, *readings[1:]]), label="vs"
            )
            note(f"diff as_of={as_of} {first.until} vs {second.until}")
            event(f"diff: {check_diff(engine, as_of, first, second)}")


# --- a history worked by hand -----------------------------------------------------------------


def line(kind: str, day: str, key: str, recorded: str | None = None, **fields: Any) -> str:
    return json.dumps(
        {"type": kind, "contract": CONTRACT, "effective": day, "recorded_on": recorded or day,
         "key": key, **fields}
    )


def hand_history(caps: list[dict[str, Any]]) -> list[str]:
    """Two boroughs, three tracked cases and one never met, care data arriving late and
    restated, a stay in care recorded late and its end corrected; `caps` as agreed.

    Sutton's borough share is 169.00 a week: S1 and S2 are met on 2018-02-01 (MST: tracked
    from 2018-05-31, 104 weeks), so by 2020-06-01 each has about a hundred outcome weeks once
    Sutton's care data covers them (recorded 2020-07-01).
    """
    def case(name: str, borough: str, met: str, recorded: str) -> list[str]:
        return [
            line("ReferralReceived", "2018-01-15", f"{name}-ref", recorded, case=name,
                 borough=borough, child_ref=name, date_of_birth="2005-03-01",
                 behaviours=["offending"], in_care=False),
            line("ReferralAccepted", "2018-01-20", f"{name}-acc", recorded, case=name,
                 intervention="MST"),
            line("FirstFamilyMeeting", met, f"{name}-ffm", recorded, case=name),
        ]

    return [
        line("ContractAgreed", "2017-09-01", "contract", name="Hand-made contract",
             lead_commissioner="SUT", prime_contractor="PFP", top_up_funder="CBO",
             terms=TERMS, caps=caps),
        line("BoroughAcceded", "2018-01-01", "accede-SUT", borough="SUT", name="Sutton",
             award="original"),
        line("BoroughAcceded", "2018-01-01", "accede-MRT", borough="MRT", name="Merton",
             award="original"),
        *case("S1", "SUT", "2018-02-01", "2018-02-01"),
        *case("S2", "SUT", "2018-02-01", "2018-02-02"),
        *case("M1", "MRT", "2018-03-01", "2018-03-05"),
        line("ReferralReceived", "2018-04-01", "M2-ref", "2018-04-01", case="M2", borough="MRT",
             child_ref="M2", date_of_birth="2006-03-01", behaviours=[], in_care=False),
        line("CareDataReceived", "2019-01-10", "cover-MRT", "2019-01-10", borough="MRT",
             covers_until="2018-12-31"),
        line("CareEpisodeStarted", "2018-09-03", "M1-E0-start", "2019-02-01", case="M1",
             episode="M1-E0", legal_status="C2", placement="U1"),
        line("CareEpisodeEnded", "2018-10-15", "M1-E0-end", "2019-02-01", case="M1",
             episode="M1-E0", reason="E11"),
        line("EventCorrected", "2019-06-01", "M1-E0-end-fix", "2019-06-01",
             target="M1-E0-end", changes={"effective": "2018-11-20"}, reason="restated"),
        line("CareDataReceived", "2020-02-01", "cover-MRT-2", "2020-02-01", borough="MRT",
             covers_until="2019-12-31"),
        line("EventCorrected", "2020-03-01", "cover-MRT-fix", "2020-03-01",
             target="cover-MRT-2", changes={"covers_until": "2019-06-30"}, reason="restated"),
        line("CareDataReceived", "2020-07-01", "cover-SUT", "2020-07-01", borough="SUT",
             covers_until="2020-06-30"),
    ]


def cap(amount: str) -> dict[str, Any]:
    return {"cap": "sut-cap", "payer": "boroughs", "boroughs": ["SUT"], "amount": amount}


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ([], "streamed"),
        ([cap("1000000.00")], "streamed"),  # a cap, counted, that cannot bind
        ([cap("20000.00")], "fell back"),  # S1 and S2: about 200 weeks x 169.00 by 2020-06-01
    ],
    ids=["no cap", "a cap too large to bind", "a cap that binds"],
)
def test_streamed_or_not_the_answers_are_the_full_ones(
    db_url: str, caps: list[dict[str, Any]], expected: str
) -> None:
    with Ledger(db_url) as ledger:
        record(ledger, hand_history(caps))
        engine = ledger.engine
        as_of = date(2020, 6, 1)
        before, after = KnownAt.on(date(2019, 12, 31)), KnownAt.on(date(2020, 8, 1))
        assert check_liability(engine, as_of, after) == expected
        assert check_liability(engine, as_of, before) == "streamed"  # nothing verified yet
        assert check_liability(engine, as_of, EVERYTHING, "consecutive_runs") == expected
        assert check_diff(engine, as_of, before, after) == expected
        assert check_diff(engine, as_of, after, before) == expected
        assert check_diff(engine, as_of, KnownAt.on(date(2019, 5, 1)), before) == "streamed"
        result = queries.liability_at(engine, CONTRACT, as_of, after)
        tracked = {c.case: c.borough for c in result.cases}
        assert tracked == {"M1": "MRT", "S1": "SUT", "S2": "SUT"}
        assert result.engagement["M2"] == "not_accepted"
        if expected == "fell back":
            assert result.totals.capped > 0
            # The fallback still answers with every week, as before.
            assert result.weeks
        else:
            assert result.totals.capped == Decimal(0)
        changed = diff.diff(engine, CONTRACT, as_of, before, after)
        # The restated coverage and the corrected stay each answer for some change.
        because = {p for c in changed.changes for p in c.because}
        types = {changed.refs[p].type for p in because}
        assert {"CareDataReceived", "EventCorrected"} <= types, types


def test_a_case_known_only_at_one_reading(tmp_path: Path) -> None:
    """A case referred after the first reading appears on one side of the diff only."""
    lines = hand_history([])
    late = [
        line("ReferralReceived", "2018-06-01", "S3-ref", "2020-05-01", case="S3", borough="SUT",
             child_ref="S3", date_of_birth="2005-03-01", behaviours=[], in_care=False),
        line("ReferralAccepted", "2018-06-02", "S3-acc", "2020-05-01", case="S3",
             intervention="FFT"),
        line("FirstFamilyMeeting", "2018-06-03", "S3-ffm", "2020-05-01", case="S3"),
    ]
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        record(ledger, sorted([*lines, *late], key=lambda t: json.loads(t)["recorded_on"]))
        engine = ledger.engine
        before, after = KnownAt.on(date(2020, 1, 1)), KnownAt.on(date(2020, 8, 1))
        assert check_diff(engine, date(2020, 6, 1), before, after) == "streamed"
        d = diff.diff(engine, CONTRACT, date(2020, 6, 1), before, after)
        s3 = [c for c in d.changes if c.case == "S3"]
        assert s3 and all(c.before is None and c.borough == "SUT" for c in s3)
