"""Output: tables for people (rich), JSON and CSV for scripts and spreadsheets."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import click
import orjson

from soc_ledger.domain.errors import LedgerError
from soc_ledger.ledger.batches import batched


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
    """The same text as `json.dumps(data, indent=2, ensure_ascii=False)`, written a few
    thousand pieces at a time: a report of a national programme's weeks is never one string
    in memory. Each piece is orjson's (several times faster than the standard library's
    encoder, with the same layout); a float would be spelled as orjson spells it (`1e16`,
    not `1e+16`), the same number."""
    pieces: list[str] = []
    held = 0
    for piece in _json_pieces(data, ""):
        pieces.append(piece)
        held += len(piece)
        if held >= _FLUSH:
            sys.stdout.write("".join(pieces))
            pieces.clear()
            held = 0
    pieces.append("\n")
    sys.stdout.write("".join(pieces))


_FLUSH = 1 << 20  # characters held before they are written


_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_WHOLE = 64  # a list or object of at most this many items is one piece


class Made(Sequence[Any]):
    """A list whose items are made from `items` as they are read (`make(index, item)`), never
    held: written as a JSON list, read by CSV rows, again each time. A wide diff's changes
    are millions of objects; their report's are made one at a time."""

    def __init__(self, items: Sequence[Any], make: Callable[[int, Any], Any]) -> None:
        self.items = items
        self.make = make

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.make(n, self.items[n]) for n in range(*i.indices(len(self.items)))]
        if i < 0:
            i += len(self.items)
        return self.make(i, self.items[i])

    def __iter__(self) -> Iterator[Any]:
        for i, item in enumerate(self.items):
            yield self.make(i, item)


def _made(value: Any) -> list[Any]:
    """orjson's hook for what it does not know: a short `Made` list, as a list."""
    if isinstance(value, Made):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _many(value: Any) -> bool:
    """Whether `value` is written an item at a time: a list or object of many items, or of a
    few, one of them a long `Made` list (else orjson would make the whole list at once)."""
    return isinstance(value, dict | list | tuple | Made) and (
        len(value) > _WHOLE
        or (
            isinstance(value, dict | list | tuple)
            and any(
                isinstance(item, Made) and len(item) > _WHOLE
                for item in (value.values() if isinstance(value, dict) else value)
            )
        )
    )


def _json_pieces(value: Any, pad: str) -> Iterator[str]:
    """`value` as indented JSON whose lines after the first start with `pad`: lists and
    objects of many items an item at a time, the rest whole."""
    if not _many(value):
        yield _whole(value, pad)
        return
    inner = pad + "  "
    if isinstance(value, dict):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield ("\n" if n == 0 else ",\n") + inner + _json_key(key) + ": "
            yield from _json_pieces(item, inner)
        yield "\n" + pad + "}"
        return
    yield "["
    n = 0
    for run in batched(value, _RUN):
        if all(not _many(item) for item in run):
            # A run of items each written whole: one orjson list, its brackets cut off, is
            # the same text as the items one by one (orjson indents a list's items by two).
            yield ("" if n == 0 else ",") + _whole(run, pad)[1 : -len(pad) - 2]
            n += len(run)
            continue
        for item in run:
            yield ("\n" if n == 0 else ",\n") + inner
            yield from _json_pieces(item, inner)
            n += 1
    yield "\n" + pad + "]"


_RUN = 256  # items of a long list written as one orjson list


def _whole(value: Any, pad: str) -> str:
    """`value` as one piece of indented JSON whose lines after the first start with `pad`."""
    text = orjson.dumps(value, default=_made, option=_JSON_OPTIONS).decode()
    return text.replace("\n", "\n" + pad) if pad else text


def _json_key(key: Any) -> str:
    """An object's key as `json.dumps` writes it: strings as they are, other keys first
    turned to text the standard library's way."""
    if not isinstance(key, str):
        key = json.dumps(key) if key is None or isinstance(key, bool | float) else str(key)
    return orjson.dumps(key).decode()


# What every CSV and JSON report states it was read at (README, "Reports for scripts").
CONTEXT_COLUMNS = ("contract", "as_of", "known_at", "log_position")
TOTAL = "total"  # the first column of a CSV's or table's total row


