"""`rebuild`: every read model dropped and rebuilt from the event log, which is never touched.

The event index first (the others read it), then the bitemporal facts, then the claims, then
the case versions with the latest tracked cases copied from them; all under the writer lock, so
no append lands half-way through.
"""

from __future__ import annotations

import time

from soc_ledger.ledger import index
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.progress import phase
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import claims_made, latest, readmodel, versions


def rebuild_read_models(ledger: Ledger) -> tuple[int, float]:
    """(events indexed, seconds taken)."""
    with writer_lock(ledger.location):
        started = time.perf_counter()
        events = index.rebuild(ledger.engine, ledger.log)
        with phase(ledger.progress, f"rebuilding {readmodel.NAME}"):
            readmodel.rebuild(ledger.engine, ledger.log)
        with phase(ledger.progress, f"rebuilding {claims_made.NAME}"):
            claims_made.rebuild(ledger.engine, ledger.log)
        # The latest cases are their versions known now: built together (`versions.rebuild`).
        with phase(ledger.progress, f"rebuilding {versions.NAME} and {latest.NAME}"):
            versions.rebuild(ledger.engine, ledger.log)  # then PostgreSQL's statistics
        return events, time.perf_counter() - started
