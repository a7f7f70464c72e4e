"""Reading an SSDA903 return: the DfE CSV pair (header and episodes tables) or the XML form.

`read_return` reads either (detected from the content) into `EpisodeRow`s; a malformed file is
`Rejected` with every structural problem named by file and line. Rows are validated only when
they are used (`clipping`). The return's digest is over its episode rows, whatever the form.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from soc_ledger.ledger.problems import Problem, Rejected
from soc_ledger.ledger.ssda903.period import ReturnError

HEADER_COLUMNS = ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB")
EPISODE_COLUMNS = (
    "CHILD",
    "DECOM",
    "RNE",
    "LS",
    "CIN",
    "PLACE",
    "PLACE_PROVIDER",
    "DEC",
    "REC",
    "REASON_PLACE_CHANGE",
    "HOME_POST",
    "PL_POST",
    "URN",
)

Progress = Callable[[int, int], None]  # (rows done, rows in all)


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """One episode row as the return has it: DfE column -> text (stripped, '' when blank)."""

    source: str  # the file as named on the command line
    line: int
    child: str
    values: Mapping[str, str]
    iso_dates: bool = False  # the XML form also accepts YYYY-MM-DD

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass(frozen=True, slots=True)
class Return:
    """A whole return, read and structurally sound (rows are validated only when used)."""

    form: str  # "csv" | "xml"
    files: tuple[str, ...]  # as named on the command line
    header_children: int
    episodes: tuple[EpisodeRow, ...]
    digest: str  # 16 hex digits over the episode rows, the same for either form

    @property
    def episodes_file(self) -> str:
        return self.files[-1]

    @property
    def names(self) -> str:
        return ", ".join(os.path.basename(f) for f in self.files)


def read_return(
    header: str, episodes: str | None = None, progress: Progress | None = None
) -> Return:
    """Read a return from its files: the CSV pair, or one XML file (detected from the content)."""
    header_text = _read_text(header)
    if _is_xml(header_text):
        if episodes is not None:
            raise ReturnError(
                f"{header} is an XML return, which holds the header and the episodes in one "
                f"file: give it alone (not with {episodes})"
            )
        return parse_xml_return(header_text, header, progress)
    if episodes is None:
        raise ReturnError(f"{header} is a CSV header table: give the episodes table after it")
    episodes_text = _read_text(episodes)
    if _is_xml(episodes_text):
        raise ReturnError(f"{episodes} is XML: give an XML return alone, as the only file")
    return parse_csv_return(header_text, header, episodes_text, episodes, progress)


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ReturnError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Rejected(
            [
                Problem(
                    path,
                    line,
                    "(file)",
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    "save the return as UTF-8",
                )
            ]
        ) from None


def _is_xml(text: str) -> bool:
    return text.lstrip().startswith("<")


def parse_csv_return(
    header_text: str,
    header_name: str,
    episodes_text: str,
    episodes_name: str,
    progress: Progress | None = None,
) -> Return:
    problems: list[Problem] = []
    header_rows = parse_csv_table(header_text, header_name, HEADER_COLUMNS, "header", problems)
    rows = [
        EpisodeRow(episodes_name, line, values["CHILD"], values)
        for line, values in parse_csv_table(
            episodes_text, episodes_name, EPISODE_COLUMNS, "episodes", problems, progress
        )
    ]
    if problems:
        raise Rejected(problems)
    return Return("csv", (header_name, episodes_name), len(header_rows), tuple(rows), _digest(rows))


def parse_csv_table(
    text: str,
    name: str,
    columns: Sequence[str],
    table: str,
    problems: list[Problem],
    progress: Progress | None = None,
) -> list[tuple[int, dict[str, str]]]:
    """Rows of one DfE table as (line, {column: stripped text}); structural problems collected.

    Every DfE column must be in the header row; extra columns are allowed and ignored. A row
    with a different number of fields from the header row is a problem (the file is broken).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    total = max(text.count("\n"), 1)
    try:
        first = next(reader, None)
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, "(header row)", f"not valid CSV: {exc}"))
        return []
    if first is None:
        problems.append(Problem(name, 1, "(header row)", f"empty file: expected the {table} table"))
        return []
    names = [c.strip() for c in first]
    missing = [c for c in columns if c not in names]
    doubled = sorted({c for c in names if c and names.count(c) > 1})
    if missing or doubled:
        other = EPISODE_COLUMNS if table == "header" else HEADER_COLUMNS
        hint = ""
        if all(c in names for c in other):
            hint = f" (this looks like the {'episodes' if table == 'header' else 'header'} table)"
        what = (
            f"missing column(s) {', '.join(missing)}"
            if missing
            else f"column(s) {', '.join(doubled)} appear twice"
        )
        problems.append(
            Problem(
                name,
                1,
                "(header row)",
                f"{what}{hint}; the {table} table has columns {','.join(columns)}",
            )
        )
        return []
    wanted = {c: names.index(c) for c in columns}
    rows: list[tuple[int, dict[str, str]]] = []
    previous = reader.line_num
    try:
        for count, record in enumerate(reader, start=1):
            line = previous + 1
            previous = reader.line_num
            if progress is not None and count % 500 == 0:
                progress(previous, total)
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(names):
                problems.append(
                    Problem(
                        name,
                        line,
                        "(row)",
                        f"{len(record)} fields, but the header row has {len(names)}",
                    )
                )
                continue
            rows.append((line, {c: record[i].strip() for c, i in wanted.items()}))
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, "(row)", f"not valid CSV: {exc}"))
    if progress is not None:
        progress(total, total)
    return rows


