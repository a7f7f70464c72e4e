"""The audit trail (`events`): every event as stored, as JSON, CSV or a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        write_json([dict(trail_row(e), event=e.event) for e in entries])
    elif fmt == "csv":
        write_csv(TRAIL_COLUMNS, (trail_row(e) for e in entries))
    else:
        rows = []
        for e in entries:
            row = trail_row(e)
            row["appended_at"] = row["appended_at"][:19]
            row["recorded_on"] = row["recorded_on"][:19]
            rows.append(row)
        write_table(f"{len(rows)} events", TRAIL_COLUMNS, rows, right=["position"])


def trail_row(entry: TrailEntry) -> dict[str, Any]:
    """One line of the audit trail as the table and CSV show it."""
    e = entry.event
    return {
        "position": entry.position,
        "appended_at": entry.appended_at.isoformat(),
        "recorded_on": entry.recorded_on.isoformat(),
        "effective": e["effective"],
        "type": e["type"],
        "contract": e["contract"],
        "case": entry.case,
        "key": e.get("key"),
        "source": e.get("source"),
    }
