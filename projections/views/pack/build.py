"""Writing an auditor's pack into a folder: pages, plots, workbook, CSVs, then the manifest.

The folder must not exist or be empty: a pack is never written over another (there is no
`--force`; remove the folder first). Every file but `manifest.json` depends only on the ledger
and the command's options, so a second run gives the same bytes; the time the pack was made is
stated in `manifest.json` alone, beside each file's SHA-256 and the command line.

Before/after: `write_pack("pack", contents, "soc-ledger audit-pack pack --as-of 2023-12-31")`
on a missing `pack/` leaves `pack/index.html`, `pack/workbook.xlsx`, `pack/csv/*.csv`,
`pack/plots/*.png` and `pack/manifest.json`, whose `files` name every other file once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from soc_ledger.domain.errors import LedgerError
from soc_ledger.projections.views.pack.collect import Contents

STEPS = [
    "liability",
    "cases",
    "claims",
    "changes",
    "returns",
    "verify",
    "plots",
    "pages",
    "workbook",
]


class PackError(LedgerError):
    """The pack's folder cannot be used (exists and holds files, or cannot be written)."""


def check_folder(out: str) -> None:
    """Refused before any work: OUT holds something already, or is a file."""
    if os.path.isfile(out):
        raise PackError(f"{out}: is a file; give a folder that does not exist or is empty")
    if os.path.isdir(out) and os.listdir(out):
        raise PackError(f"{out}: the folder is not empty; a pack is never written over files")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise PackError(f"{out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PackError(f"{out}: cannot create a folder in {parent} (permission denied)")


def plots(c: Contents, out: str) -> list[tuple[str, str]]:
    """The pictures, drawn into OUT/plots: (path inside the pack, title)."""
    from soc_ledger.projections.views import plots as draw

    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    made = []
    title = draw.liability_title(c.contract, c.as_of, c.known_at)
    draw.plot_liability(
        c.owed_series, title, os.path.join(out, "plots", "owed.png"), c.top_up_funder
    )
    made.append(("plots/owed.png", "Cumulative outcome payments owed"))
    if c.drawn is not None:
        draw.plot_finances(*c.drawn, os.path.join(out, "plots", "finances.png"))
        made.append(("plots/finances.png", "Investors' capital and the contract's finances"))
    return made


@contextmanager
def progress(out: str) -> Iterator[Callable[[str], None]]:
    """A step-by-step bar on a terminal's stderr (a pack of the demo takes ~10 s); silent in a
    pipe or a test."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"pack {out}", total=len(STEPS))

        def step(name: str) -> None:
            bar.update(
                task,
                description=f"pack {out}: {name}",
                completed=STEPS.index(name) if name in STEPS else None,
            )

        yield step


def write_pack(
    out: str,
    c: Contents,
    command: str,
    step: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Write the pack of C into OUT; the files with their SHA-256 (the manifest's list)."""
    from soc_ledger.projections.views.pack import pages, workbook

    say = step or (lambda _: None)
    check_folder(out)
    try:
        os.makedirs(out, exist_ok=True)
        say("plots")
        drawn = plots(c, out)
        say("pages")
        for path, text in pages.build(c, drawn).items():
            _write(out, path, text.encode("utf-8"))
        say("workbook")
        tables = workbook.sheets(c)
        workbook.write_workbook(os.path.join(out, "workbook.xlsx"), c, tables, command)
        for t in tables:
            _write(out, f"csv/{t.file}", workbook.write_csv(t))
        files = _hashes(out)
        manifest = {
            "command": command,
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "contract": c.contract,
            "as_of": c.as_of.isoformat(),
            "known_at": c.known_at.isoformat() if c.known_at else None,
            "since_known_at": c.since.isoformat() if c.since else None,
            "payer": c.payer,
            "log_head": {"position": c.head[0], "hash": c.head[1]},
            "files": [{"path": p, "sha256": h} for p, h in sorted(files.items())],
        }
        _write(out, "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise PackError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return files


def _write(out: str, path: str, data: bytes) -> None:
    full = os.path.join(out, *path.split("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as handle:
        handle.write(data)


def _hashes(out: str) -> dict[str, str]:
    found = {}
    for folder, _, names in os.walk(out):
        for name in names:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, out).replace(os.sep, "/")
            with open(full, "rb") as handle:
                found[rel] = hashlib.sha256(handle.read()).hexdigest()
    return found
