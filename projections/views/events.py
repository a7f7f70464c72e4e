"""The audit trail (`events`): every event as stored, as JSON, CSV or a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soc_ledger.projections.views.render import write_csv, write_json, write_table

if TYPE_CHECKING:
    from soc_ledger.ledger.service import TrailEntry

TRAIL_COLUMNS = [
    "position",
    "appended_at",
    "recorded_on",
    "effective",
    "type",
    "case",
    "key",
    "source",
]


def render_events(entries: list[TrailEntry], fmt: str) -> None:
    """JSON carries each event whole; a table shows its times to the second."""
    if fmt == "json":
        write_json([dict(e.row(), event=e.event) for e in entries])
    elif fmt == "csv":
        write_csv(TRAIL_COLUMNS, (e.row() for e in entries))
    else:
        rows = []
        for e in entries:
            row = e.row()
            row["appended_at"] = row["appended_at"][:19]
            row["recorded_on"] = row["recorded_on"][:19]
            rows.append(row)
        write_table(f"{len(rows)} events", TRAIL_COLUMNS, rows, right=["position"])
