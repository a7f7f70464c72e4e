"""The `soc-ledger` command: parse, call, render. No rule lives here."""

from __future__ import annotations

import sys
from datetime import date

import click

FORMATS = click.Choice(["table", "json", "csv"])


class LedgerCommandError(click.ClickException):
    def show(self, file=None) -> None:  # one line on stderr, as SPEC §10 asks
        click.echo(f"error: {self.format_message()}", err=True)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    from soc_ledger.domain.values import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


db_option = click.option(
    "--db",
    envvar="SOC_LEDGER_DB",
    default="sqlite:///ledger.db",
    show_default=True,
    help="sqlite:///path/to/ledger.db or postgresql://user@host:port/dbname",
)


def open_ledger(db: str):
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.ledger.store import StoreError

    try:
        return Ledger(db)
    except StoreError as exc:
        raise LedgerCommandError(str(exc)) from None


@click.group()
@click.version_option(package_name="soc-ledger")
def main() -> None:
    """soc-ledger: an event-sourced ledger for social outcomes contracts."""


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@db_option
def record(file, db: str) -> None:
    """Append events from a JSON Lines FILE (- for stdin): all or nothing."""
    from soc_ledger.ledger.recording import Rejected

    source = "<stdin>" if file.name == "<stdin>" else file.name
    try:
        lines = file.read().splitlines()
    except UnicodeDecodeError as exc:
        raise LedgerCommandError(f"{source}: not UTF-8 text ({exc.reason})") from None
    with open_ledger(db) as ledger:
        try:
            outcome = ledger.record_lines(lines, source)
        except Rejected as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise LedgerCommandError(f"{source}: {exc}") from None
    click.echo(
        f"{source}: appended {outcome.appended}, already present {outcome.already_present}"
        + (" (nothing new)" if outcome.appended == 0 else "")
    )


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


@main.command()
@db_option
@click.option("--case", "case", help="only this case")
@click.option("--type", "types", multiple=True, help="only this event type (repeatable)")
@click.option("--known-at", callback=_date, help="only what was recorded on or before this date")
@click.option("--contract", help="only this contract")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def events(db: str, case, types, known_at, contract, fmt: str) -> None:
    """The audit trail: every event in log order, as stored."""
    from soc_ledger.domain.events import EVENT_TYPES
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.render import write_csv, write_json, write_table

    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise LedgerCommandError(f"--type: unknown event type {unknown[0]!r}")
    with open_ledger(db) as ledger:
        entries = list(ledger.trail(case, types, KnownAt.on(known_at), contract))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
