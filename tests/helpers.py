"""Small helpers shared by the tests: run the CLI, count what a store holds."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from soc_ledger.cli import main


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def trail(db: str) -> list[dict]:
    result = run("events", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def line(**fields) -> str:
    return json.dumps(fields)
