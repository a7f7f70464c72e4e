"""The demo's whole history (SPEC §12): the reference contract, its cohort and care data
(`cohort`), its money (`finance`) and its claims (`claims`, computed from the care data), in
the order it became known, and as JSON Lines loadable with `record`. The same seed gives the
same bytes on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from soc_ledger.ledger.demo.claims import claim_rows
from soc_ledger.ledger.demo.cohort import (
    SEED,
    build_cases,
    case_events,
    contract_events,
    coverage_events,
)
from soc_ledger.ledger.demo.finance import finance_rows


def history(scale: int = 1, seed: int = SEED) -> list[dict[str, Any]]:
    """Every event of the demo, in the order it became known."""
    cases = build_cases(seed)
    rows: list[tuple[date, int, int, dict[str, Any]]] = []
    seq = 0
    for event in contract_events(scale):
        rows.append((date.fromisoformat(event["recorded_on"]), 0, seq, event))
        seq += 1
    for copy in range(scale):
        for case in cases:
            for recorded, group, event in case_events(case, copy):
                rows.append((recorded, group, seq, event))
                seq += 1
    for recorded, group, event in coverage_events():
        rows.append((recorded, group, seq, event))
        seq += 1
    # money, costs, 2017 baseline (group 6)
    rows.extend(finance_rows(scale, start=len(rows)))
    # claims, disputes, payments (group 5), claimed from the care data then known
    rows.extend(claim_rows(rows, cases, scale, seed, start=len(rows)))

    def order(row: tuple[date, int, int, dict[str, Any]]) -> tuple:
        recorded, group, seq, event = row
        # Within one return: ends before starts on the same day (X1 changes of placement).
        kind = 0 if event["type"] == "CareEpisodeEnded" else 1
        return (recorded, group, event["effective"] if group == 2 else "", kind, seq)

    rows.sort(key=order)
    return [event for *_, event in rows]


def emit(scale: int = 1, seed: int = SEED) -> Iterator[str]:
    """The demo as JSON Lines, loadable with `record`."""
    for event in history(scale, seed):
        yield json.dumps(event, separators=(", ", ": "))
