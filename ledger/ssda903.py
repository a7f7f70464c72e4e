"""SSDA903 returns: read, match, clip to the period, validate, and plan the events (SPEC §6).

A return is a borough's statement about one period: for every referred child, the days of that
period on which they were looked after. The pieces, pure where they can be:

- `read_return` reads the DfE CSV pair (header and episodes tables) or the XML form of the
  return (detected from the content) into `EpisodeRow`s; a malformed file is `Rejected` with
  every structural problem named by file and line;
- `clip_child` validates one child's rows and clips them to the period;
- `view_from_facts` folds the facts known now into what the planner needs;
- `plan_import` matches rows to referred cases and turns the return into the events that
  make the ledger say what the return says: new, corrected and retracted episodes, then
  `CareDataReceived`;
- `import_return` is the one impure step: read the ledger, plan, append in one batch.

Readings (an auditor's, written down in docs/ssda903.md):

- **Matching.** A row is used only when its CHILD, pseudonymised with the ledger's key, is the
  `child_ref` of a referral of that borough (known now, corrections applied). Every other row
  is counted and discarded: nothing of it is stored. A child referred twice (two cases) gets
  the episodes in both cases.
- **Clipping.** A used row is in care from max(DECOM, period start) up to, not including,
  min(DEC, the day after the period end); an open row runs to the end of the period. Rows with
  no day in the period are counted and ignored (not validated).
- **Episode ids** are `903:<borough>:<period start>:<DECOM>`: stable across resubmissions of the
  period, so a changed DEC, REC, LS or PLACE is a correction of the same episode, and a new
  DECOM a new episode (the old one vanishes). One long stay spanning several returns is one
  clipped episode per period.
- **The period end.** Every clipped episode is recorded closed. One still open at the period
  end, or ending after it, gets a `CareEpisodeEnded` dated the day after the period end with
  reason `period-end` (not an SSDA903 code): the return says nothing about later days, which
  are the next return's to state (its episode starts on that same day; DEC is exclusive, so
  the two do not overlap). An episode whose DEC is exactly the day after the period end keeps
  its REC.
- **Keys.** Starts and ends: `903:<borough>:<period start>:<case>:<DECOM>:start@<received>`
  (`:end@`); corrections `...:start-fix@<received>`, retractions `...:start-retracted@<received>`
  (and `end-`); `CareDataReceived`: `903:<borough>:<period start>:<period end>:<received>:<digest>`
  where the digest (16 hex digits of SHA-256) is over the return's episode rows, whatever the
  form. A re-import of the same return plans nothing; a different return with the same received
  date, an older return than one already imported for the period, or a period overlapping
  another imported period of the borough is refused.
- **Resubmission.** A return for a period imported before supersedes it: the planner compares
  it with the facts known now for that borough and period (episode ids with the period's
  prefix) and records only the differences, all with `recorded_on` = the received date, so
  answers known before that date still read the first return.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.parsers import expat

from pydantic import ValidationError

from soc_ledger.domain import events as ev
from soc_ledger.domain.case import Episode
from soc_ledger.domain.errors import LedgerError
from soc_ledger.domain.knowledge import EVERYTHING, Fact
from soc_ledger.domain.outcomes.facts import coverage_from_facts
from soc_ledger.ledger.location import StoreError
from soc_ledger.ledger.recording import Incoming, Outcome, Problem, Rejected
from soc_ledger.projections import readmodel

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

# The DfE code lists checked on used rows (SSDA903 guidance, collection year 2017-18, the year
# of the validator sample; DfE validation rules 144, 146 and 149). A later year's new codes are
# refused as unknown until they are added here.
LEGAL_STATUSES = frozenset("C1 C2 D1 E1 J1 J2 J3 L1 L2 L3 V2 V3 V4".split())
REASONS_EPISODE_CEASED = frozenset(
    "X1 E11 E12 E13 E14 E15 E16 E17 E2 E3 E4A E4B E41 E45 E46 E47 E48 E5 E6 E7 E8 E9".split()
)
PLACEMENTS = frozenset(
    "A3 A4 A5 A6 H5 K1 K2 P1 P2 P3 R1 R2 R3 R5 S1 T0 T1 T2 T3 T4 U1 U2 U3 U4 U5 U6 Z1".split()
)
NEW_EPISODE_SAME_DAY = "X1"
PERIOD_END = "period-end"  # the reason of an end that is only the end of the return's period
ONE_DAY = timedelta(days=1)
PREFIX = "903"

Progress = Callable[[int, int], None]  # (rows done, rows in all)


class ReturnError(LedgerError):
    """The import as a whole cannot go ahead (period, received date, contract); one line."""


# --- the period -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The days a return speaks for: `start` to `end`, both included."""

    start: date
    end: date

    @classmethod
    def of(
        cls, end: date | None = None, year: int | None = None, start: date | None = None
    ) -> Period:
        """`end` (or 31 March of `year`); `start` by default the day after `end` a year earlier."""
        if year is not None:
            if not 1900 <= year <= 9998:
                raise ReturnError(f"--year {year} is not a collection year")
            by_year = date(year, 3, 31)
            if end is not None and end != by_year:
                raise ReturnError(
                    f"--year {year} means a period ending {by_year}, but --period-end is {end}"
                )
            end = by_year
        if end is None:
            raise ReturnError("give --period-end (or --year for a collection year to 31 March)")
        if start is None:
            start = _a_year_before(end) + ONE_DAY
        if start > end:
            raise ReturnError(f"the period starts on {start}, after it ends on {end}")
        return cls(start, end)

    @property
    def stop(self) -> date:
        """The first day after the period (the exclusive end of its clipped episodes)."""
        return self.end + ONE_DAY

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end

    def __str__(self) -> str:
        return f"{self.start} to {self.end}"


