"""Progress bars on stderr for long work, only when stderr is a terminal (never on a pipe).

One helper for every command: `progress_bars()` yields a `ledger.progress.Progress` that
draws one rich bar per step (a count and a bar where the total is known, a spinner where it
is not), or None when stderr is not a terminal, so that a pipe or a log file carries nothing
but the command's own output. The bars are transient: gone once the command ends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is loaded only where a bar is drawn: a report's start-up is timed
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from soc_ledger.ledger.progress import Progress as LedgerProgress


class Bars:
    """A `ledger.progress.Progress` drawn with rich: a task per step."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}

    def start(self, step: str, total: int | None = None) -> None:
        task = self.tasks.get(step)
        if task is None:
            self.tasks[step] = self.bar.add_task(step, total=total)
        else:
            self.bar.reset(task, total=total)

    def advance(self, step: str, done: int) -> None:
        if step not in self.tasks:
            self.start(step)
        self.bar.advance(self.tasks[step], done)

    def finish(self, step: str) -> None:
        task = self.tasks.get(step)
        if task is not None:
            # A spinner (no total) becomes a full bar: what was counted is all there was.
            found = next(t for t in self.bar.tasks if t.id == task)
            done = found.completed or 1
            self.bar.update(task, total=done, completed=done)


def rows_read(progress: LedgerProgress | None, step: str) -> Callable[[int, int], None] | None:
    """A reader's callback of (rows done, rows in all) (`ssda903.reading.Progress`), told to
    `progress` as `step`."""
    if progress is None:
        return None
    told = [-1, 0]  # the total last told, the rows done so far

    def read(done: int, total: int) -> None:
        if total != told[0]:
            progress.start(step, total)
            told[:] = [total, 0]
        progress.advance(step, done - told[1])
        told[1] = done

    return read


@contextmanager
def progress_bars(console: Console | None = None) -> Iterator[Bars | None]:
    """Bars on `console` (by default stderr, when it is a terminal); None where none is drawn."""
    if console is None:
        if not sys.stderr.isatty():
            yield None
            return
        from rich.console import Console

        console = Console(stderr=True)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    # stdout is left alone: redirected, a report piped to a file would land on the terminal.
    with Progress(
        *columns,
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        yield Bars(bar)
