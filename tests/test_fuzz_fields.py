"""Issue 13, fuzzed field by field: valid lines (the quick start's, and lines shaped like the
demo's that fit the quick-start store) with one field replaced by a hostile value, deleted,
renamed or wrapped, or one byte flipped. Each mutated line is either refused, every problem a
`file:line: field: what` line and nothing written, or accepted, and then the whole store still
verifies (`projections.verification.verify`: chain, privacy, aggregates, read models rebuilt).

The hostile values are the ones that once got through: strings that read as numbers or flags,
integers past 64 bits, `_` and non-ASCII digits, NUL and bidi controls, deep nesting, a
pseudonym-looking child id. `tests/test_fuzz.py` fuzzes whole files and the SSDA903 CSV.

More examples: SOC_LEDGER_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz_fields.py
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from soc_ledger.ledger.service import Ledger
from soc_ledger.projections.verification import verify
from tests.helpers import write_lines
from tests.test_fuzz import invoke, stored

SETTINGS = settings(
    max_examples=int(os.environ.get("SOC_LEDGER_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
C = "plcip"
RAW = "@@raw@@"  # a placeholder for JSON text json.dumps cannot write (104.0, 1e400)

# Lines that fit the quick-start store again and again once given a fresh key (and, where the
# contract needs one, a fresh case, variation or claim id: the "{key}" in them).
REPEATABLE = [
    {"type": "BoosterSession", "contract": C, "effective": "2018-05-01",
     "recorded_on": "2018-05-02", "case": "C001", "source": "therapist log"},
    {"type": "CostIncurred", "contract": C, "effective": "2018-03-31", "recorded_on": "2018-04-30",
     "source": "management accounts", "category": "delivery", "amount": "180000.00",
     "provider": "PFP"},
    {"type": "VariationAgreed", "contract": C, "effective": "2019-08-01",
     "recorded_on": "2019-08-01", "variation": "{key}", "description": "baseline reset",
     "term_changes": {"price_per_week": "214.00", "tracking_weeks": 104,
                      "age_at_referral": {"min": 10, "max": 16, "exception_max": 17}},
     "caps": [], "targets": {
         "referrals": 410, "tracked": 345, "outcome_weeks": 36000,
         "outcome_payments": {"low": "6000000.00", "medium": "7704119.00", "high": "8500000.00"},
         "investment": "4234000.00", "per_borough": {"SUT": 60},
         "profile": [{"date": "2020-03-31", "referrals": 250, "outcome_payments": "1500000.00"}]}},
    {"type": "ReferralReceived", "contract": C, "case": "{key}", "effective": "2018-03-05",
     "recorded_on": "2018-03-05", "borough": "MRT", "child_ref": "MRT-{key}",
     "date_of_birth": "2005-08-20", "behaviours": ["risk of care"], "in_care": False,
     "source": "referral form"},
    {"type": "EventCorrected", "contract": C, "effective": "2019-09-03",
     "recorded_on": "2019-09-03", "target": "ref-C001",
     "changes": {"behaviours": ["offending"], "in_care": False}, "reason": "panel minutes"},
    {"type": "EventCorrected", "contract": C, "effective": "2019-09-03",
     "recorded_on": "2019-09-03", "target": "fix-ep-C001-1-end",
     "changes": {"changes": {"effective": "2019-01-28"}}, "reason": "903 resubmission"},
    {"type": "ClaimSubmitted", "contract": C, "effective": "2019-10-13",
     "recorded_on": "2019-10-13", "claim": "{key}", "payer": "SUT", "period_end": "2019-06-30",
     "lines": [{"case": "C001", "weeks": 4, "amount": "856.00"}]},
    {"type": "InvestmentCommitted", "contract": C, "effective": "2017-12-01",
     "recorded_on": "2017-12-01", "investor": "BRIDGEWAY", "amount": "2500000.00"},
    {"type": "CapitalDrawn", "contract": C, "effective": "2018-01-15", "recorded_on": "2018-01-15",
     "amount": "800000.00", "purpose": "working capital", "allocation": {"BRIDGEWAY": "800000.00"}},
    {"type": "UnitCostsSet", "contract": C, "effective": "2019-08-01", "recorded_on": "2019-07-15",
     "weekly_cost": {"residential": "4200.00", "other": "1600.00"},
     "placement_mix": {"residential": "0.15", "other": "0.85"}, "counterfactual_rate": "0.35"},
]

HOSTILE: list[Any] = [
    "104", "yes", "true", "1", 1, 0, True, False, None, "", [], {},
    2**53, 2**53 - 1, 2**64, -(2**63) - 1, 10**400,
    f"{RAW}104.0", f"{RAW}1e400", f"{RAW}-0.0", "1_000.00", "1e3", "+12", " 12", "NaN",
    "\u0661\u0662\u0663", "\uff11\uff12", "\u0662\u0660\u0661\u0668-01-01", "2018-02-30",
    "a\u0000b", "a\u202eb", "a\u2066b", "a\u200bb", "a\nb", "a\u0085b", "x" * 300,
    "hmac-sha256:SUT-000123", "SUT-000123", "2005-06-14", "C002", "#1", "ref-C001",
]


# Refused wherever they are put: no field holds them (a value past 2^53 - 1, NUL or a bidi
# control in any string, nesting past the bound).
SURELY_BAD: list[Any] = [2**53, 2**64, -(2**63) - 1, 10**400, "a\u0000b", "a\u202eb", "a\u2066b"]


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a parsed line, containers and leaves, the line itself excluded."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for name, item in value.items():
            found += paths(item, (*prefix, name))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += paths(item, (*prefix, n))
    return found


def render(data: dict) -> str:
    text = json.dumps(data, ensure_ascii=False)
    return re.sub(re.escape(json.dumps(RAW)[:-1]) + r'([^"]*)"', r"\1", text)


FRESH = "fz-KEY"  # replaced by a new key once drawn: what is drawn may not depend on a counter
fresh = itertools.count()


@st.composite
def mutated_line(draw, quickstart: list[str]) -> tuple[str, bool]:
    """A line with one thing changed, and whether no ledger may accept it."""
    key = FRESH
    if draw(st.booleans()):
        data = json.loads(json.dumps(draw(st.sampled_from(REPEATABLE))).replace("{key}", key))
    else:
        data = json.loads(draw(st.sampled_from(quickstart)))
    data["key"] = key
    place = draw(st.sampled_from(paths(data)))
    parent = data
    for part in place[:-1]:
        parent = parent[part]
    last = place[-1]
    how = draw(st.sampled_from(["hostile", "hostile", "deep", "delete", "unknown", "wrap",
                                "byte"]))
    event(f"{data['type']}: {how}")
    surely_bad = False
    if how == "hostile":
        parent[last] = draw(st.sampled_from(HOSTILE))
        surely_bad = any(parent[last] == bad and type(parent[last]) is type(bad)
                         for bad in SURELY_BAD)
    elif how == "deep":
        levels = draw(st.sampled_from([15, 19, 25, 255]))
        parent[last] = deep(levels)
        surely_bad = levels >= 25
    elif how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "unknown" and isinstance(parent, dict):
        parent[draw(st.sampled_from(["colour", "child_ref", "case", "\u0000", "type "]))] = 1
    elif how == "wrap":
        parent[last] = [parent[last]]
    if surely_bad:
        event("surely bad")
    text = render(data)
    if how == "byte":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + chr(draw(st.integers(0, 0x20FF))) + text[at + 1 :]
    return text, surely_bad


@pytest.fixture
def quickstart_store(sqlite_url, tmp_path, quickstart_lines) -> str:
    result = invoke("record", write_lines(tmp_path / "q.jsonl", quickstart_lines),
                    "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    return sqlite_url


@SETTINGS
@given(data=st.data())
def test_a_mutated_line_is_refused_by_field_or_accepted_and_the_store_verifies(
    quickstart_store, quickstart_lines, tmp_path: Path, data
):
    text, surely_bad = data.draw(mutated_line(quickstart_lines))
    text = text.replace(FRESH, f"fz-{next(fresh)}")
    path = tmp_path / "mutated.jsonl"
    path.write_text(text + "\n", encoding="utf-8")
    before = stored(quickstart_store)
    result = invoke("record", str(path), "--db", quickstart_store)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert not surely_bad, text
        appended = int(re.search(r"appended (\d+)", result.stdout).group(1))
        assert len(stored(quickstart_store)) == len(before) + appended
        with Ledger(quickstart_store) as ledger:
            report = verify(ledger)
        assert report.ok, [str(f) for f in report.findings]
        event("accepted")
        return
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert "nothing was written" in lines[-1], result.stderr
    for problem in lines[:-1]:
        assert re.match(re.escape(str(path)) + r":\d+: \S.*?: \S", problem), problem
    assert stored(quickstart_store) == before
    event("refused")