def _a_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return date(day.year - 1, 2, 28)


# --- reading the files ----------------------------------------------------------------------


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


def _xml_tree(text: str, name: str) -> _Node:
    parser = expat.ParserCreate()
    top = _Node("(document)", 0)
    stack = [top]

    def start(tag: str, attrs: dict) -> None:
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


# --- one child's rows: validate and clip ----------------------------------------------------

_DMY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_dfe_date(text: str, iso: bool = False) -> date:
    """A DfE date dd/mm/yyyy (or, from XML, YYYY-MM-DD); ValueError saying what is wrong."""
    match = _DMY.match(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
    elif iso and _YMD.match(text):
        year, month, day = (int(g) for g in _YMD.match(text).groups())  # type: ignore[union-attr]
    else:
        expected = "dd/mm/yyyy or YYYY-MM-DD" if iso else "dd/mm/yyyy"
        raise ValueError(f"expected a date {expected}, got {text!r}")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a real calendar date") from None


def _show(day: date | None) -> str:
    return "open" if day is None else day.strftime("%d/%m/%Y")


@dataclass(frozen=True, slots=True)
class Clip:
    """One used row clipped to the period: in care on start <= d < end."""

    row: EpisodeRow
    decom: date
    start: date
    end: date
    reason: str  # REC, or PERIOD_END when the row runs past the period
    legal_status: str
    placement: str


def clip_child(rows: Sequence[EpisodeRow], period: Period) -> tuple[list[Clip], int, list[Problem]]:
    """Validate one child's rows and clip them to the period.

    Returns the clipped episodes (in date order), the number of rows with no day in the period
    (ignored, not validated beyond their dates) and every problem of the used rows.
    """
    problems: list[Problem] = []
    dated: list[tuple[EpisodeRow, date, date | None]] = []
    starts: set[date] = set()
    outside = 0
    for row in rows:
        decom, decom_error = _try_date(row, "DECOM")
        dec, dec_error = _try_date(row, "DEC") if row["DEC"] else (None, None)
        if decom is not None:
            starts.add(decom)
        # A row that certainly has no day in the period is not used, whatever else is wrong.
        if (decom is not None and decom > period.end) or (
            dec is not None and dec <= period.start and (decom is None or decom <= dec)
        ):
            outside += 1
            continue
        if decom_error or dec_error:
            problems.extend(p for p in (decom_error, dec_error) if p is not None)
            continue
        assert decom is not None
        if dec is not None and dec < decom:
            problems.append(
                Problem(
                    row.source,
                    row.line,
                    "DEC",
                    f"{_show(dec)} is before DECOM {_show(decom)}: an episode cannot cease "
                    "before it starts",
                )
            )
            continue
        dated.append((row, decom, dec))

    used: list[tuple[EpisodeRow, date, date | None, date, date]] = []
    for row, decom, dec in dated:
        start = max(decom, period.start)
        end = min(dec or period.stop, period.stop)
        if start >= end:
            outside += 1
            continue
        used.append((row, decom, dec, start, end))
        problems.extend(_row_problems(row, dec, period, starts))
    problems.extend(_overlaps(used))
    if problems:
        return [], outside, problems
    clips = [
        Clip(
            row,
            decom,
            start,
            end,
            row["REC"] if dec is not None and dec <= period.stop else PERIOD_END,
            row["LS"],
            row["PLACE"],
        )
        for row, decom, dec, start, end in used
    ]
    clips.sort(key=lambda c: (c.start, c.end))
    return clips, outside, []


def _try_date(row: EpisodeRow, column: str) -> tuple[date | None, Problem | None]:
    try:
        return parse_dfe_date(row[column], row.iso_dates), None
    except ValueError as exc:
        return None, Problem(row.source, row.line, column, str(exc))


def _code_problem(row: EpisodeRow, column: str, codes: frozenset[str], what: str) -> list[Problem]:
    value = row[column]
    if not value:
        return [Problem(row.source, row.line, column, f"blank; expected {what}")]
    if value not in codes:
        return [
            Problem(
                row.source,
                row.line,
                column,
                f"{value!r} is not {what} (one of {' '.join(sorted(codes))})",
            )
        ]
    return []


def _row_problems(
    row: EpisodeRow, dec: date | None, period: Period, starts: set[date]
) -> list[Problem]:
    problems = _code_problem(row, "LS", LEGAL_STATUSES, "an SSDA903 legal status")
    problems += _code_problem(row, "PLACE", PLACEMENTS, "an SSDA903 placement code")
    rec = row["REC"]
    if rec and rec not in REASONS_EPISODE_CEASED:
        problems.append(
            Problem(
                row.source,
                row.line,
                "REC",
                f"{rec!r} is not an SSDA903 reason episode ceased "
                f"(one of {' '.join(sorted(REASONS_EPISODE_CEASED))})",
            )
        )
    if dec is not None and not rec:
        problems.append(
            Problem(
                row.source,
                row.line,
                "REC",
                f"blank, but DEC is {_show(dec)}: an episode that ceased needs its reason "
                "(DEC and REC are both given or both blank)",
            )
        )
    elif dec is None and rec:
        problems.append(
            Problem(
                row.source,
                row.line,
                "DEC",
                f"blank, but REC is {rec!r}: an open episode has neither DEC nor REC "
                "(DEC and REC are both given or both blank)",
            )
        )
    elif rec == NEW_EPISODE_SAME_DAY and dec is not None and dec <= period.end:
        if dec not in starts:
            problems.append(
                Problem(
                    row.source,
                    row.line,
                    "REC",
                    f"X1 says a new episode starts on DEC {_show(dec)}, but no episode of "
                    "this child in the return starts that day",
                )
            )
    return problems


def _overlaps(used: list[tuple[EpisodeRow, date, date | None, date, date]]) -> list[Problem]:
    """Problems for every used row that overlaps an earlier one inside the period."""
    problems: list[Problem] = []
    ordered = sorted(used, key=lambda u: (u[3], u[4], u[0].line))
    latest: tuple[EpisodeRow, date, date | None, date, date] | None = None
    for item in ordered:
        row, decom, dec, start, end = item
        if latest is not None and start < latest[4]:
            other = latest[0]
            same = dict(other.values) == dict(row.values)
            what = (
                f"duplicates the episode on line {other.line}"
                if same
                else (
                    f"this episode ({_show(decom)} to {_show(dec)}) overlaps the episode on "
                    f"line {other.line} ({_show(latest[1])} to {_show(latest[2])}) of the same "
                    "child inside the period"
                )
            )
            problems.append(Problem(row.source, row.line, "DECOM", what))
        if latest is None or end > latest[4]:
            latest = item
    return problems


# --- what the ledger knows ------------------------------------------------------------------


def episode_id(borough: str, period: Period, decom: date) -> str:
    return f"{PREFIX}:{borough}:{period.start}:{decom}"


def episode_prefix(borough: str, period: Period) -> str:
    return f"{PREFIX}:{borough}:{period.start}:"


def receipt_key(borough: str, period: Period, received_on: date, digest: str) -> str:
    return f"{PREFIX}:{borough}:{period.start}:{period.end}:{received_on}:{digest}"


_RECEIPT = re.compile(
    r"^903:(?P<borough>[^:]+):(?P<start>\d{4}-\d{2}-\d{2}):(?P<end>\d{4}-\d{2}-\d{2}):"
    r"(?P<received>\d{4}-\d{2}-\d{2}):(?P<digest>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A return imported before: a `CareDataReceived` this importer recorded."""

    period: Period
    received_on: date
    digest: str


@dataclass(frozen=True, slots=True)
class Recorded903:
    """An episode of this borough and period as the ledger reads it now."""

    case: str
    episode: str
    start: ev.CareEpisodeStarted
    end: ev.CareEpisodeEnded | None
    start_target: str  # its key (or #position) for corrections and retractions
    end_target: str | None

    @property
    def decom(self) -> str:
        return self.episode.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What the planner needs from the facts known now, for one borough and period."""

    contract: str
    referred: Mapping[str, tuple[str, ...]]  # child pseudonym -> the borough's cases
    episodes: Mapping[str, Mapping[str, Episode]]  # case -> every episode it has (any source)
    recorded: Mapping[str, Mapping[str, Recorded903]]  # case -> this period's episodes
    receipts: tuple[Receipt, ...]  # this borough's returns imported before
    coverage: date | None  # the borough's care data verified up to


def _target(fact: Fact) -> str:
    return fact.event.key or f"#{fact.recorded.position}"


def view_from_facts(
    facts: Iterable[Fact], contract: str, borough: str, period: Period
) -> LedgerView:
    """Fold the facts known now (corrections applied) into the planner's view."""
    cases: dict[str, str] = {}
    starts: dict[tuple[str, str], Fact] = {}
    ends: dict[tuple[str, str], Fact] = {}
    receipts: list[Receipt] = []
    facts = list(facts)
    for fact in facts:
        e = fact.event
        if e.contract != contract:
            continue
        if isinstance(e, ev.ReferralReceived):
            if e.borough == borough:
                cases[e.case] = e.child_ref
        elif isinstance(e, ev.CareEpisodeStarted):
            starts[(e.case, e.episode)] = fact
        elif isinstance(e, ev.CareEpisodeEnded):
            ends[(e.case, e.episode)] = fact
        elif isinstance(e, ev.CareDataReceived) and e.borough == borough:
            match = _RECEIPT.match(e.key or "")
            if match and match["borough"] == borough:
                receipts.append(
                    Receipt(
                        Period(
                            date.fromisoformat(match["start"]), date.fromisoformat(match["end"])
                        ),
                        date.fromisoformat(match["received"]),
                        match["digest"],
                    )
                )
    referred: dict[str, list[str]] = defaultdict(list)
    for case, child_ref in sorted(cases.items()):
        referred[child_ref].append(case)
    prefix = episode_prefix(borough, period)
    episodes: dict[str, dict[str, Episode]] = defaultdict(dict)
    recorded: dict[str, dict[str, Recorded903]] = defaultdict(dict)
    for (case, name), start_fact in starts.items():
        if case not in cases:
            continue
        end_fact = ends.get((case, name))
        start = start_fact.event
        end = end_fact.event if end_fact is not None else None
        assert isinstance(start, ev.CareEpisodeStarted)
        assert end is None or isinstance(end, ev.CareEpisodeEnded)
        episodes[case][name] = Episode(start.effective, end.effective if end else None)
        if name.startswith(prefix):
            recorded[case][name] = Recorded903(
                case,
                name,
                start,
                end,
                _target(start_fact),
                _target(end_fact) if end_fact is not None else None,
            )
    return LedgerView(
        contract,
        {ref: tuple(found) for ref, found in referred.items()},
        episodes,
        recorded,
        tuple(receipts),
        coverage_from_facts(facts, contract).get(borough),
    )


# --- the plan -------------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """What an import read, matched, discarded and changed."""

    borough: str
    period: Period
    received_on: date
    rows: int = 0  # episode rows read
    header_children: int = 0  # children in the header table
    children: int = 0  # distinct CHILD ids among the episode rows
    children_matched: int = 0  # ... that are referred children of the borough
    cases_matched: int = 0  # referred cases with at least one row in the return
    cases_absent: int = 0  # referred cases of the borough with no row: not in care
    rows_unmatched: int = 0  # discarded, never stored
    rows_outside: int = 0  # matched rows with no day in the period: ignored
    rows_used: int = 0
    episodes_new: int = 0
    episodes_corrected: int = 0
    episodes_retracted: int = 0
    episodes_unchanged: int = 0
    already_imported: bool = False  # the same return was imported before (same received date)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["period"] = {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
        }
        data["received_on"] = self.received_on.isoformat()
        return data


@dataclass(slots=True)
class Plan:
    incoming: list[Incoming]
    summary: Summary
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class _Stated:
    """One clipped episode of a case, as the return states it."""

    case: str
    episode: str
    clip: Clip


def check_receipts(
    view: LedgerView, borough: str, period: Period, received_on: date, digest: str
) -> bool:
    """Is this return already imported? ReturnError if it cannot supersede what is there."""
    known = False
    for receipt in view.receipts:
        if receipt.period == period:
            if receipt.received_on > received_on:
                raise ReturnError(
                    f"a later return for {borough} {period} (received {receipt.received_on}) "
                    f"is already imported; a return received on {received_on} cannot "
                    "supersede it"
                )
            if receipt.received_on == received_on:
                if receipt.digest != digest:
                    raise ReturnError(
                        f"a different return for {borough} {period} was already imported as "
                        f"received on {received_on}; give a resubmission its own --received-on"
                    )
                known = True
        elif receipt.period.overlaps(period):
            raise ReturnError(
                f"the period {period} overlaps the period {receipt.period} of a return of "
                f"{borough} already imported; a resubmission must name the same period"
            )
    return known


def plan_import(
    ret: Return,
    view: LedgerView,
    borough: str,
    period: Period,
    received_on: date,
    pseudonym: Callable[[str], str],
) -> Plan:
    """The events that make the ledger say what this return says about its period."""
    summary = Summary(borough, period, received_on, rows=len(ret.episodes))
    summary.header_children = ret.header_children
    summary.already_imported = check_receipts(view, borough, period, received_on, ret.digest)

    by_child: dict[str, list[EpisodeRow]] = defaultdict(list)
    for row in ret.episodes:
        by_child[row.child].append(row)
    summary.children = sum(1 for child in by_child if child)

    problems: list[Problem] = []
    stated: dict[str, dict[str, _Stated]] = defaultdict(dict)
    matched_cases: set[str] = set()
    for child, rows in by_child.items():
        cases = view.referred.get(pseudonym(child), ()) if child else ()
        if not cases:
            summary.rows_unmatched += len(rows)
            continue
        summary.children_matched += 1
        matched_cases.update(cases)
        clips, outside, found = clip_child(rows, period)
        summary.rows_outside += outside
        summary.rows_used += len(rows) - outside
        problems.extend(found)
        for case in cases:
            for clip in clips:
                name = episode_id(borough, period, clip.decom)
                stated[case][name] = _Stated(case, name, clip)
    all_cases = {case for found in view.referred.values() for case in found}
    summary.cases_matched = len(matched_cases)
    summary.cases_absent = len(all_cases - matched_cases)
    if problems:
        return Plan([], summary, sorted(problems, key=lambda p: (p.source, p.line, p.field)))

    writer = _Writer(ret, view, borough, period, received_on)
    for case in sorted(all_cases):
        writer.case(case, stated.get(case, {}), view.recorded.get(case, {}), summary)
    if writer.problems:
        return Plan([], summary, writer.problems)
    if not summary.already_imported:
        writer.receipt()
    return Plan(writer.incoming, summary, [])


class _Writer:
    """Builds the events of one import, simulating the Case rule on episodes as it goes."""

    def __init__(
        self, ret: Return, view: LedgerView, borough: str, period: Period, received_on: date
    ) -> None:
        self.ret = ret
        self.view = view
        self.borough = borough
        self.period = period
        self.received_on = received_on
        self.incoming: list[Incoming] = []
        self.problems: list[Problem] = []

    # -- events ------------------------------------------------------------------------------

    def _add(self, line: int, data: dict[str, Any]) -> None:
        data.update(
            contract=self.view.contract,
            recorded_on=self.received_on,
        )
        data.setdefault("effective", self.received_on)
        try:
            event = ev.EVENT_ADAPTER.validate_python(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][1:]) or "(event)"
            self.problems.append(Problem(self.ret.episodes_file, line, where, err["msg"]))
            return
        self.incoming.append(Incoming(self.ret.episodes_file, line, event))

    def _key(self, case: str, decom: str, what: str) -> str:
        return (
            f"{PREFIX}:{self.borough}:{self.period.start}:{case}:{decom}:{what}@{self.received_on}"
        )

    def _source(self, clip: Clip) -> str:
        return f"{os.path.basename(clip.row.source)}:{clip.row.line}"

    def _why(self) -> str:
        return f"903 return of {self.borough} for {self.period}, received {self.received_on}"

    def receipt(self) -> None:
        self._add(
            0,
            {
                "type": "CareDataReceived",
                "key": receipt_key(self.borough, self.period, self.received_on, self.ret.digest),
                "borough": self.borough,
                "covers_until": self.period.end,
                "source": f"{self._why()}: {self.ret.names}",
            },
        )

    # -- one case ----------------------------------------------------------------------------

    def case(
        self,
        case: str,
        wanted: Mapping[str, _Stated],
        recorded: Mapping[str, Recorded903],
        summary: Summary,
    ) -> None:
        state = dict(self.view.episodes.get(case, {}))
        vanished = sorted(
            (recorded[n] for n in recorded if n not in wanted),
            key=lambda r: (r.start.effective, r.episode),
            reverse=True,  # latest first: an earlier one is never reopened over a later one
        )
        for gone in vanished:
            self._retract(case, gone, state)
            summary.episodes_retracted += 1
        for name in sorted(set(wanted) & set(recorded), key=lambda n: wanted[n].clip.start):
            if self._correct(case, wanted[name], recorded[name], state):
                summary.episodes_corrected += 1
            else:
                summary.episodes_unchanged += 1
        for name in sorted(set(wanted) - set(recorded), key=lambda n: wanted[n].clip.start):
            self._start(case, wanted[name], state)
            summary.episodes_new += 1

    def _blocking(self, name: str, episode: Episode, state: Mapping[str, Episode]) -> str | None:
        for other, span in sorted(state.items(), key=lambda kv: kv[1].start):
            if other != name and episode.overlaps(span):
                return f"episode {other!r} ({span.start} to {span.end or 'open'})"
        return None

    def _retract(self, case: str, gone: Recorded903, state: dict[str, Episode]) -> None:
        # The start goes first: a case re-read without its start ignores the orphaned end,
        # and no reading ever has the episode open over a later one.
        reason = f"{self._why()}: the episode is no longer in the return"
        source = f"{self._why()}: {self.ret.names}"
        parts = [("start-retracted", gone.start_target)]
        if gone.end_target is not None:
            parts.append(("end-retracted", gone.end_target))
        for part, target in parts:
            self._add(
                0,
                {
                    "type": "EventRetracted",
                    "key": self._key(case, gone.decom, part),
                    "target": target,
                    "reason": reason,
                    "source": source,
                },
            )
        state.pop(gone.episode, None)

    def _correct(
        self, case: str, want: _Stated, have: Recorded903, state: dict[str, Episode]
    ) -> bool:
        clip = want.clip
        decom = str(clip.decom)
        start_changes = _changes(
            have.start,
            {
                "effective": clip.start,
                "legal_status": clip.legal_status,
                "placement": clip.placement,
            },
        )
        changed = bool(start_changes)
        if start_changes:
            self._add(
                clip.row.line,
                {
                    "type": "EventCorrected",
                    "key": self._key(case, decom, "start-fix"),
                    "target": have.start_target,
                    "changes": _jsonable(start_changes),
                    "reason": f"{self._why()}: {_described(have.start, start_changes)}",
                    "source": self._source(clip),
                },
            )
        if have.end is None:
            changed = True
            self._end(case, want)
        else:
            end_changes = _changes(have.end, {"effective": clip.end, "reason": clip.reason})
            if end_changes:
                changed = True
                self._add(
                    clip.row.line,
                    {
                        "type": "EventCorrected",
                        "key": self._key(case, decom, "end-fix"),
                        "target": have.end_target,
                        "changes": _jsonable(end_changes),
                        "reason": f"{self._why()}: {_described(have.end, end_changes)}",
                        "source": self._source(clip),
                    },
                )
        if changed:
            episode = Episode(clip.start, clip.end)
            blocker = self._blocking(want.episode, episode, state)
            if blocker is not None:
                self.problems.append(
                    Problem(
                        clip.row.source,
                        clip.row.line,
                        "DEC",
                        f"as corrected, episode {want.episode!r} of case {case!r} ({clip.start} "
                        f"to {clip.end}) would overlap {blocker} already in the ledger",
                    )
                )
            state[want.episode] = episode
        return changed

    def _start(self, case: str, want: _Stated, state: dict[str, Episode]) -> None:
        clip = want.clip
        overlapping = self._blocking(want.episode, Episode(clip.start, clip.end), state)
        if overlapping is not None:
            self.problems.append(
                Problem(
                    clip.row.source,
                    clip.row.line,
                    "DECOM",
                    f"episode {want.episode!r} of case {case!r} ({clip.start} to {clip.end}) "
                    f"overlaps {overlapping} already in the ledger",
                )
            )
            return
        self._add(
            clip.row.line,
            {
                "type": "CareEpisodeStarted",
                "effective": clip.start,
                "key": self._key(case, str(clip.decom), "start"),
                "case": case,
                "episode": want.episode,
                "legal_status": clip.legal_status,
                "placement": clip.placement,
                "source": self._source(clip),
            },
        )
        self._end(case, want)
        state[want.episode] = Episode(clip.start, clip.end)

    def _end(self, case: str, want: _Stated) -> None:
        clip = want.clip
        self._add(
            clip.row.line,
            {
                "type": "CareEpisodeEnded",
                "effective": clip.end,
                "key": self._key(case, str(clip.decom), "end"),
                "case": case,
                "episode": want.episode,
                "reason": clip.reason,
                "source": self._source(clip),
            },
        )


