"""What a command that writes prints: the events `record` and `demo` appended (or, with
`--check`, would append), the summary of an SSDA903 import, an import reverted, the read
models rebuilt."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from soc_ledger.projections.views.render import write_json, write_line, write_table, writing

if TYPE_CHECKING:
    from soc_ledger.ledger.recording import Outcome
    from soc_ledger.ledger.ssda903.importing import ImportResult
    from soc_ledger.ledger.ssda903.period import Period
    from soc_ledger.ledger.ssda903.reverting import Reverted

IMPORT_903_ROWS = [
    ("rows", "episode rows read"),
    ("header_children", "children in the header table"),
    ("children", "children in the episodes table"),
    ("children_matched", "children matched to referred cases"),
    ("cases_matched", "referred cases in the return"),
    ("cases_absent", "referred cases absent (not in care in the period)"),
    ("rows_unmatched", "rows discarded: child not referred (never stored)"),
    ("rows_outside", "rows ignored: no day in the period"),
    ("rows_used", "rows used"),
    ("episodes_new", "episodes new"),
    ("episodes_corrected", "episodes corrected"),
    ("episodes_retracted", "episodes retracted"),
    ("episodes_unchanged", "episodes unchanged"),
]


def write_recorded(source: str, outcome: Outcome) -> None:
    write_line(
        f"{source}: appended {outcome.appended}, already present {outcome.already_present}"
        + (" (nothing new)" if outcome.appended == 0 else "")
    )


def write_checked(outcome: Outcome) -> None:
    """`--check` found nothing wrong: what the command would have done."""
    write_line(
        f"no problems: {outcome.appended} events would be appended, "
        f"{outcome.already_present} already present"
    )


def write_reverted(reverted: Reverted) -> None:
    receipt, outcome = reverted.receipt, reverted.outcome
    where = (
        f" (#{outcome.positions[0]} to #{outcome.positions[-1]})" if outcome.positions else ""
    )
    write_line(
        f"{receipt.key}: reverted the return of {receipt.borough} for {receipt.period}, "
        f"received {receipt.received_on}: {outcome.appended} events retracted{where}"
    )


def write_demo_recorded(outcome: Outcome) -> None:
    write_line(
        f"reference contract: appended {outcome.appended}, "
        f"already present {outcome.already_present}"
    )


def write_history(path: str, lines: list[str], scale: int) -> None:
    """The reference contract's events as a JSON Lines file, instead of recording them."""
    with writing("--emit", path), open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    write_line(f"{path}: {len(lines)} events of the reference contract (scale {scale})")


def write_rebuilt(events: int, seconds: float) -> None:
    write_line(f"rebuilt the read models from {events} events in {seconds:.2f} s")


def render_import(
    result: ImportResult, name: str, borough: str, period: Period, received_on: date, fmt: str
) -> None:
    """What the import read, matched, discarded and changed: JSON, or a line and a table."""
    summary, outcome = result.summary, result.outcome
    covered = result.covered_until.isoformat() if result.covered_until else None
    if fmt == "json":
        write_json(
            dict(
                summary.as_dict(),
                contract=result.contract,
                appended=outcome.appended,
                already_present=outcome.already_present,
                nothing_new=result.nothing_new,
                covered_until=covered,
                receipt=result.receipt,
            )
        )
        return
    write_line(
        f"{name}: {borough} {period}, received {received_on}: appended {outcome.appended}, "
        f"already present {outcome.already_present}"
        + (" (nothing new: this return is already imported)" if result.nothing_new else "")
    )
    rows = [{"": label, "count": getattr(summary, field)} for field, label in IMPORT_903_ROWS]
    rows.append({"": f"care data of {borough} verified to", "count": covered or "-"})
    write_table(None, ["", "count"], rows, right=["count"])
