"""What is wrong with an input, and the refusal of a whole batch (SPEC §11: every bad input gets
a clear error naming file, line and field, and writes nothing).

`Problem` is one `file:line: field: what is wrong`; `Rejected` carries every problem of a batch
that was refused whole. The record, the SSDA903 import and `--check` all speak in them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from soc_ledger.domain.errors import LedgerError


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        # A field name is input too: one that could blur where the name ends (a control
        # character, a space at either end, ": ") is quoted.
        plain = self.field.isprintable() and self.field.strip() == self.field
        name = self.field if plain and ": " not in self.field else json.dumps(self.field)
        return f"{self.source}:{self.line}: {name}: {self.message}"


class Rejected(LedgerError):
    """A batch with problems; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {noun}; nothing was written")

    def lines(self) -> list[str]:
        """Every problem, one line each (`file:line: field: what`)."""
        return [str(problem) for problem in self.problems]
