"""How long work tells its progress, without the ledger knowing how it is shown.

The write side and the read models take an optional `Progress` and call it as they go; the
command line passes one that draws a bar on a terminal (`projections/views/progress.py`) and
nothing when there is none. Before: `verify` walks 57,518 events in silence. After: the
caller's `progress("chain", 1000, total=57518)` is called every thousand events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")

EVERY = 1000  # items between two calls: a call per item would cost more than the work


class Progress(Protocol):
    def __call__(self, step: str, advance: int, total: int | None = None) -> None:
        """`advance` more items of `step` done (of `total` in all, when known)."""


def noted(
    items: Iterable[T], progress: Progress | None, step: str, total: int | None = None
) -> Iterator[T]:
    """`items`, counted on `progress` EVERY items (and once at the start and at the end)."""
    if progress is None:
        yield from items
        return
    progress(step, 0, total)
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        if n % EVERY == 0:
            progress(step, EVERY, total)
    progress(step, n % EVERY, total)
