"""SPEC §11: `verify` names a stored correction whose reading no event type has, never a traceback.

Such a correction cannot be recorded (the record checks the corrected reading), so it can only
reach the log by an edit of the store; the aggregates check must then report it like any break.
"""

from __future__ import annotations

import dataclasses

from soc_ledger.domain import events as ev
from soc_ledger.ledger.integrity import replay_aggregates
from soc_ledger.ledger.service import Ledger
from tests.conftest import EXAMPLES


def test_a_stored_correction_with_an_unreadable_reading_is_a_finding(sqlite_url: str) -> None:
    with Ledger(sqlite_url) as ledger:
        ledger.record_lines((EXAMPLES / "quickstart.jsonl").read_text().splitlines(), "q")
        records = list(ledger.log.records())
    referral = next(r for r in records if r.event.type == "ReferralReceived")
    bad = ev.EventCorrected(
        type="EventCorrected", contract=referral.event.contract, effective=referral.event.effective,
        target=f"#{referral.position}", changes={"in_care": "yes"}, reason="edited in the store",
    )
    edited = dataclasses.replace(
        referral, position=records[-1].position + 1, version=99, event=bad,
        target_version=referral.version,
    )
    streams: dict[str, list] = {}
    for r in [*records, edited]:
        streams.setdefault(r.stream, []).append(r)
    first = {s: h[0].position for s, h in streams.items()}
    check = replay_aggregates(first, streams.__getitem__, streams.values())
    assert not check.ok
    (finding,) = check.findings
    assert finding.position == edited.position
    assert "does not replay: a stored event, as corrected, no longer reads as its type" in (
        finding.message
    )
