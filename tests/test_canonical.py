"""The canonical form is the basis of every digest and of the hash chain: its bytes must be
exactly those of the standard library's sorted, compact, UTF-8 JSON, whichever encoder wrote
them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc_ledger.ledger.location import canonical


def standard(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


leaves = st.none() | st.booleans() | st.integers() | st.text()
trees = st.recursive(
    leaves, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=25
)


@settings(max_examples=400)
@given(trees)
def test_canonical_bytes_are_the_standard_librarys(obj: object) -> None:
    try:
        expected = standard(obj)
    except UnicodeEncodeError:  # a lone surrogate cannot be UTF-8: refused either way
        with pytest.raises(UnicodeEncodeError):
            canonical(obj)
        return
    assert canonical(obj) == expected


def test_integers_beyond_64_bits_are_still_written() -> None:
    assert canonical({"n": 2**70, "a": [1]}) == b'{"a":[1],"n":1180591620717411303424}'
