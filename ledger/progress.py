"""How long work tells its progress, without the ledger knowing how it is shown.

The write side and the read models take an optional `Progress` and tell it as they go; the
command line passes one that draws a bar on a terminal (`projections/views/progress.py`) and
none on a pipe. Before: `verify` walks 57,518 events in silence. After: the caller's
`start("verify: chain", 57518)`, then `advance("verify: chain", 1000)` every thousand
events, then `finish("verify: chain")`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

T = TypeVar("T")

EVERY = 1000  # items between two calls: a call per item would cost more than the work


class Progress(Protocol):
    def start(self, step: str, total: int | None = None) -> None:
        """`step` begins (again, if it ran before), with `total` items when known."""

    def advance(self, step: str, done: int) -> None:
        """`done` more items of `step` are done."""

    def finish(self, step: str) -> None:
        """`step` is over."""


def noted(
    items: Iterable[T], progress: Progress | None, step: str, total: int | None = None
) -> Iterator[T]:
    """`items`, counted on `progress` every EVERY items."""
    if progress is None:
        yield from items
        return
    progress.start(step, total)
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        if n % EVERY == 0:
            progress.advance(step, EVERY)
    progress.advance(step, n % EVERY)
    progress.finish(step)


@contextmanager
def phase(progress: Progress | None, step: str) -> Iterator[None]:
    """A step whose items are not counted: shown as running until it ends."""
    if progress is None:
        yield
        return
    progress.start(step)
    try:
        yield
    finally:
        progress.finish(step)
