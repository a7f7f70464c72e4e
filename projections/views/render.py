"""Output: tables for people (rich), JSON and CSV for scripts and spreadsheets."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click


def for_people(
    row: dict[str, Any], money: Iterable[str] = (), percent: Iterable[str] = ()
) -> dict[str, Any]:
    """A row for a table: thousands separators in money, fractions as percentages."""
    from decimal import Decimal

    out = dict(row)
    for name in money:
        if out.get(name) is not None:
            out[name] = f"{Decimal(out[name]):,.2f}"
    for name in percent:
        if out.get(name) is not None:
            out[name] = f"{Decimal(out[name]) * 100:.2f}%"
    return out


def write_line(text: str, err: bool = False) -> None:
    """One line of text under a table, or on stderr with `err`: click's echo, as every line
    the command has always printed (it mends a stream of the wrong encoding and flushes)."""
    click.echo(text, err=err)


def write_json(data: Any) -> None:
    """The same bytes as `json.dumps(data, indent=2)`, written a few thousand pieces at a
    time: a report of a national programme's weeks is never one string in memory."""
    pieces: list[str] = []
    for piece in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(data):
        pieces.append(piece)
        if len(pieces) >= 4096:
            sys.stdout.write("".join(pieces))
            pieces.clear()
    pieces.append("\n")
    sys.stdout.write("".join(pieces))


def write_for_machines(
    fmt: str,
    data: Any,
    columns: Sequence[str],
    rows: Callable[[], Iterable[dict[str, Any]]],
) -> bool:
    """`--format json` (the data) or `csv` (the rows under the columns) written: True. A
    table is for people and each report draws its own: False. The rows are made only for CSV."""
    if fmt == "json":
        write_json(data)
        return True
    if fmt == "csv":
        write_csv(columns, rows())
        return True
    return False


def write_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    right: Sequence[str] = (),
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or file: do not wrap for an 80-column default
    console.print(table)
