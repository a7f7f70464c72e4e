"""Output: tables for people (rich), JSON and CSV for scripts and spreadsheets."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from soc_ledger.domain.errors import LedgerError


class OutputError(LedgerError):
    """A file a command was asked to write (--emit, --export, --plot) cannot be written."""


def output_path(option: str, path: str) -> str:
    """PATH, if a file can be written there: checked before the command does its work, and
    creating nothing (what only the write itself can tell is caught by `writing`)."""
    if not path:
        raise OutputError(f"{option}: give a file name")
    if os.path.isdir(path):
        raise OutputError(f"{option} {path}: is a directory, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{option} {path}: the folder {folder} does not exist")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise OutputError(f"{option} {path}: the file cannot be written (permission denied)")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot create a file in {folder} (permission denied)")
    return path


@contextmanager
def writing(option: str, path: str) -> Iterator[None]:
    """A failed write of PATH (a full disk, a device that refuses) as one line naming OPTION."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


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
