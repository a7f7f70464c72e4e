"""One writer process of the concurrency tests: its own cases, recorded batch by batch.

Kept apart from the test module so that a spawned process imports only this.
"""

from __future__ import annotations

import json
import os
import time

C = "plcip"


def setup_lines() -> list[str]:
    from tests.outcome_builders import REFERENCE_TERMS

    return [
        json.dumps(
            {
                "type": "ContractAgreed", "contract": C, "effective": "2017-09-01",
                "recorded_on": "2017-09-01", "key": "contract", "name": "Concurrent",
                "lead_commissioner": "SUT", "prime_contractor": "PFP", "top_up_funder": "CBO",
                "terms": REFERENCE_TERMS, "caps": [],
            }
        ),
        json.dumps(
            {
                "type": "BoroughAcceded", "contract": C, "effective": "2018-02-01",
                "recorded_on": "2018-02-01", "key": "accede-SUT", "borough": "SUT",
                "name": "Sutton", "award": "original",
            }
        ),
    ]


def case_lines(writer: int, case: int) -> list[str]:
    """Five events of one case: referral, acceptance, first meeting, an end within the first
    28 days (never tracked: the log is what is tested, not the weeks), a care stay begun."""
    name = f"W{writer}-{case:03d}"
    common = {"contract": C, "case": name, "recorded_on": "2019-06-01"}
    events = [
        {"type": "ReferralReceived", "effective": "2018-06-01", "key": f"{name}-ref",
         "borough": "SUT", "child_ref": f"CH-{name}", "date_of_birth": "2006-01-15",
         "behaviours": ["offending"], "in_care": False},
        {"type": "ReferralAccepted", "effective": "2018-06-02", "key": f"{name}-acc",
         "intervention": "FFT"},
        {"type": "FirstFamilyMeeting", "effective": "2018-06-05", "key": f"{name}-ffm"},
        {"type": "InterventionEnded", "effective": "2018-06-20", "key": f"{name}-end",
         "reason": "disengaged"},
        {"type": "CareEpisodeStarted", "effective": "2019-01-01", "key": f"{name}-s",
         "episode": "E1", "legal_status": "C2", "placement": "U1"},
    ]
    return [json.dumps({**common, **e}) for e in events]


def keys_of(writer: int, cases: int) -> list[str]:
    return [json.loads(x)["key"] for i in range(cases) for x in case_lines(writer, i)]


def write(url: str, writer: int, batches: int, cases_per_batch: int, go) -> list[list[int]]:
    """Record `batches` batches of `cases_per_batch` cases; the positions of each batch."""
    os.environ.setdefault("SOC_LEDGER_KEY", "test-key-0123456789abcdef")
    from soc_ledger.ledger.service import Ledger

    positions = []
    with Ledger(url) as ledger:
        go.wait(60)
        for b in range(batches):
            lines = [
                x
                for i in range(b * cases_per_batch, (b + 1) * cases_per_batch)
                for x in case_lines(writer, i)
            ]
            outcome = ledger.record_lines(lines, f"writer-{writer}-batch-{b}")
            assert outcome.appended == len(lines), outcome
            positions.append(outcome.positions)
            time.sleep(0)
    return positions
