"""JSON reports are written in pieces; the bytes must be those of one `json.dumps`."""

from __future__ import annotations

import json

from soc_ledger.projections.views.render import Made, write_json


def test_json_written_in_pieces_is_one_dumps(capsys) -> None:
    data = {
        "borough": 'Merton — £ \u0007 \\ "quoted" \u2028',
        "weeks": [{"week": n, "owed": f"{n * 214}.00", "because": [n, n + 1]} for n in range(9000)],
        "by_week": {str(n): {"rows": list(range(n % 70)), "ok": n % 2 == 0} for n in range(300)},
        "numbered": {n: [None, True, "x"] for n in range(100)},
        "rates": [0.1048, 1.45, -3.0, 12345.678],
        "empty": {},
        "empty_list": [],
        "none": None,
    }
    write_json(data)
    assert capsys.readouterr().out == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_a_long_list_of_short_and_long_items_at_any_depth_is_one_dumps(capsys) -> None:
    # Long lists are written a run of items at a time, as one orjson list whose brackets are
    # cut off; a run holding an item written piece by piece (a long list, a long object) is
    # written an item at a time. Both kinds mixed, at depths 0 to 2.
    items = [
        list(range(n)) if n % 7 == 0 else {"n": n, "list": [n] * (n % 3), "none": None}
        for n in range(700)
    ]
    for data in (items, {"a": items}, {"a": {"b": items[:300]}, "c": [items[:65], []]}):
        write_json(data)
        assert capsys.readouterr().out == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_a_made_list_is_written_as_the_list_it_makes(capsys) -> None:
    # A wide diff's changes are made as they are written (`Made`): long ones an item at a
    # time, short ones whole, at any depth; the bytes those of the made list's dumps. Every
    # item is made afresh on each reading, from its index and item.
    made: list[int] = []

    def make(i: int, n: int) -> dict:
        made.append(i)
        return {"n": n, "square": n * n, "text": f"#{i}"}

    long, short = Made(list(range(5000, 5200)), make), Made([7, 8], make)
    data = {"changes": long, "few": short, "nested": [{"inner": short}], "total": "1.00"}
    write_json(data)
    as_lists = {
        "changes": list(long), "few": list(short), "nested": [{"inner": list(short)}],
        "total": "1.00",
    }  # fmt: skip
    assert capsys.readouterr().out == json.dumps(as_lists, indent=2, ensure_ascii=False) + "\n"
    assert made == [*range(200), 0, 1, 0, 1] * 2  # written once, then listed once
    assert len(long) == 200 and long[-1] == {"n": 5199, "square": 5199**2, "text": "#199"}
    assert long[1:3] == [make(1, 5001), make(2, 5002)]


def test_a_table_too_long_for_rich_is_printed_whole_as_aligned_columns(capsys) -> None:
    # 2,001 rows, one past LARGE: every row printed, each figure whole and right-aligned under
    # its column, the free text never wrapped, and nothing of rich's frame.
    from soc_ledger.projections.views.render import LARGE, write_table

    rows = [
        {"case": f"C{n}", "owed": f"{n * 214}.00", "note": "a note with spaces " * (n % 3)}
        for n in range(LARGE + 1)
    ]
    write_table("weeks", ["case", "owed", "note"], rows, right=["owed"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "weeks"
    assert lines[1].split() == ["case", "owed", "note"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    body = lines[3:]
    assert len(body) == LARGE + 1
    owed_end = len(lines[1].split("owed")[0]) + len("owed")
    widest = len(f"{LARGE * 214}.00")
    for n, line in enumerate(body):
        assert line.startswith(f"C{n} ")
        figure = f"{n * 214}.00"
        # right-aligned: the figure ends where the widest figure (and the header) ends
        end = len("C2000") + 2 + widest
        assert line[end - len(figure) : end] == figure, line
        assert line[end:].strip() == rows[n]["note"].strip()
    assert owed_end == len("C2000") + 2 + widest  # the header aligned as its figures
