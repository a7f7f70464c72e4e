"""Bulk append rate of `record` (issue 2): N synthetic events into a fresh store.

    python benchmarks/append.py --events 100000 [--db sqlite:////tmp/bench.db]

Plain timing, no asserts. The events are a valid contract history: one contract, five
boroughs, and cases each with a referral, acceptance, first meeting, end and care episodes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date, timedelta


def synthetic_history(n_events: int) -> list[str]:
    from soc_ledger.ledger.demo.cohort import terms

    c = "bench"
    lines = [
        {
            "type": "ContractAgreed",
            "contract": c,
            "effective": "2017-09-01",
            "key": "contract",
            "recorded_on": "2017-09-01",
            "name": "Benchmark",
            "lead_commissioner": "B0",
            "prime_contractor": "P",
            "top_up_funder": "CBO",
            # The reference terms, with referrals open for the whole synthetic cohort.
            "terms": {**terms(), "referrals_close": "2030-06-30"},
            "caps": [],
        },
    ]
    for b in range(5):
        lines.append(
            {
                "type": "BoroughAcceded",
                "contract": c,
                "effective": "2018-01-01",
                "recorded_on": "2018-01-01",
                "key": f"accede-B{b}",
                "borough": f"B{b}",
                "name": f"Borough {b}",
                "award": "original",
            }
        )
    i = 0
    while len(lines) < n_events:
        case = f"C{i:06d}"
        start = date(2018, 2, 1) + timedelta(days=i % 1000)
        d = start.isoformat()
        common = {"contract": c, "case": case, "recorded_on": d}
        lines += [
            {
                "type": "ReferralReceived",
                "effective": d,
                "key": f"{case}-ref",
                "borough": f"B{i % 5}",
                "child_ref": f"CH{i}",
                "date_of_birth": "2006-05-01",
                "behaviours": ["offending"],
                "in_care": False,
                **common,
            },
            {
                "type": "ReferralAccepted",
                "effective": d,
                "key": f"{case}-acc",
                "intervention": "MST",
                **common,
            },
            {"type": "FirstFamilyMeeting", "effective": d, "key": f"{case}-ffm", **common},
            {
                "type": "InterventionEnded",
                "effective": (start + timedelta(days=120)).isoformat(),
                "key": f"{case}-end",
                "reason": "completed",
                **common,
            },
        ]
        for k in range(6):
            s = start + timedelta(days=200 + 60 * k)
            lines += [
                {
                    "type": "CareEpisodeStarted",
                    "effective": s.isoformat(),
                    "key": f"{case}-e{k}s",
                    "episode": f"E{k}",
                    "legal_status": "C2",
                    "placement": "U1",
                    **common,
                },
                {
                    "type": "CareEpisodeEnded",
                    "effective": (s + timedelta(days=10)).isoformat(),
                    "key": f"{case}-e{k}e",
                    "episode": f"E{k}",
                    "reason": "E11",
                    **common,
                },
            ]
        i += 1
    return [json.dumps(x) for x in lines[:n_events]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    os.environ.setdefault("SOC_LEDGER_KEY", "benchmark-key-0123456789")
    from soc_ledger.ledger.service import Ledger

    lines = synthetic_history(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        with Ledger(url) as ledger:
            started = time.perf_counter()
            outcome = ledger.record_lines(lines, "bench.jsonl")
            elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "db": url.split(":")[0],
                "events": outcome.appended,
                "seconds": round(elapsed, 2),
                "events_per_s": round(outcome.appended / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
