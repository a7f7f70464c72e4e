"""Properties of real SQLite stores holding random histories (tests/history_strategies.py).

(b) Knowing at K is having recorded only up to K: the liability at (as_of, known_at=K) read
    from the full store (the bitemporal facts, then the rules) equals the liability at
    (as_of, everything) read from a second store holding only the lines recorded on or before K
    (the latest-knowledge weeks read model).
(c) Following the log batch by batch gives the same read-model rows as a rebuild from position
    0, and the weeks read model answers as the rules computed from the facts do.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import latest, queries, readmodel
from soc_ledger.projections.outcomes import Liability, liability
from soc_ledger.projections.weeks import TermsTimeline
from tests.history_strategies import CONTRACT, History, histories

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

as_of_days = st.integers(0, 2200).map(lambda n: date(2018, 3, 1) + timedelta(days=n))


def fresh_store(tmp_path: Path) -> Ledger:
    """A new SQLite file per example (the fixture's tmp_path is shared by all examples)."""
    return Ledger(f"sqlite:///{tempfile.mkdtemp(dir=tmp_path)}/ledger.db")


def record(ledger: Ledger, lines: list[str], source: str) -> None:
    if lines:
        ledger.record_lines(lines, source)
    ledger.follow(latest.catch_up, latest.NAME)


def figures(result: Liability) -> dict:
    return {
        "totals": result.totals,
        "boroughs": result.boroughs,
        "payers": result.payers,
        "cases": result.cases,
    }


def week_key(w) -> tuple:
    return (w.case, w.index, w.end, w.status, w.owed, w.capped, w.provisional)


def weeks(result: Liability, elapsed_only: bool = False) -> list[tuple]:
    return sorted(
        week_key(w) for w in result.weeks if not (elapsed_only and w.status == "pending")
    )


def answer(engine, as_of: date, known_at: KnownAt) -> Liability | str:
    try:
        return queries.liability_at(engine, CONTRACT, as_of, known_at)
    except queries.QueryError as exc:
        return f"QueryError: {exc}"


def computed(engine, as_of: date, known_at: KnownAt = EVERYTHING) -> Liability:
    """The rules over the facts known at `known_at`, never the weeks read model."""
    k = queries.knowledge(engine, CONTRACT, known_at)
    return liability(k.contract, k.cases, k.coverage, as_of)


def stored_weeks(engine, result: Liability, as_of: date) -> list[tuple]:
    """The weeks read model's rows that have elapsed by `as_of`, for the cases tracked then."""
    rows = []
    for case in result.cases:
        for (_, end), w in latest.weeks_of(engine, CONTRACT, case.case).items():
            if end <= as_of:
                rows.append(week_key(w))
    return sorted(rows)


# --- (b) known at K == recorded up to K -------------------------------------------------------


@SETTINGS
@given(history=histories(), data=st.data())
def test_known_at_k_equals_a_store_of_what_was_recorded_by_k(tmp_path, history: History, data):
    days = history.recorded_days
    chosen = data.draw(
        st.lists(st.sampled_from(days), min_size=1, max_size=3, unique=True), label="K"
    )
    ks = sorted({days[0] - timedelta(days=1), *chosen, days[-1] + timedelta(days=1)})
    as_ofs = data.draw(st.lists(as_of_days, min_size=2, max_size=3), label="as_of") + [
        date(2024, 6, 30)
    ]
    with fresh_store(tmp_path) as full, fresh_store(tmp_path) as partial:
        record(full, history.texts, "history")
        recorded = 0
        for k in ks:
            # The partial store grows by the lines recorded after the previous K: it always
            # holds exactly the lines recorded on or before this K (a prefix of the file).
            known = history.known_by(k)
            record(partial, known[recorded:], f"up-to-{k}")
            recorded = len(known)
            for as_of in as_ofs:
                note(f"known_at={k} as_of={as_of} ({recorded} of {len(history.lines)} lines)")
                then = answer(full.engine, as_of, KnownAt.on(k))
                now = answer(partial.engine, as_of, EVERYTHING)
                if isinstance(then, str) or isinstance(now, str):
                    assert then == now
                    continue
                assert figures(then) == figures(now)
                assert weeks(then) == weeks(computed(partial.engine, as_of))
                assert weeks(then, elapsed_only=True) == stored_weeks(partial.engine, now, as_of)


# --- (c) following the log == rebuilding it -------------------------------------------------


TABLES = (readmodel.fact_versions, latest.latest_cases, latest.latest_weeks)


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the read models, without autoincrement ids, sorted."""
    rows = {}
    with engine.connect() as conn:
        for table in TABLES:
            columns = [c for c in table.columns if c.name != "id"]
            found = conn.execute(select(*columns)).all()
            rows[table.name] = sorted((tuple(r) for r in found), key=repr)
    return rows


@SETTINGS
@given(history=histories(), data=st.data())
def test_following_the_log_in_batches_equals_a_rebuild(tmp_path, history: History, data):
    days = history.recorded_days
    cuts = sorted(
        data.draw(
            st.lists(st.sampled_from(days[:-1] or days), min_size=1, max_size=3, unique=True),
            label="batches end",
        )
    )
    as_ofs = data.draw(st.lists(as_of_days, min_size=2, max_size=4), label="as_of") + [
        date(2024, 6, 30)
    ]
    with fresh_store(tmp_path) as ledger:
        done = 0
        for cut in [*cuts, None]:
            known = history.texts if cut is None else history.known_by(cut)
            if known[done:]:
                ledger.record_lines(known[done:], f"up-to-{cut}")
            done = len(known)
            # Sometimes let a catch-up span several batches.
            if cut is None or data.draw(st.booleans(), label=f"follow after {cut}"):
                ledger.follow(latest.catch_up, latest.NAME)
        followed = snapshot(ledger.engine)
        assert followed[latest.NAME] or not followed["latest_cases"]

        readmodel.rebuild(ledger.engine, ledger.log)
        latest.rebuild(ledger.engine, ledger.log)
        rebuilt = snapshot(ledger.engine)
        for table in followed:
            assert followed[table] == rebuilt[table], table

        engine = ledger.engine
        timeline = TermsTimeline(queries.terms(engine, CONTRACT))
        for as_of in as_ofs:
            note(f"as_of={as_of}")
            fast = latest.liability_at(engine, CONTRACT, as_of, timeline)
            slow = computed(engine, as_of)
            assert figures(fast) == figures(slow)
            assert stored_weeks(engine, fast, as_of) == weeks(slow, elapsed_only=True)
