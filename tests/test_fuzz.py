"""SPEC §11 bad input, fuzzed: malformed JSON Lines through `record` and malformed SSDA903 CSV
through `import-903` never crash the program and never write anything.

Hypothesis draws files from valid ones by mutation: truncated and garbled lines, characters
flipped, inserted and dropped, unknown types and fields, missing fields, wrong JSON types, bad
dates and money, deep nesting, invalid UTF-8, junk bytes, broken CSV headers and rows. For every
file the command either succeeds (a mutation that left the file valid) or exits 1 with each
problem named `file:line: field: what` and a last line `error: ...`, and the store is exactly
as it was. A file with a surely-bad line always fails. Nothing may raise past the command.

More examples for a long hunt: SOC_LEDGER_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from soc_ledger.cli import main
from soc_ledger.ledger.location import Location
from soc_ledger.ledger.ssda903.reading import read_return
from tests.helpers import write_lines
from tests.test_ssda903 import contract_lines, episode, referral, write_return

SETTINGS = settings(
    max_examples=int(os.environ.get("SOC_LEDGER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
C = "plcip"


def invoke(*args: str):
    """The command as a user runs it; any exception that escapes it is a crash."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed: {result.exception!r}") from result.exception
    return result


def stored(db: str) -> list[tuple]:
    """Every stored event, read behind the ledger's back."""
    with sqlite3.connect(Location.parse(db).path) as conn:
        try:
            return conn.execute("SELECT rowid, state FROM stored_events ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:
            return []


def check_clean_failure(result, names: list[str]) -> None:
    """Exit 1; every line names a file (and line), the last is `error: ...`."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    for text in lines[:-1]:
        assert any(re.match(re.escape(n) + r":\d+: \S", text) for n in names), text
    assert "Traceback" not in result.output


# --- JSON Lines ---------------------------------------------------------------------------------


def valid_lines() -> list[str]:
    return [
        json.dumps(
            {"type": "BoosterSession", "contract": C, "effective": f"2018-0{m}-01",
             "recorded_on": f"2018-0{m}-02", "key": f"boost-{m}", "case": "C001",
             "source": "fuzz"}
        )
        for m in range(4, 7)
    ] + [
        json.dumps(
            {"type": "CostIncurred", "contract": C, "effective": "2018-09-30",
             "recorded_on": "2018-10-01", "category": "delivery", "amount": "1234.56"}
        )
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)


BAD_KINDS = (
    "truncated", "unknown type", "unknown field", "missing field", "wrong type", "bad date",
    "negative money", "float money", "nan", "not an object", "random text", "not utf-8",
    "deep nesting", "duplicate field", "no such case",
)


@st.composite
def surely_bad_line(draw, base: str) -> tuple[str, bytes]:
    """A line no ledger could accept, and what is wrong with it."""
    event = json.loads(base)
    cost = valid_lines()[-1]
    kind = draw(st.sampled_from(BAD_KINDS))
    if kind == "truncated":
        text = base[: draw(st.integers(1, len(base) - 1))]
    elif kind == "unknown type":
        text = json.dumps({**event, "type": draw(st.text(min_size=1, max_size=12))})
    elif kind == "unknown field":
        name = draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in event))
        text = json.dumps({**event, name: draw(json_values)})
    elif kind == "missing field":
        text = json.dumps({k: v for k, v in event.items() if k != "effective"})
    elif kind == "wrong type":
        field = draw(st.sampled_from(["contract", "effective", "case", "type"]))
        value = draw(json_values.filter(lambda v: not isinstance(v, str)))
        text = json.dumps({**event, "case": "C001", field: value})
    elif kind == "bad date":
        bad = draw(st.sampled_from(["2018-02-30", "2018-13-01", "18-01-01", "2018/01/01", ""]))
        text = json.dumps({**event, "effective": bad})
    elif kind == "negative money":
        text = cost.replace('"1234.56"', '"-0.01"')
    elif kind == "float money":
        text = cost.replace('"1234.56"', draw(st.sampled_from(["0.001", "12.345", '"1.2.3"'])))
    elif kind == "nan":
        text = cost.replace('"1234.56"', draw(st.sampled_from(["NaN", "Infinity", "1e400"])))
    elif kind == "not an object":
        text = json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    elif kind == "random text":
        text = draw(st.text(min_size=1, max_size=40).filter(lambda t: t.strip()))
        if text.lstrip().startswith("{"):
            text = "x" + text
    elif kind == "not utf-8":
        return kind, base.encode()[:5] + b"\xff\xfe" + base.encode()[5:]
    elif kind == "deep nesting":
        depth = draw(st.integers(500, 5000))
        text = "[" * depth + "]" * depth
    elif kind == "duplicate field":
        text = base[:-1] + ', "effective": "2018-04-01"}'
    else:  # a case the ledger has never heard of
        text = json.dumps({**event, "case": "NO-SUCH-CASE"})
    return kind, text.encode()


@st.composite
def jsonl_files(draw) -> tuple[bytes, bool]:
    """A file of lines, some mutated; and whether some line is surely bad."""
    lines = [line.encode() for line in draw(st.permutations(valid_lines()))]
    lines = lines[: draw(st.integers(1, len(lines)))]
    bad: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            kind, lines[i] = draw(surely_bad_line(draw(st.sampled_from(valid_lines()))))
            bad.add(i)
            event(f"surely bad: {kind}")
        else:  # a character flipped, inserted or dropped: bad or not
            bad.discard(i)
            text = lines[i]
            at = draw(st.integers(0, len(text)))
            how = draw(st.sampled_from(["flip", "insert", "drop"]))
            byte = bytes([draw(st.integers(0, 255))])
            if how == "flip":
                text = text[:at] + byte + text[at + 1 :]
            elif how == "insert":
                text = text[:at] + byte + text[at:]
            else:
                text = text[:at] + text[at + 1 :]
            lines[i] = text
            event(f"mutated: {how}")
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(lines) + ending, bool(bad)


@pytest.fixture
def quickstart_store(sqlite_url, tmp_path, quickstart_lines) -> str:
    result = invoke("record", write_lines(tmp_path / "q.jsonl", quickstart_lines),
                    "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    return sqlite_url


@SETTINGS
@given(drawn=jsonl_files())
def test_malformed_json_lines_never_crash_and_never_write(quickstart_store, tmp_path, drawn):
    content, surely_bad = drawn
    path = tmp_path / "fuzzed.jsonl"
    path.write_bytes(content)
    before = stored(quickstart_store)
    result = invoke("record", str(path), "--db", quickstart_store)
    if result.exit_code == 0:
        assert not surely_bad, result.output
        appended = int(re.search(r"appended (\d+)", result.stdout).group(1))
        assert len(stored(quickstart_store)) == len(before) + appended
        event("accepted")
        return
    check_clean_failure(result, [str(path)])
    assert stored(quickstart_store) == before


# --- SSDA903 CSV --------------------------------------------------------------------------------

CHILDREN = ("SUT-C-1", "SUT-C-2", "SUT-C-3")


@pytest.fixture
def referred_store(sqlite_url, tmp_path) -> str:
    lines = contract_lines(["SUT"]) + [
        referral(f"K{i}", "SUT", child, "2006-05-17", "2018-06-01")
        for i, child in enumerate(CHILDREN)
    ]
    result = invoke("record", write_lines(tmp_path / "setup.jsonl", lines), "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    return sqlite_url


def a_return(tmp_path: Path) -> tuple[bytes, bytes]:
    header, episodes = write_return(
        tmp_path / "base",
        "sut",
        [
            episode(CHILDREN[0], "2018-10-01", "2018-11-15", "E11"),
            episode(CHILDREN[1], "2018-05-01", "2018-06-01", "X1"),
            episode(CHILDREN[1], "2018-06-01", "", ""),
            episode("NOT-REFERRED", "2018-05-01", "2018-06-01", "E11"),
        ],
    )
    return Path(header).read_bytes(), Path(episodes).read_bytes()


@st.composite
def csv_mutations(draw, header: bytes, episodes: bytes) -> tuple[bytes, bytes, bool]:
    which = draw(st.sampled_from(["header", "episodes"]))
    content = header if which == "header" else episodes
    kind = draw(
        st.sampled_from(
            ["flip", "insert", "drop", "truncate", "drop column", "bad used date", "junk",
             "not utf-8", "extra field", "empty"]
        )
    )
    surely_bad = kind in ("drop column", "bad used date", "not utf-8", "empty")
    lines = content.split(b"\n")
    if kind in ("flip", "insert", "drop"):
        at = draw(st.integers(0, len(content)))
        byte = bytes([draw(st.integers(0, 255))])
        content = {
            "flip": content[:at] + byte + content[at + 1 :],
            "insert": content[:at] + byte + content[at:],
            "drop": content[:at] + content[at + 1 :],
        }[kind]
    elif kind == "truncate":
        content = content[: draw(st.integers(0, len(content)))]
        surely_bad = len(content) == 0
    elif kind == "drop column":
        names = lines[0].split(b",")
        gone = draw(st.integers(0, len(names) - 1))
        lines[0] = b",".join(n for i, n in enumerate(names) if i != gone)
        content = b"\n".join(lines)
    elif kind == "bad used date":
        which, content = "episodes", episodes
        bad = draw(st.sampled_from([b"31/02/2019", b"2018-10-01", b"1/10/18", b"xx", b"0/0/0"]))
        content = content.replace(b"01/10/2018", bad, 1)
    elif kind == "junk":
        content = draw(st.binary(min_size=1, max_size=200))
    elif kind == "not utf-8":
        content = content[:20] + b"\xff\xfe\xfd" + content[20:]
    elif kind == "extra field":
        i = draw(st.integers(1, max(1, len(lines) - 2)))
        lines[i] = lines[i] + b",extra"
        content = b"\n".join(lines)
    else:
        content = b""
    event(f"{which}: {kind}")
    if which == "header":
        return content, episodes, surely_bad
    return header, content, surely_bad


@SETTINGS
@given(data=st.data())
def test_malformed_ssda903_csv_never_crashes_and_never_writes(referred_store, tmp_path, data):
    header, episodes = a_return(tmp_path)
    header, episodes, surely_bad = data.draw(csv_mutations(header, episodes))
    header_path, episodes_path = tmp_path / "fuzzed-header.csv", tmp_path / "fuzzed-episodes.csv"
    header_path.write_bytes(header)
    episodes_path.write_bytes(episodes)
    before = stored(referred_store)
    result = invoke(
        "import-903", str(header_path), str(episodes_path), "--db", referred_store,
        "--borough", "SUT", "--year", "2019", "--received-on", "2019-06-30",
    )
    if result.exit_code == 0:
        assert not surely_bad, result.output
        event("imported")
        return
    check_clean_failure(result, [str(header_path), str(episodes_path)])
    assert stored(referred_store) == before


def test_the_fuzzed_return_is_valid_before_it_is_mutated(referred_store, tmp_path):
    header, episodes = a_return(tmp_path)
    ret = read_return(*write_return(tmp_path / "again", "sut", []))
    assert ret is not None
    (tmp_path / "h.csv").write_bytes(header)
    (tmp_path / "e.csv").write_bytes(episodes)
    result = invoke(
        "import-903", str(tmp_path / "h.csv"), str(tmp_path / "e.csv"), "--db", referred_store,
        "--borough", "SUT", "--year", "2019", "--received-on", "2019-06-30",
    )
    assert result.exit_code == 0, result.output
    assert "children matched to referred cases" in result.stdout