# The XML form. The DfE's own ("Expanded SSDA903") layout is
#   <EXPSSDA903><CHILD><HEADER><CHILDID>..</CHILDID><SEX>..</SEX>..</HEADER>
#                      <EPISODE><DECOM>dd/mm/yyyy</DECOM><LS>..</LS><PL>..</PL>..</EPISODE>..
#   </CHILD>..</EXPSSDA903>
# and a grouped variant is read the same way:
#   <Children><Child><Header><CHILDID>..</CHILDID>..</Header>
#                    <Episodes><Episode><DECOM>..</DECOM>..</Episode>..</Episodes></Child>..
#   </Children>
# Tags are matched without regard to case or namespace prefix. A child is every CHILD element
# (not nested in another); its id is the CHILDID (or CHILD) inside its HEADER, or directly
# inside it; its episodes are every EPISODE element inside it, each field a child element named
# as the CSV column, except that PL stands for PLACE. Other elements (reviews, missing
# episodes, OC2 ...) are ignored. Dates are dd/mm/yyyy, or YYYY-MM-DD (xs:date). The root must
# be EXPSSDA903 or CHILDREN, or contain a CHILDREN element. DTDs and entities are refused.


@dataclass(slots=True)
class _Node:
    tag: str
    line: int
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].upper()

    def value(self) -> str:
        return "".join(self.text).strip()

    def walk(self) -> Iterable[_Node]:
        for child in self.children:
            yield child
            yield from child.walk()

    def first(self, *names: str) -> _Node | None:
        return next((n for n in self.walk() if n.name in names), None)


class _Refused(Exception):
    pass


# An SSDA903 return nests five deep (<Children><Child><Episodes><Episode><DECOM>); far deeper
# is not a return, and the tree is walked recursively, so it is refused before it is built.
MAX_XML_DEPTH = 64


def _xml_tree(text: str, name: str) -> _Node:
    parser = expat.ParserCreate()
    top = _Node("(document)", 0)
    stack = [top]

    def start(tag: str, attrs: dict) -> None:
        if len(stack) > MAX_XML_DEPTH:
            raise _Refused(
                f"elements nested more than {MAX_XML_DEPTH} deep; an SSDA903 return nests 5 deep"
            )
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        stack[-1].text.append(data)

    def refuse(*args: Any) -> None:
        raise _Refused("DTDs and entity declarations are not allowed in a return")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        message = expat.errors.messages.get(exc.code, str(exc))
        raise Rejected(
            [Problem(name, exc.lineno, "(xml)", f"not well-formed XML: {message}")]
        ) from None
    except _Refused as exc:
        raise Rejected([Problem(name, parser.CurrentLineNumber, "(xml)", str(exc))]) from None
    return top.children[0]


def parse_xml_return(text: str, name: str, progress: Progress | None = None) -> Return:
    root = _xml_tree(text, name)
    if root.name not in ("EXPSSDA903", "CHILDREN") and root.first("CHILDREN") is None:
        raise Rejected(
            [
                Problem(
                    name,
                    root.line,
                    "(xml)",
                    f"<{root.tag}> is not an SSDA903 return: expected <EXPSSDA903> or <Children> "
                    "holding <CHILD> elements",
                )
            ]
        )
    children = _child_nodes(root)
    rows: list[EpisodeRow] = []
    for done, child in enumerate(children, start=1):
        header = child.first("HEADER")
        ident = (header.first("CHILDID", "CHILD") if header is not None else None) or next(
            (n for n in child.children if n.name in ("CHILDID",)), None
        )
        child_id = ident.value() if ident is not None else ""
        for episode in (n for n in child.walk() if n.name == "EPISODE"):
            fields = {n.name: n.value() for n in episode.children}
            if "PLACE" not in fields and "PL" in fields:
                fields["PLACE"] = fields["PL"]
            values = {c: fields.get(c, "") for c in EPISODE_COLUMNS}
            values["CHILD"] = child_id
            rows.append(EpisodeRow(name, episode.line, child_id, values, iso_dates=True))
        if progress is not None and done % 500 == 0:
            progress(done, len(children))
    if progress is not None:
        progress(len(children), len(children))
    return Return("xml", (name,), len(children), tuple(rows), _digest(rows))


def _child_nodes(node: _Node) -> list[_Node]:
    found: list[_Node] = []
    for child in node.children:
        if child.name == "CHILD":
            found.append(child)
        else:
            found.extend(_child_nodes(child))
    return found


def _digest(rows: Sequence[EpisodeRow]) -> str:
    content = [[row[c] for c in EPISODE_COLUMNS] for row in rows]
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:16]
