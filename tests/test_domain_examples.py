"""The `>>>` before/after examples in the rules' docstrings (domain/) are true: run as doctests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import soc_ledger.domain


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(soc_ledger.domain.__path__, "soc_ledger.domain.")
        if not m.ispkg
    )


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
