"""What `verify` and `assert` print: the checks' table or JSON, the findings, the chain heads
exported for a later `--against`, and an auditor's recorded sign-off."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from soc_ledger.ledger.integrity import Check, Finding, Report
from soc_ledger.projections.views.render import write_json, write_line, write_table, writing


def describe(checks: Iterable[Check]) -> list[dict[str, str]]:
    """One row per check, for the table: a failed check shows its first finding."""
    return [
        {
            "check": c.name,
            "result": "ok" if c.ok else ("skipped" if c.skipped else "FAILED"),
            "detail": c.summary if c.ok or c.skipped else _where(c.findings[0]),
        }
        for c in checks
    ]


def _where(f: Finding) -> str:
    return (f"#{f.position}: " if f.position is not None else "") + f.message


def render_verify(report: Report, fmt: str) -> None:
    """One row per check (JSON: every finding too)."""
    if fmt == "json":
        write_json(report.as_json())
    else:
        write_table(None, ["check", "result", "detail"], describe(report.checks))


def write_findings(report: Report) -> None:
    """Every break found, on stderr, before the one-line error naming the first."""
    for finding in report.findings:
        write_line(str(finding), err=True)


def write_export(report: Report, path: str) -> None:
    """The chain heads as JSON, for a later `verify --against`."""
    with writing("--export", path), open(path, "w", encoding="utf-8") as handle:
        json.dump(report.export(), handle, indent=2)
        handle.write("\n")


def write_verified(report: Report, fmt: str, export_to: str | None) -> None:
    """A store that verified: its chain heads to EXPORT_TO if asked, and (a table) one line."""
    if export_to:
        write_export(report, export_to)
    if fmt != "table":
        return
    position, head = report.head
    write_line(f"verified: {report.events} events, head #{position} {head}")
    if export_to:
        write_line(f"chain heads written to {export_to}")


def render_assertion(
    contract: str,
    scope: str,
    figure: str,
    as_of: date,
    known_at: date | None,
    asserted: Decimal,
    by: str,
    position: int,
    fmt: str,
) -> None:
    """The BalanceAsserted just recorded: what was signed off, by whom, where in the log."""
    known = known_at.isoformat() if known_at else None
    if fmt == "json":
        write_json(
            {
                "contract": contract,
                "scope": scope,
                "figure": figure,
                "as_of": as_of.isoformat(),
                "known_at": known,
                "value": str(asserted),
                "by": by,
                "position": position,
            }
        )
        return
    write_line(
        f"asserted: {figure} of {scope} in {contract} as of {as_of}, known at "
        f"{known or 'everything'}: {asserted} (BalanceAsserted #{position} by {by})"
    )
