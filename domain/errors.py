"""The one base of every expected failure: the CLI catches `LedgerError` once and prints it.

Anything else that escapes a command is a bug, not a user's mistake, and is left to surface.
"""

from __future__ import annotations


class LedgerError(Exception):
    """A failure the user can act on; `str(error)` is its one-line reason."""

    def lines(self) -> list[str]:
        """Lines to print before the reason (e.g. every problem of a rejected file)."""
        return []


class QueryError(LedgerError):
    """A question that cannot be answered as asked (unknown contract, case, week)."""
