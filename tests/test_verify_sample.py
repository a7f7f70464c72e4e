"""`verify --sample N` (projections/sampled.py): the read models compared with a rebuild for N
cases drawn at random and every contract's own events; the log's checks stay whole.

The store is tests/test_claims_made.py's: the quick start's C001, Merton's C002, four claims
and a restated one. Edits are made with SQL behind the ledger's back, as in
tests/test_helper_tables.py; "past the seals" means the edit's count in `readmodel_seals` is
squared too, as someone who knows the seals could.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

from soc_ledger.ledger.index import stream_name
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import verification
from soc_ledger.projections.sampled import draw
from tests.helpers import run
from tests.test_claims_made import restated  # noqa: F401  (the fixture)
from tests.test_helper_tables import sql


class Drawing(random.Random):
    """Draws the case streams named, whatever is asked: which case a test's sample reads."""

    def __init__(self, *cases: str) -> None:
        super().__init__(0)
        self.cases = cases

    def sample(self, population: Sequence[Any], k: int, **_: Any) -> list[Any]:
        return [s for s in population if json.loads(s)[-1] in self.cases][:k]


def _projections(report: verification.Report) -> verification.Check:
    return next(c for c in report.checks if c.name == "projections")


def _rows(summary: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r"(\w+) (\d+)(?:,| rows)", summary)}


def test_the_draw_keeps_every_contract_stream_and_n_cases_in_log_order():
    streams = [
        stream_name("a"), stream_name("a", "C1"), stream_name("b"),
        stream_name("a", "C2"), stream_name("b", "C3"), stream_name("a", "C4"),
    ]  # fmt: skip
    for seed in range(20):
        sample = draw(streams, 2, random.Random(seed))
        assert (sample.cases, sample.of) == (2, 4)
        assert stream_name("a") in sample.streams and stream_name("b") in sample.streams
        assert len(sample.streams) == 4
        assert sample.streams == [s for s in streams if s in sample.streams]  # the log's order
    assert draw(streams, 9, random.Random(1)) == (streams, 4, 4)


def test_a_sample_of_every_case_rebuilds_the_rows_the_whole_verify_does(restated):  # noqa: F811
    whole = json.loads(run("verify", "--db", restated, "--format", "json").stdout)
    result = run("verify", "--db", restated, "--sample", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    sampled = json.loads(result.stdout)
    assert sampled["ok"] and whole["ok"]
    summaries = [
        next(c["summary"] for c in r["checks"] if c["check"] == "projections")
        for r in (whole, sampled)
    ]
    assert summaries[1].startswith("2 of 2 cases drawn at random")
    (sampled_check,) = [c for c in sampled["checks"] if c["check"] == "projections"]
    assert sampled_check["cases"] == [
        {"contract": "plcip", "case": "C001"},
        {"contract": "plcip", "case": "C002"},
    ]  # named for the auditor's papers; a whole verify names none
    assert all("cases" not in c for c in whole["checks"])
    expected = _rows(summaries[0])
    del expected["ledger_tracking"]  # a sample's rebuild stops at its last drawn event
    assert _rows(summaries[1]) == expected
    # The log's own checks are the same whole checks either way.
    assert [c for c in sampled["checks"] if c["check"] != "projections"] == [
        c for c in whole["checks"] if c["check"] != "projections"
    ]


def test_an_edit_past_the_seals_is_named_when_its_case_is_drawn_only(restated):  # noqa: F811
    sql(restated, "UPDATE case_versions SET weeks = weeks + 1 WHERE case_id = 'C002'")
    sql(restated, "UPDATE readmodel_seals SET sealed = edits WHERE name = 'case_versions'")
    with Ledger(restated) as ledger:
        drawn = verification.verify(ledger, None, 1, Drawing("C002"))
        missed = verification.verify(ledger, None, 1, Drawing("C001"))
    check = _projections(drawn)
    assert not check.ok
    assert check.findings[0].message.startswith(
        "case_versions row {'contract': 'plcip', 'case_id': 'C002', 'known_from': "
    )
    assert "weeks stored " in check.findings[0].message
    assert check.summary.startswith("1 of 2 cases drawn at random")
    # The limit the module states: a sample that does not draw the case cannot see an edit
    # that squared the seals too. The whole verify does.
    assert missed.ok
    whole = run("verify", "--db", restated)
    assert whole.exit_code == 1
    assert "case_versions row {'contract': 'plcip', 'case_id': 'C002'" in whole.stderr


def test_an_edit_the_seals_counted_is_named_even_when_its_case_is_not_drawn(
    restated,  # noqa: F811
):
    sql(restated, "UPDATE latest_case_weeks SET weeks = weeks + 1 WHERE case_id = 'C002'")
    with Ledger(restated) as ledger:
        report = verification.verify(ledger, None, 1, Drawing("C001"))
    (finding,) = _projections(report).findings
    assert finding.message.startswith(
        "the read model latest_case_weeks does not match the log (1 change to it not made by "
        "the ledger)"
    )


def test_a_sample_of_no_case_is_refused_naming_the_option(restated):  # noqa: F811
    result = run("verify", "--db", restated, "--sample", "0")
    assert result.exit_code == 2
    assert "--sample" in result.output and "Traceback" not in result.output
