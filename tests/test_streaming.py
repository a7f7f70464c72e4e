"""`record` reads, checks and appends a file chunk by chunk inside one transaction. Whatever the
chunk size, a history must be stored exactly as it is in one go (same events, same positions,
same streams and versions, a valid chain and index), and a problem in a late chunk must leave
nothing of the early ones."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from soc_ledger.ledger import index, service
from soc_ledger.ledger.problems import Rejected
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import verification
from tests.history_strategies import History, histories


def stored(ledger: Ledger) -> list[tuple]:
    """What was appended, clocks of appending aside."""
    return [
        (e.position, e.recorded_on, e.case, json.dumps(e.event, sort_keys=True))
        for e in ledger.trail()
    ]


def indexed(ledger: Ledger) -> list[tuple]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(index.events_index).order_by(index.events_index.c.position)
        ).all()
    return [(r.position, r.stream, r.version, r.key, r.digest, r.target_version) for r in rows]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(), chunk=st.integers(1, 7))
def test_any_chunk_size_stores_what_one_go_stores(
    history: History, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = history.texts
    with Ledger(f"sqlite:///{tempfile.mkdtemp(dir=tmp_path)}/whole.db") as whole:
        whole.record_lines(texts, "history")
        expected, expected_index = stored(whole), indexed(whole)
    monkeypatch.setattr(service, "CHUNK", chunk)
    with Ledger(f"sqlite:///{tempfile.mkdtemp(dir=tmp_path)}/chunked.db") as chunked:
        outcome = chunked.record_lines(texts, "history")
        assert outcome.appended == len(expected)
        assert stored(chunked) == expected
        assert indexed(chunked) == expected_index
        report = verification.verify(chunked)
        assert report.ok, [str(f) for f in report.findings]


def test_a_problem_in_a_late_chunk_leaves_nothing(
    db_url: str, quickstart_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK", 3)
    bad = json.loads(quickstart_lines[-1])
    bad["effective"] = "2019-02-30"
    lines = [*quickstart_lines, json.dumps(bad)]
    with Ledger(db_url) as ledger:
        with pytest.raises(Rejected) as rejected:
            ledger.record_lines(lines, "late.jsonl")
        [problem] = rejected.value.problems
        assert (problem.source, problem.line, problem.field) == (
            "late.jsonl",
            len(lines),
            "effective",
        )
        assert index.log_head(ledger.engine, ledger.location) == 0
        with ledger.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(index.events_index)).scalar() == 0
        # ... and the same file without the bad line goes in whole.
        assert ledger.record_lines(quickstart_lines, "good.jsonl").appended == len(
            quickstart_lines
        )


def test_a_rule_broken_in_a_late_chunk_leaves_nothing(
    db_url: str, quickstart_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correction in the last chunk of an event in the first: checked against the history
    read back inside the transaction, and refused with everything before it."""
    monkeypatch.setattr(service, "CHUNK", 2)
    first = json.loads(quickstart_lines[0])
    correction = {
        "type": "EventCorrected",
        "contract": first["contract"],
        "effective": first["effective"],
        "recorded_on": "2020-01-01",
        "target": first["key"],
        "changes": {"contract": "another"},
        "reason": "test",
    }
    with Ledger(db_url) as ledger:
        with pytest.raises(Rejected) as rejected:
            ledger.record_lines([*quickstart_lines, json.dumps(correction)], "late.jsonl")
        assert rejected.value.problems[0].field == "changes.contract"
        assert index.log_head(ledger.engine, ledger.location) == 0


def test_long_lines_are_parsed_in_chunks_bounded_by_characters(
    quickstart_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk ends once its lines hold CHUNK_CHARACTERS (a claim lists a line per case, so
    a file of long lines is not held whole), and every line keeps its own number."""
    from soc_ledger.ledger import parsing

    bound = 2 * max(len(line) for line in quickstart_lines)
    monkeypatch.setattr(parsing, "CHUNK_CHARACTERS", bound)
    chunks = list(parsing.parsed_chunks(quickstart_lines, "q.jsonl", 10_000))
    assert len(chunks) > 1
    numbers = [item.line for incoming, _ in chunks for item in incoming]
    assert numbers == list(range(1, len(quickstart_lines) + 1))
    for incoming, problems in chunks:
        assert not problems
        held = sum(len(quickstart_lines[item.line - 1]) for item in incoming[:-1])
        assert held < bound  # the chunk was cut at the first line that reached the bound