def with_context(
    data: dict[str, Any],
    contract: str | None,
    as_of: date | None,
    known_at: date | None,
    log_position: int | None,
) -> dict[str, Any]:
    """A report's JSON with its context at the top level: the contract, as_of, known_at (null:
    everything recorded) and the log position the read models had reached. A field the report
    already has is kept as it is (SPEC §10: fields are added, never changed)."""
    context = {
        "contract": contract,
        "as_of": as_of.isoformat() if as_of else None,
        "known_at": known_at.isoformat() if known_at else None,
        "log_position": log_position,
    }
    return {**data, **{k: v for k, v in context.items() if k not in data}}


def context_of(data: Any) -> dict[str, Any] | None:
    """The context `with_context` gave DATA, if it has one."""
    if isinstance(data, dict) and "log_position" in data:
        return {k: data.get(k) for k in CONTEXT_COLUMNS}
    return None


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
        write_csv(columns, rows(), context_of(data))
        return True
    return False


def write_csv(
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    context: dict[str, Any] | None = None,
) -> None:
    """Rows under a header line; with CONTEXT, its four columns end every row (so that each
    row, a total row too, says what it was read at, and the file needs no comment line)."""
    names = list(columns)
    if context is not None:
        names += [c for c in CONTEXT_COLUMNS if c not in names]
    writer = csv.DictWriter(sys.stdout, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        if context is not None:
            row = {**row, **{k: v for k, v in context.items() if row.get(k) is None}}
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    right: Sequence[str] = (),
) -> None:
    """A rich table that never cuts a figure: numbers, codes and dates are never wrapped; free
    text (holding spaces) wraps. If even so the columns are too wide for the terminal, they are
    folded into several tables one under the other, each starting with the first column (the
    row's name), so that every figure is printed whole."""
    from rich.console import Console

    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=200)  # a pipe or file: do not wrap for an 80-column default
    widths = [max([len(name), *(len(r[i]) for r in cells)]) for i, name in enumerate(columns)]
    if len(cells) > LARGE:
        for n, group in enumerate(_fold([2 + w for w in widths], console.width - 1)):
            _plain(title if n == 0 else "(continued)", columns, cells, group, right, widths)
        return
    text = [any(" " in r[i] for r in cells) for i in range(len(columns))]
    need = [
        # 3: a cell's padding and its border; text needs only a few characters to wrap in.
        3 + min(TEXT_WIDTH, w) if text[i] else 3 + w
        for i, w in enumerate(widths)
    ]
    groups = _fold(need, console.width - 1)
    for n, group in enumerate(groups):
        heading = title if n == 0 else "(continued)"
        console.print(_table(heading, columns, cells, group, right, text))


TEXT_WIDTH = 12  # the least a wrapping text column is given before columns are folded
# Rows past which a table is printed as plain aligned columns: rich lays out about 3,000 rows
# a second and holds them all, and a wide `diff` has hundreds of thousands.
LARGE = 2000


def _plain(
    title: str | None,
    columns: Sequence[str],
    cells: list[list[str]],
    group: list[int],
    right: Sequence[str],
    widths: list[int],
) -> None:
    """The columns of `group` as plain text, aligned, under their names and a rule; nothing
    wraps and nothing is cut."""
    aligned = [(i, str.rjust if columns[i] in right else str.ljust, widths[i]) for i in group]

    def line(values: Sequence[str]) -> str:
        return "  ".join(pad(values[i], width) for i, pad, width in aligned).rstrip() + "\n"

    out = sys.stdout
    if title:
        out.write(title + "\n")
    out.write(line(columns))
    out.write("  ".join("-" * widths[i] for i in group) + "\n")
    for start in range(0, len(cells), 5000):
        out.write("".join(line(row) for row in cells[start : start + 5000]))


def _fold(need: list[int], width: int) -> list[list[int]]:
    """The columns' indexes in groups that each fit WIDTH, every group after the first led by
    column 0 (all of them in one group when they fit)."""
    if sum(need) <= width or len(need) < 2:
        return [list(range(len(need)))]
    groups: list[list[int]] = [[0]]
    used = need[0]
    for i in range(1, len(need)):
        if used + need[i] > width and len(groups[-1]) > 1:
            groups.append([0])
            used = need[0]
        groups[-1].append(i)
        used += need[i]
    return groups


def _table(
    title: str | None,
    columns: Sequence[str],
    cells: list[list[str]],
    group: list[int],
    right: Sequence[str],
    text: list[bool],
):
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for i in group:
        name = columns[i]
        table.add_column(
            name,
            justify="right" if name in right else "left",
            no_wrap=not text[i],
            overflow="fold",
            min_width=None if text[i] else len(name),
        )
    for row in cells:
        table.add_row(*(row[i] for i in group))
    return table
