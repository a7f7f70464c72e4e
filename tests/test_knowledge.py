"""The two clocks: the facts known at a time, corrections and retractions applied (SPEC §2)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from soc_ledger.domain.events import EVENT_ADAPTER
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt, Recorded, known_facts
from tests.helpers import line, run, write_lines

STREAM = '["plcip", "C1"]'


def _rec(version: int, recorded: str, target_version: int | None = None, **fields) -> Recorded:
    fields.setdefault("contract", "plcip")
    return Recorded(
        position=version,
        stream=STREAM,
        version=version,
        recorded_on=datetime.fromisoformat(recorded).replace(tzinfo=UTC),
        appended_at=datetime(2026, 1, 1, tzinfo=UTC),
        event=EVENT_ADAPTER.validate_python(fields),
        target_version=target_version,
    )


def _end(version: int = 1) -> Recorded:
    return _rec(version, "2019-05-20", type="CareEpisodeEnded", effective="2019-01-21",
                case="C1", episode="E1", reason="E11", key="end")


def _fix(version: int, recorded: str, target: int, **changes) -> Recorded:
    return _rec(version, recorded, target, type="EventCorrected", effective=recorded,
                target="x", changes=changes, reason="fix")


def _retract(version: int, recorded: str, target: int) -> Recorded:
    return _rec(version, recorded, target, type="EventRetracted", effective=recorded,
                target="x", reason="withdrawn")


def _end_date(history: list[Recorded], known: date | None) -> date | None:
    facts = known_facts(history, KnownAt.on(known) if known else EVERYTHING)
    return facts[0].event.effective if facts else None


def test_a_correction_applies_from_its_recorded_date_on():
    history = [_end(), _fix(2, "2019-09-02", 1, effective="2019-01-28")]
    assert _end_date(history, date(2019, 9, 1)) == date(2019, 1, 21)
    assert _end_date(history, date(2019, 9, 2)) == date(2019, 1, 28)
    assert _end_date(history, None) == date(2019, 1, 28)


def test_nothing_recorded_after_known_at_is_seen():
    assert _end_date([_end()], date(2019, 5, 19)) is None


def test_later_corrections_apply_over_earlier_ones():
    history = [
        _end(),
        _fix(2, "2019-09-02", 1, effective="2019-01-28"),
        _fix(3, "2019-10-01", 1, effective="2019-02-04"),
    ]
    assert _end_date(history, date(2019, 9, 30)) == date(2019, 1, 28)
    assert _end_date(history, None) == date(2019, 2, 4)


def test_a_correction_of_a_correction_changes_what_the_correction_says():
    history = [
        _end(),
        _fix(2, "2019-09-02", 1, effective="2019-01-28"),
        _fix(3, "2019-10-01", 2, changes={"effective": "2019-01-25"}),
    ]
    assert _end_date(history, date(2019, 9, 30)) == date(2019, 1, 28)
    assert _end_date(history, None) == date(2019, 1, 25)


def test_a_retraction_of_a_correction_restores_the_earlier_reading():
    history = [
        _end(),
        _fix(2, "2019-09-02", 1, effective="2019-01-28"),
        _retract(3, "2019-10-01", 2),
    ]
    assert _end_date(history, date(2019, 9, 30)) == date(2019, 1, 28)
    assert _end_date(history, None) == date(2019, 1, 21)


def test_a_retracted_event_counts_as_never_having_happened_from_then_on():
    history = [_end(), _retract(2, "2019-10-01", 1)]
    assert _end_date(history, date(2019, 9, 30)) == date(2019, 1, 21)
    assert _end_date(history, None) is None


def test_a_retraction_of_a_retraction_brings_the_event_back():
    history = [_end(), _retract(2, "2019-10-01", 1), _retract(3, "2019-11-01", 2)]
    assert _end_date(history, date(2019, 10, 15)) is None
    assert _end_date(history, None) == date(2019, 1, 21)


def test_a_fact_names_the_events_that_decided_it():
    history = [_end(), _fix(2, "2019-09-02", 1, effective="2019-01-28")]
    (fact,) = known_facts(history)
    assert [r.version for r in fact.because] == [1, 2]


C = "plcip"


def test_corrections_through_record_and_events(tmp_path, sqlite_url, quickstart_lines):
    """End to end: a correction of a correction, then its retraction, via the CLI."""
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    more = [
        line(type="EventCorrected", contract=C, effective="2019-10-01", recorded_on="2019-10-01",
             key="fix-2", target="fix-ep-C001-1-end",
             changes={"changes": {"effective": "2019-01-25"}}, reason="second look"),
        line(type="EventRetracted", contract=C, effective="2019-11-01", recorded_on="2019-11-01",
             key="unfix", target="fix-2", reason="second look was wrong"),
    ]
    result = run("record", write_lines(tmp_path / "m.jsonl", more), "--db", sqlite_url)
    assert result.exit_code == 0, result.output

    from soc_ledger.ledger.service import Ledger

    with Ledger(sqlite_url) as ledger:
        history = list(ledger.log.records())

    def end_of_stay(known: date | None) -> date:
        facts = known_facts(history, KnownAt.on(known) if known else EVERYTHING)
        (fact,) = [f for f in facts if f.event.type == "CareEpisodeEnded"]
        return fact.event.effective

    assert end_of_stay(date(2019, 6, 1)) == date(2019, 1, 21)
    assert end_of_stay(date(2019, 9, 15)) == date(2019, 1, 28)
    assert end_of_stay(date(2019, 10, 15)) == date(2019, 1, 25)
    assert end_of_stay(None) == date(2019, 1, 28)


def test_a_correction_that_would_make_episodes_overlap_is_rejected(
    tmp_path, sqlite_url, quickstart_lines
):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    more = [
        line(type="CareEpisodeStarted", contract=C, effective="2019-03-04", key="ep2",
             recorded_on="2019-05-20", case="C001", episode="C001-2", legal_status="C2",
             placement="U1"),
        line(type="EventCorrected", contract=C, effective="2019-12-01", key="bad-fix",
             recorded_on="2019-12-01", target="ep-C001-1-end",
             changes={"effective": "2019-03-10"}, reason="typo"),
    ]
    result = run("record", write_lines(tmp_path / "m.jsonl", more), "--db", sqlite_url)
    assert result.exit_code != 0
    assert "m.jsonl:2: effective: episode 'C001-2' overlaps episode 'C001-1'" in result.stderr


def test_a_correction_cannot_change_what_an_event_is(tmp_path, sqlite_url, quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    bad = [
        line(type="EventCorrected", contract=C, effective="2019-12-01", target="acc-C001",
             changes={"type": "ReferralDeclined"}, reason="x"),
        line(type="EventCorrected", contract=C, effective="2019-12-01", target="acc-C001",
             changes={"intervention": "CBT"}, reason="x"),
        line(type="EventCorrected", contract=C, effective="2019-12-01", target="#5",
             changes={"colour": "red"}, reason="x"),
    ]
    result = run("record", write_lines(tmp_path / "m.jsonl", bad), "--db", sqlite_url)
    assert result.exit_code != 0
    err = result.stderr
    assert "m.jsonl:1: changes.type: a correction cannot change 'type'" in err
    assert "m.jsonl:2: changes.intervention:" in err
    assert "m.jsonl:3: changes.colour: ReferralAccepted has no such field" in err


def test_a_correction_by_position_of_an_earlier_event(tmp_path, sqlite_url, quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    fix = line(type="EventCorrected", contract=C, effective="2019-12-01", target="#6",
               changes={"effective": "2018-03-15"}, reason="meeting date misread")
    result = run("record", write_lines(tmp_path / "m.jsonl", [fix]), "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    trail = json.loads(run("events", "--db", sqlite_url, "--format", "json").stdout)
    assert trail[-1]["event"]["changes"] == {"effective": "2018-03-15"}
