"""Parsing event lines: JSON with exact decimals, each line validated into an `Incoming`
event. Every problem is collected (`file:line: field: what`) for the batch to be refused whole.

Before a line reaches the event models its shape is bounded: at most `MAX_LINE` characters,
nesting at most `MAX_DEPTH` deep, and every integer within `values.MAX_INTEGER`, so nothing that
passes here can fail to be stored, hashed or read back exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import takewhile
from typing import Any, TextIO

from pydantic import ValidationError

from soc_ledger.domain.events import EVENT_ADAPTER
from soc_ledger.domain.values import MAX_INTEGER
from soc_ledger.ledger.problems import Problem
from soc_ledger.ledger.recording import Incoming

# A claim lists a line per case: the top-up funder's quarterly claim on 41,000 cases (the demo
# at scale 100) is about 2.5 MB. A line past this is not an event.
MAX_LINE = 16_000_000
# Characters parsed at most per chunk (with one line more): lines are bounded, chunks too, so
# memory is whatever the lines' lengths (`parsed_chunks`).
CHUNK_CHARACTERS = 32_000_000
# The deepest valid event nests 5 levels (a correction of a contract's fee list); each
# correction of a correction adds one.
MAX_DEPTH = 20


def bounded_lines(file: TextIO) -> Iterator[str]:
    """The file's lines without their line ends, none held longer than `MAX_LINE` + 1
    characters: the rest of an over-long line is read and dropped, so one huge line costs no
    memory, and the cut line (still over the bound) is refused by its number like any other."""
    while True:
        text = file.readline(MAX_LINE + 1)
        if not text:
            return
        if len(text) > MAX_LINE and not text.endswith("\n"):
            rest = text
            while rest and not rest.endswith("\n"):
                rest = file.readline(MAX_LINE + 1)
        yield text.removesuffix("\n")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError(f"field {name!r} appears twice")
        seen[name] = value
    return seen


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_json_line(text: str) -> Any:
    """JSON with exact decimals: no binary float is ever made."""
    return json.loads(
        text,
        parse_float=Decimal,
        parse_constant=_no_constants,
        object_pairs_hook=_no_duplicate_keys,
    )


def _fits(data: Any) -> bool:
    """Whether `data` is nested at most MAX_DEPTH deep with every integer storable: the quick
    pass every line takes (no paths built); only a line that fails it is walked again by
    `shape_problem` to name the place."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        for item in value.values() if type(value) is dict else value:
            kind = type(item)
            if kind is dict or kind is list:
                if depth + 1 >= MAX_DEPTH:
                    return False
                todo.append((item, depth + 1))
            elif kind is int and not -MAX_INTEGER <= item <= MAX_INTEGER:
                return False
    return True


def shape_problem(data: Any) -> tuple[str, str] | None:
    """The first place where `data` is nested too deeply or holds an integer no store keeps
    exactly: (field, what is wrong)."""
    if isinstance(data, dict | list) and _fits(data):
        return None
    todo: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while todo:
        value, path = todo.pop()
        where = ".".join(path) or "(line)"
        if isinstance(value, dict | list) and len(path) >= MAX_DEPTH:
            # Named by the field that holds it, not by twenty list indices.
            named = list(takewhile(lambda part: not part.isdigit(), path[:4])) or ["(line)"]
            return ".".join(named), f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            todo.extend((item, (*path, str(name))) for name, item in value.items())
        elif isinstance(value, list):
            todo.extend((item, (*path, str(n))) for n, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_INTEGER <= value <= MAX_INTEGER:
                return where, (
                    f"the integer {value} is beyond ±{MAX_INTEGER} (2^53 - 1), the largest "
                    "the ledger stores exactly; an amount of money can be written as a string"
                )
    return None


def problems_from(error: ValidationError, source: str, line: int) -> list[Problem]:
    problems = []
    for err in error.errors():
        loc = [str(part) for part in err["loc"]]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            tag = err.get("ctx", {}).get("tag")
            message = (
                f"unknown event type {tag!r}" if tag is not None else "missing (the event type)"
            )
            problems.append(Problem(source, line, "type", message))
            continue
        path = ".".join(loc[1:]) or "(event)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem(source, line, path, message))
    return problems


def parse_lines(
    lines: Iterable[str], source: str, first_line: int = 1
) -> tuple[list[Incoming], list[Problem]]:
    incoming: list[Incoming] = []
    problems: list[Problem] = []
    for number, text in enumerate(lines, start=first_line):
        if not text.strip():
            continue
        if len(text) > MAX_LINE:
            problems.append(
                Problem(source, number, "(line)", f"longer than {MAX_LINE:,} characters")
            )
            continue
        try:
            data = parse_json_line(text)
        except RecursionError:
            message = f"nested more than {MAX_DEPTH} levels deep"
            problems.append(Problem(source, number, "(line)", message))
            continue
        except ValueError as exc:
            problems.append(Problem(source, number, "(line)", f"not valid JSON: {exc}"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(source, number, "(line)", "expected a JSON object"))
            continue
        shape = shape_problem(data)
        if shape is not None:
            problems.append(Problem(source, number, *shape))
            continue
        try:
            incoming.append(Incoming(source, number, EVENT_ADAPTER.validate_python(data)))
        except ValidationError as exc:
            problems.extend(problems_from(exc, source, number))
    return incoming, problems


def parsed_chunks(
    lines: Iterable[str], source: str, size: int
) -> Iterator[tuple[list[Incoming], list[Problem]]]:
    """The lines parsed `size` at a time, or fewer once they hold `CHUNK_CHARACTERS` (a file
    of any length, or of very long lines, is never held whole)."""
    chunk: list[str] = []
    first = 1
    characters = 0
    for text in lines:
        chunk.append(text)
        characters += len(text)
        if len(chunk) >= size or characters >= CHUNK_CHARACTERS:
            yield parse_lines(chunk, source, first)
            first += len(chunk)
            chunk = []
            characters = 0
    if chunk:
        yield parse_lines(chunk, source, first)