def _changes(event: ev.Event, wanted: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in wanted.items() if getattr(event, name) != value}


def _jsonable(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in changes.items()}


def _described(event: ev.Event, changes: Mapping[str, Any]) -> str:
    parts = [f"{name} {getattr(event, name)} -> {value}" for name, value in changes.items()]
    return "; ".join(parts)


# --- the import -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    summary: Summary
    outcome: Outcome
    contract: str
    covered_until: date | None  # the borough's care data verified up to, after the import

    @property
    def nothing_new(self) -> bool:
        return self.outcome.appended == 0


def resolve_contract(engine, contract: str | None) -> str:
    """The contract of the import: the one asked for, or the only one in the store."""
    from soc_ledger.domain.errors import QueryError
    from soc_ledger.projections.queries import the_contract

    try:
        return the_contract(engine, contract)
    except QueryError as exc:
        raise ReturnError(str(exc)) from None


def read_view(ledger, contract: str | None, borough: str, period: Period) -> LedgerView:
    """The facts known now, as the planner needs them (the read model caught up first): the
    referrals, then only the borough's cases' facts and the contract's own (its care data),
    so an import reads one borough, not the whole contract."""
    from soc_ledger.projections.outcome_facts import latest_facts

    ledger.follow(readmodel.catch_up, readmodel.NAME)
    contract = resolve_contract(ledger.engine, contract)
    referrals = readmodel.facts_known_at(
        ledger.engine, contract, EVERYTHING, types=("ReferralReceived",)
    )
    mine = [f for f in referrals if f.event.borough == borough]  # type: ignore[attr-defined]
    with ledger.engine.connect() as conn:
        own = latest_facts(conn, contract)
        theirs = latest_facts(conn, contract, [f.event.case_id for f in mine]) if mine else []
    return view_from_facts([*own, *theirs], contract, borough, period)


