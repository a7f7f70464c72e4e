"""JSON reports are written in pieces; the bytes must be those of one `json.dumps`."""

from __future__ import annotations

import json

from soc_ledger.projections.views.render import write_json


def test_json_written_in_pieces_is_one_dumps(capsys) -> None:
    data = {
        "borough": "Merton — £",
        "weeks": [{"week": n, "owed": f"{n * 214}.00", "because": [n, n + 1]} for n in range(9000)],
        "empty": {},
        "none": None,
    }
    write_json(data)
    assert capsys.readouterr().out == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
