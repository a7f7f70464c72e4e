"""`record` and `events`: all or nothing, every problem named by file, line and field."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import line, run, trail, write_lines

C = "plcip"


def _bad_file(tmp_path: Path, base: list[str], bad: str, at: int = 7) -> str:
    """The quick-start file with `bad` inserted so that it is line `at`."""
    lines = base[: at - 1] + [bad] + base[at - 1 :]
    return write_lines(tmp_path / "bad.jsonl", lines)


def _accept_c1(**over) -> str:
    fields = dict(
        type="ReferralAccepted", contract=C, effective="2018-03-10", case="C001", intervention="FFT"
    )
    fields.update(over)
    return line(**fields)


BAD_LINES = {
    "unknown event type": (line(type="ReferralLost", contract=C, effective="2018-04-01"), "type"),
    "bad date": (
        line(type="BoosterSession", contract=C, effective="2018-02-30", case="C001"),
        "effective",
    ),
    "negative amount": (
        line(
            type="CostIncurred",
            contract=C,
            effective="2018-04-01",
            category="delivery",
            amount="-5.00",
        ),
        "amount",
    ),
    "non-numeric amount": (
        line(
            type="CostIncurred",
            contract=C,
            effective="2018-04-01",
            category="delivery",
            amount="lots",
        ),
        "amount",
    ),
    "binary float amount with fractions of a penny": (
        '{"type": "CostIncurred", "contract": "plcip", "effective": "2018-04-01", '
        '"category": "delivery", "amount": 10.005}',
        "amount",
    ),
    "unknown field": (
        line(type="BoosterSession", contract=C, effective="2018-09-01", case="C001", colour="red"),
        "colour",
    ),
    "missing required field": (
        line(type="BoroughAcceded", contract=C, effective="2018-09-01", borough="BDG"),
        "name",
    ),
    "referral from a borough that has not acceded on that date": (
        line(
            type="ReferralReceived",
            contract=C,
            effective="2018-03-05",
            case="C900",
            borough="BDG",
            child_ref="X1",
            date_of_birth="2006-01-01",
            behaviours=[],
            in_care=False,
        ),
        "borough",
    ),
    "age outside the range without an exception": (
        line(
            type="ReferralReceived",
            contract=C,
            effective="2018-03-05",
            case="C901",
            borough="SUT",
            child_ref="X2",
            date_of_birth="2000-01-01",
            behaviours=[],
            in_care=False,
        ),
        "date_of_birth",
    ),
    "second acceptance of a case": (_accept_c1(effective="2018-03-20"), "type"),
    "a first meeting before acceptance": (
        line(
            type="ReferralReceived",
            contract=C,
            effective="2018-03-05",
            case="C902",
            borough="SUT",
            child_ref="X3",
            date_of_birth="2006-01-01",
            behaviours=[],
            in_care=False,
        )
        + "\n"
        + line(
            type="ReferralAccepted",
            contract=C,
            effective="2018-03-20",
            case="C902",
            intervention="FFT",
        )
        + "\n"
        + line(type="FirstFamilyMeeting", contract=C, effective="2018-03-19", case="C902"),
        "effective",
    ),
    "an episode that ends before it starts": (
        line(
            type="CareEpisodeStarted",
            contract=C,
            effective="2019-06-10",
            case="C001",
            episode="E9",
            legal_status="C2",
            placement="U1",
        )
        + "\n"
        + line(
            type="CareEpisodeEnded",
            contract=C,
            effective="2019-06-01",
            case="C001",
            episode="E9",
            reason="E11",
        ),
        "effective",
    ),
    "an episode that overlaps another of the same case": (
        line(
            type="CareEpisodeStarted",
            contract=C,
            effective="2019-01-07",
            case="C001",
            episode="E10",
            legal_status="C2",
            placement="U1",
        )
        + "\n"
        + line(
            type="CareEpisodeStarted",
            contract=C,
            effective="2019-01-14",
            case="C001",
            episode="E11",
            legal_status="C2",
            placement="U1",
        ),
        "effective",
    ),
    "a correction of an unknown key": (
        line(
            type="EventCorrected",
            contract=C,
            effective="2019-01-01",
            target="no-such-key",
            changes={"effective": "2019-01-02"},
            reason="typo",
        ),
        "target",
    ),
    "a future recorded_on": (
        line(
            type="BoosterSession",
            contract=C,
            effective="2018-09-01",
            case="C001",
            recorded_on="2099-01-01",
        ),
        "recorded_on",
    ),
    "a referral accepted after referrals close": (
        line(
            type="ReferralReceived",
            contract=C,
            effective="2021-06-01",
            case="C903",
            borough="SUT",
            child_ref="X4",
            date_of_birth="2008-01-01",
            behaviours=[],
            in_care=False,
        )
        + "\n"
        + line(
            type="ReferralAccepted",
            contract=C,
            effective="2021-07-01",
            case="C903",
            intervention="MST",
        ),
        "effective",
    ),
    "not JSON at all": ('{"type": "BoosterSession", "contract": ', "(line)"),
}


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_a_bad_line_is_named_and_nothing_is_written(name, tmp_path, sqlite_url, quickstart_lines):
    # The first six lines are already in the store; the bad line is line 7 of a new file.
    run("record", write_lines(tmp_path / "first.jsonl", quickstart_lines[:6]), "--db", sqlite_url)
    before = trail(sqlite_url)
    bad, field = BAD_LINES[name]
    bad_lines = bad.split("\n")
    path = _bad_file(tmp_path, quickstart_lines, bad_lines[0]) if len(bad_lines) == 1 else None
    if path is None:
        # Several lines: the offending one is the last, placed so that it is line 7 or later.
        path = write_lines(tmp_path / "bad.jsonl", quickstart_lines[:6] + bad_lines)
    result = run("record", path, "--db", sqlite_url)
    assert result.exit_code != 0
    problems = [ln for ln in result.stderr.splitlines() if ln.startswith(path + ":")]
    assert problems, result.stderr
    expected_line = 7 if len(bad_lines) == 1 else 6 + len(bad_lines)
    assert any(p.startswith(f"{path}:{expected_line}: {field}") for p in problems), result.stderr
    assert "nothing was written" in result.stderr
    assert trail(sqlite_url) == before


def test_every_problem_in_a_file_is_listed_not_just_the_first(tmp_path, sqlite_url):
    path = write_lines(
        tmp_path / "two.jsonl",
        [
            line(type="Nope", contract=C, effective="2018-01-01"),
            line(type="BoosterSession", contract=C, effective="2018-13-01", case="C1"),
        ],
    )
    result = run("record", path, "--db", sqlite_url)
    assert result.exit_code != 0
    assert f"{path}:1: type: unknown event type 'Nope'" in result.stderr
    assert f"{path}:2: effective:" in result.stderr


def test_recording_the_same_file_twice_appends_nothing_the_second_time(
    db_url, tmp_path, quickstart_lines
):
    path = write_lines(tmp_path / "q.jsonl", quickstart_lines)
    first = run("record", path, "--db", db_url)
    assert first.exit_code == 0, first.output
    assert "appended 11, already present 0" in first.stdout
    again = run("record", path, "--db", db_url)
    assert again.exit_code == 0
    assert "appended 0, already present 11" in again.stdout
    assert len(trail(db_url)) == 11


def test_a_key_reused_for_different_content_is_an_error_naming_the_key(
    tmp_path, sqlite_url, quickstart_lines
):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    changed = json.loads(quickstart_lines[2])
    changed["name"] = "London Borough of Merton"
    result = run(
        "record", write_lines(tmp_path / "k.jsonl", [json.dumps(changed)]), "--db", sqlite_url
    )
    assert result.exit_code != 0
    assert "k.jsonl:1: key: key 'accede-MRT' is already used by a different event" in result.stderr


def test_keys_are_unique_per_contract_not_per_store(tmp_path, sqlite_url, quickstart_lines):
    other = [ln.replace('"plcip"', '"other"') for ln in quickstart_lines[:3]]
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines[:3]), "--db", sqlite_url)
    result = run("record", write_lines(tmp_path / "o.jsonl", other), "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    assert "appended 3, already present 0" in result.stdout


def test_identical_keyless_lines_are_both_kept_and_not_doubled_on_rerecord(
    tmp_path, sqlite_url, quickstart_lines
):
    booster = line(
        type="BoosterSession",
        contract=C,
        effective="2018-09-01",
        case="C001",
        recorded_on="2018-09-02",
    )
    path = write_lines(tmp_path / "b.jsonl", quickstart_lines + [booster, booster])
    assert "appended 13" in run("record", path, "--db", sqlite_url).stdout
    assert "appended 0, already present 13" in run("record", path, "--db", sqlite_url).stdout
    path3 = write_lines(tmp_path / "b3.jsonl", [booster, booster, booster])
    assert "appended 1, already present 2" in run("record", path3, "--db", sqlite_url).stdout


def test_recorded_on_defaults_to_the_moment_of_append_and_may_be_earlier(
    tmp_path, sqlite_url, quickstart_lines
):
    booster = line(type="BoosterSession", contract=C, effective="2018-09-01", case="C001")
    path = write_lines(tmp_path / "q.jsonl", quickstart_lines + [booster])
    run("record", path, "--db", sqlite_url)
    entries = trail(sqlite_url)
    backfilled, defaulted = entries[0], entries[-1]
    assert backfilled["recorded_on"] == "2017-09-01T00:00:00+00:00"
    assert defaulted["recorded_on"] == defaulted["appended_at"]


def test_known_at_hides_what_was_recorded_later(tmp_path, sqlite_url, quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    result = run("events", "--db", sqlite_url, "--known-at", "2018-03-10", "--format", "json")
    # Contract, two accessions, the referral (5 March) and the acceptance (9 March).
    assert [e["position"] for e in json.loads(result.stdout)] == [1, 2, 3, 4, 5]


def test_events_filters_by_case_and_type(tmp_path, sqlite_url, quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    by_type = json.loads(
        run("events", "--db", sqlite_url, "--type", "BoroughAcceded", "--format", "json").stdout
    )
    assert [e["key"] for e in by_type] == ["accede-SUT", "accede-MRT"]
    by_case = json.loads(
        run("events", "--db", sqlite_url, "--case", "C001", "--format", "json").stdout
    )
    # Its six events and the correction of its episode's end (a correction takes its
    # target's case).
    assert len(by_case) == 7
    assert by_case[-1]["type"] == "EventCorrected" and by_case[-1]["case"] == "C001"
    csv_out = run("events", "--db", sqlite_url, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == (
        "position,appended_at,recorded_on,effective,type,case,key,source,target,reason,changes"
        ",contract,as_of,known_at,log_position"
    )
    assert len(csv_out) == 12


def test_a_child_ref_is_never_stored_in_clear(tmp_path, sqlite_url, quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    raw = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert b"SUT-000123" not in raw
    assert b"2005-06-14" not in raw  # only the birth month is kept
    referral = [e for e in trail(sqlite_url) if e["type"] == "ReferralReceived"][0]
    assert referral["event"]["child_ref"].startswith("hmac-sha256:")
    assert referral["event"]["date_of_birth"] == "2005-06"


def test_each_event_is_chained_to_the_previous_by_hash(tmp_path, sqlite_url, quickstart_lines):
    from soc_ledger.ledger.store import GENESIS, seal

    run("record", write_lines(tmp_path / "a.jsonl", quickstart_lines[:4]), "--db", sqlite_url)
    run("record", write_lines(tmp_path / "b.jsonl", quickstart_lines[4:]), "--db", sqlite_url)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    states = [
        json.loads(r[0]) for r in conn.execute("SELECT state FROM stored_events ORDER BY rowid")
    ]
    prev = GENESIS
    for state in states:
        assert state["prev_hash"] == prev
        assert seal(state) == state["hash"]
        prev = state["hash"]
    assert len(states) == 11


def test_the_same_file_in_sqlite_and_postgres_gives_the_same_trail(
    tmp_path, sqlite_url, pg_url, quickstart_lines
):
    path = write_lines(tmp_path / "q.jsonl", quickstart_lines)
    assert run("record", path, "--db", sqlite_url).exit_code == 0
    assert run("record", path, "--db", pg_url).exit_code == 0

    def without_append_time(db: str) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "appended_at"} for e in trail(db)]

    assert without_append_time(sqlite_url) == without_append_time(pg_url)


def test_stdin_is_read_with_a_dash(sqlite_url, quickstart_lines):
    result = run("record", "-", "--db", sqlite_url, input="\n".join(quickstart_lines[:3]))
    assert result.exit_code == 0
    assert "<stdin>: appended 3" in result.stdout


def test_an_unsupported_database_url_is_a_one_line_error():
    result = run("events", "--db", "mysql://x/y")
    assert result.exit_code != 0
    assert result.stderr.strip().startswith("error: unsupported database URL")
    assert len(result.stderr.strip().splitlines()) == 1


def _episode(ep: str, start: str, end: str | None, recorded: str) -> list[str]:
    lines = [line(type="CareEpisodeStarted", contract=C, effective=start, recorded_on=recorded,
                  key=f"{ep}-s", case="C001", episode=ep, legal_status="C2", placement="U1")]
    if end:
        lines.append(line(type="CareEpisodeEnded", contract=C, effective=end,
                          recorded_on=recorded, key=f"{ep}-e", case="C001", episode=ep,
                          reason="E11"))
    return lines


def test_an_earlier_episode_may_be_recorded_after_a_later_one(tmp_path, sqlite_url,
                                                               quickstart_lines):
    # C001 has a stay 2019-01-07 to 2019-01-28; a return received later reports one in 2018.
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    late = _episode("E0", "2018-11-05", "2018-11-12", "2019-10-01")
    result = run("record", write_lines(tmp_path / "late.jsonl", late), "--db", sqlite_url)
    assert result.exit_code == 0, result.output


def test_an_episode_left_open_across_a_later_one_is_rejected_at_the_end_of_the_batch(
    tmp_path, sqlite_url, quickstart_lines
):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    # Starts before C001-1 and never ends: it would still be open when C001-1 starts.
    path = write_lines(tmp_path / "open.jsonl", _episode("E0", "2018-11-05", None, "2019-10-01"))
    result = run("record", path, "--db", sqlite_url)
    assert result.exit_code != 0
    assert f"{path}:1: effective: episode 'C001-1' overlaps episode 'E0'" in result.stderr


def test_episodes_are_checked_in_file_order_and_as_the_batch_leaves_them(tmp_path, sqlite_url,
                                                                     quickstart_lines):
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    # Two later stays, both starts first then both ends: legal once the batch is complete.
    a, b = _episode("E5", "2019-05-01", "2019-05-10", "2019-10-01"), _episode(
        "E6", "2019-06-01", "2019-06-03", "2019-10-01")
    path = write_lines(tmp_path / "two.jsonl", [a[0], b[0], a[1], b[1]])
    result = run("record", path, "--db", sqlite_url)
    assert result.exit_code != 0  # E6 starts while E5 is still open as read in file order
    path = write_lines(tmp_path / "two.jsonl", [b[0], a[0], a[1], b[1]])
    assert run("record", path, "--db", sqlite_url).exit_code == 0