def coverage_now(ledger, contract: str, borough: str) -> date | None:
    """The borough's care data verified up to, as known now."""
    from soc_ledger.projections.outcome_facts import latest_facts

    ledger.follow(readmodel.catch_up, readmodel.NAME)
    with ledger.engine.connect() as conn:
        return coverage_from_facts(latest_facts(conn, contract), contract).get(borough)


def import_return(
    ledger,
    ret: Return,
    borough: str,
    period: Period,
    received_on: date,
    contract: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Plan the import against the facts known now and append it all, or nothing."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", borough):
        raise ReturnError(f"--borough {borough!r}: a borough code is letters, digits, - or _")
    today = (now or datetime.now(UTC)).date()
    if received_on > today:
        raise ReturnError(f"--received-on {received_on} is in the future")
    if received_on <= period.end:
        raise ReturnError(
            f"a return for a period ending {period.end} cannot have been received on "
            f"{received_on}: it states every day of its period"
        )
    try:
        ledger.pseudonymiser.key  # noqa: B018 - fail early, before reading anything
    except StoreError as exc:
        raise ReturnError(str(exc)) from None
    view = read_view(ledger, contract, borough, period)
    plan = plan_import(ret, view, borough, period, received_on, ledger.pseudonymiser.pseudonym)
    if plan.problems:
        raise Rejected(plan.problems)
    outcome = ledger.record(plan.incoming, now=now)
    after = coverage_now(ledger, view.contract, borough) if outcome.appended else view.coverage
    return ImportResult(plan.summary, outcome, view.contract, after)


__all__ = [
    "EPISODE_COLUMNS",
    "HEADER_COLUMNS",
    "LEGAL_STATUSES",
    "PERIOD_END",
    "PLACEMENTS",
    "REASONS_EPISODE_CEASED",
    "Clip",
    "EpisodeRow",
    "ImportResult",
    "LedgerView",
    "Period",
    "Plan",
    "Return",
    "ReturnError",
    "Summary",
    "clip_child",
    "episode_id",
    "import_return",
    "parse_dfe_date",
    "plan_import",
    "read_return",
    "view_from_facts",
]
