"""The audit trail (`events`): every event as stored, as JSON, CSV or a table."""

from __future__ import annotations

import json
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
    "target",
    "reason",
    "changes",
]


def render_events(
    entries: list[TrailEntry], fmt: str, context: dict[str, Any] | None = None
) -> None:
    """JSON carries each event whole (a list, as it always has: each entry has its own
    position); CSV ends each row with the CONTEXT columns; a table shows times to the second
    and a correction's changes as `field=value`."""
    if fmt == "json":
        write_json([dict(trail_row(e), event=e.event) for e in entries])
    elif fmt == "csv":
        write_csv(TRAIL_COLUMNS, (trail_row(e) for e in entries), context)
    else:
        rows = []
        for e in entries:
            row = trail_row(e)
            row["appended_at"] = row["appended_at"][:19]
            row["recorded_on"] = row["recorded_on"][:19]
            changes = e.event.get("changes")
            if changes:
                row["changes"] = "; ".join(f"{k}={_value(v)}" for k, v in changes.items())
            rows.append(row)
        write_table(f"{len(rows)} events", TRAIL_COLUMNS, rows, right=["position"])


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


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
        # A correction's or retraction's target and why (any event's reason), and what a
        # correction changed as compact JSON (one cell, read back with json.loads).
        "target": e.get("target"),
        "reason": e.get("reason"),
        "changes": json.dumps(e["changes"], separators=(",", ":")) if e.get("changes") else None,
    }
