"""Items taken a batch at a time, for work that is cheaper in batches than one by one
(Python 3.12's `itertools.batched`, which this project's 3.11 does not have, as lists)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, in order, the last one shorter if they run out."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
