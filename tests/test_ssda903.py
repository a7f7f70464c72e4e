"""SPEC §6: SSDA903 returns as the boroughs' statements about their periods.

Longer than 500 lines because §6 is one section read as one story: the hand-worked periods,
resubmissions and bad rows below build on the same few children and dates.

Every count of days in care below is worked out by hand in a comment (a day d is in care when
some episode has start <= d < end; DEC is the first day out of care). The samples are in
tests/data/ssda903, copied from shared/data/ssda903 (see its PROVENANCE.md): the
data-to-insight validator's messy fake return and liia-tools' hand-made multi-year cases.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import date
from pathlib import Path

import pytest

from soc_ledger.domain.knowledge import KnownAt
from soc_ledger.domain.outcomes.facts import cases_from_facts, coverage_from_facts
from soc_ledger.ledger.service import Ledger
from soc_ledger.ledger.ssda903.clipping import PERIOD_END
from soc_ledger.ledger.ssda903.period import Period, ReturnError
from soc_ledger.ledger.ssda903.reading import EPISODE_COLUMNS, HEADER_COLUMNS, read_return
from soc_ledger.projections import readmodel
from tests.helpers import line, run, trail, write_lines
from tests.outcome_builders import REFERENCE_TERMS

C = "plcip"


def _samples() -> Path:
    for folder in (
        Path(__file__).resolve().parent / "data" / "ssda903",
        Path(os.environ.get("SOC_LEDGER_SSDA903_SAMPLES", "/work/shared/data/ssda903")),
    ):
        if (folder / "validator-fake-episodes.csv").exists():
            return folder
    if os.environ.get("CI") == "true":
        pytest.fail("the SSDA903 samples are missing")
    pytest.skip("the SSDA903 samples are missing")


# --- a contract, boroughs and referrals -------------------------------------------------------


def contract_lines(boroughs: list[str]) -> list[str]:
    lines = [
        line(
            type="ContractAgreed",
            contract=C,
            effective="2015-01-01",
            recorded_on="2015-01-01",
            key="contract",
            name="Test contract",
            lead_commissioner="SUT",
            prime_contractor="PFP",
            top_up_funder="CBO",
            terms=REFERENCE_TERMS,
            caps=[],
        )
    ]
    for borough in boroughs:
        lines.append(
            line(
                type="BoroughAcceded",
                contract=C,
                effective="2015-01-01",
                recorded_on="2015-01-01",
                key=f"accede-{borough}",
                borough=borough,
                name=borough,
                award="original",
            )
        )
    return lines


def referral(case: str, borough: str, child: str, dob: str, on: str) -> str:
    return line(
        type="ReferralReceived",
        contract=C,
        effective=on,
        recorded_on=on,
        key=f"ref-{case}",
        case=case,
        borough=borough,
        child_ref=child,
        date_of_birth=dob,
        behaviours=[],
        in_care=False,
    )


def setup(db: str, tmp_path: Path, boroughs: list[str], referrals: list[str]) -> None:
    path = write_lines(tmp_path / "setup.jsonl", contract_lines(boroughs) + referrals)
    result = run("record", path, "--db", db)
    assert result.exit_code == 0, result.output


# --- returns as files -------------------------------------------------------------------------


def dmy(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else ""


def episode(child: str, decom: str, dec: str = "", rec: str = "", ls="C2", place="U1") -> dict:
    """An episode row; dates given as ISO here, written dd/mm/yyyy."""
    return {
        "CHILD": child,
        "DECOM": dmy(decom),
        "RNE": "S",
        "LS": ls,
        "CIN": "N1",
        "PLACE": place,
        "PLACE_PROVIDER": "PR1",
        "DEC": dmy(dec),
        "REC": rec,
        "REASON_PLACE_CHANGE": "",
        "HOME_POST": "",
        "PL_POST": "",
        "URN": "",
    }


def write_return(folder: Path, name: str, rows: list[dict]) -> tuple[str, str]:
    """The DfE CSV pair; rows are written in order, so row i is on line i + 2."""
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / f"{name}-header.csv"
    episodes = folder / f"{name}-episodes.csv"
    with header.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER_COLUMNS)
        for child in dict.fromkeys(r["CHILD"] for r in rows):
            writer.writerow([child, "1", "01/01/2006", "WBRI", "", "", ""])
    with episodes.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EPISODE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return str(header), str(episodes)


def import_903(db: str, borough: str, files: tuple[str, ...], received: str, **period):
    args = ["import-903", "--db", db, "--borough", borough, "--received-on", received]
    for option, value in period.items():
        args += [f"--{option.replace('_', '-')}", str(value)] if value != "" else [f"--{option}"]
    return run(*args, *files)


# --- reading the ledger back ------------------------------------------------------------------

CARE_TYPES = ("ReferralReceived", "CareEpisodeStarted", "CareEpisodeEnded", "CareDataReceived")


def facts(db: str, known_at: date | None = None):
    with Ledger(db) as ledger:
        readmodel.catch_up(ledger.engine, ledger.log)
        return readmodel.facts_known_at(ledger.engine, C, KnownAt.on(known_at), CARE_TYPES)


def days_in_care(db: str, case: str, first: date, last: date, known_at: date | None = None):
    """Days d with first <= d <= last on which some spell of the case has start <= d < end."""
    spells = cases_from_facts(facts(db, known_at), C)[case].spells
    total = 0
    for spell in spells:
        start = max(spell.start, first)
        stop = min(spell.end or date.max, date.fromordinal(last.toordinal() + 1))
        total += max((stop - start).days, 0)
    return total


def financial_year(year: int) -> tuple[date, date]:
    """The collection year `year`: 1 April of year - 1 to 31 March of year."""
    return date(year - 1, 4, 1), date(year, 3, 31)


def problems_of(result, path: str) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith(path + ":")]


# === the period ================================================================================


def test_a_collection_year_runs_1_april_to_31_march():
    assert Period.of(year=2020) == Period(date(2019, 4, 1), date(2020, 3, 31))
    # The default start is the day after the same date a year earlier.
    assert Period.of(date(2019, 9, 30)).start == date(2018, 10, 1)
    assert Period.of(date(2020, 2, 29)).start == date(2019, 3, 1)
    with pytest.raises(ReturnError, match="--year 2020 means a period ending 2020-03-31"):
        Period.of(date(2020, 4, 30), 2020)
    with pytest.raises(ReturnError, match="give --period-end"):
        Period.of()


# === the validator's messy sample ==============================================================

# Referred children of the validator sample (collection year 2017-18, so period 2017-04-01 to
# 2018-03-31), all referred on 2019-01-07; ages from the header's DOB are 10 to 16 then.
CLEAN = {
    # child: (date of birth, hand-worked days in care in the period)
    # line 11: 01/06/2015 - 15/02/2018 E41 -> [2017-04-01, 2018-02-15): Apr 30 + May 31 +
    # Jun 30 + Jul 31 + Aug 31 + Sep 30 + Oct 31 + Nov 30 + Dec 31 + Jan 31 + Feb 1-14 14 = 320
    "710229": ("2002-04-15", 320),
    # lines 15-17: X1 chain 10/08/2015 - 12/04/2017 - 21/05/2017 - 30/06/2017 E46 ->
    # in care 2017-04-01 to 2017-06-29: Apr 30 + May 31 + Jun 29 = 90
    "853884": ("2004-10-09", 90),
    # lines 27-28: 09/02/2017 - 07/07/2017 X1, 07/07/2017 - 10/08/2017 E5 ->
    # 2017-04-01 to 2017-08-09: Apr 30 + May 31 + Jun 30 + Jul 31 + Aug 9 = 131
    "231934": ("2003-06-09", 131),
    # lines 33-34: 05/11/2016 - 22/06/2017 X1, 22/06/2017 - 23/08/2017 E15 ->
    # 2017-04-01 to 2017-08-22: Apr 30 + May 31 + Jun 30 + Jul 31 + Aug 22 = 144
    "50224": ("2003-01-11", 144),
}
MESSY = {
    # line 3: 14/08/2017, DEC blank but REC X1
    "566910": "2008-03-27",
    # line 47: 07/12/2017, DEC blank but REC E4B
    "681415": "2002-10-09",
    # line 313: 11/01/2018 - 25/03/2018 overlaps line 312 (11/03/2017 - 10/03/2018);
    # line 314: 25/03/2018, DEC blank but REC X1
    "708102": "2004-12-20",
}


def _validator_referrals(children: dict[str, str]) -> list[str]:
    return [
        referral(f"V{child}", "SUT", child, dob, "2019-01-07") for child, dob in children.items()
    ]


def test_the_validator_sample_imports_cleanly_for_children_whose_rows_are_valid(
    tmp_path, sqlite_url
):
    samples = _samples()
    setup(
        sqlite_url, tmp_path, ["SUT"], _validator_referrals({c: d for c, (d, _) in CLEAN.items()})
    )
    files = (
        str(samples / "validator-fake-header.csv"),
        str(samples / "validator-fake-episodes.csv"),
    )
    result = import_903(sqlite_url, "SUT", files, "2019-03-01", year=2018, format="json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # 1 + 3 + 2 + 2 rows of the four children are used; the other 5,042 rows are discarded.
    assert summary["rows"] == 5050
    assert summary["children_matched"] == 4
    assert summary["rows_used"] == 8
    assert summary["rows_unmatched"] == 5042
    assert summary["episodes_new"] == 8
    # Each episode is a start and an end, then one CareDataReceived.
    assert summary["appended"] == 17
    assert summary["covered_until"] == "2018-03-31"
    first, last = financial_year(2018)
    for child, (_, expected) in CLEAN.items():
        assert days_in_care(sqlite_url, f"V{child}", first, last) == expected, child


def test_the_validator_sample_is_rejected_with_every_problem_of_the_used_rows_listed(
    tmp_path, sqlite_url
):
    samples = _samples()
    children = {c: d for c, (d, _) in CLEAN.items()} | MESSY
    setup(sqlite_url, tmp_path, ["SUT"], _validator_referrals(children))
    before = trail(sqlite_url)
    episodes = str(samples / "validator-fake-episodes.csv")
    files = (str(samples / "validator-fake-header.csv"), episodes)
    result = import_903(sqlite_url, "SUT", files, "2019-03-01", year=2018)
    assert result.exit_code != 0
    assert problems_of(result, episodes) == [
        f"{episodes}:3: DEC: blank, but REC is 'X1': an open episode has neither DEC nor REC "
        "(DEC and REC are both given or both blank)",
        f"{episodes}:47: DEC: blank, but REC is 'E4B': an open episode has neither DEC nor REC "
        "(DEC and REC are both given or both blank)",
        f"{episodes}:313: DECOM: this episode (11/01/2018 to 25/03/2018) overlaps the episode "
        "on line 312 (11/03/2017 to 10/03/2018) of the same child inside the period",
        f"{episodes}:314: DEC: blank, but REC is 'X1': an open episode has neither DEC nor REC "
        "(DEC and REC are both given or both blank)",
    ]
    assert result.stderr.strip().endswith("4 problems; nothing was written")
    assert trail(sqlite_url) == before


def test_every_child_of_the_validator_sample_referred_is_a_long_rejection_not_a_crash(
    tmp_path, sqlite_url
):
    """All 2,675 children referred (each with an eligible birth date): nothing is written."""
    samples = _samples()
    with open(samples / "validator-fake-header.csv", newline="") as handle:
        children = [row["CHILD"] for row in csv.DictReader(handle)]
    lines = contract_lines(["SUT"])
    lines += [referral(f"V{c}", "SUT", c, "2005-01-01", "2019-01-07") for c in children]
    assert (
        run("record", write_lines(tmp_path / "all.jsonl", lines), "--db", sqlite_url).exit_code == 0
    )
    before = trail(sqlite_url)
    episodes = str(samples / "validator-fake-episodes.csv")
    files = (str(samples / "validator-fake-header.csv"), episodes)
    result = import_903(sqlite_url, "SUT", files, "2019-03-01", year=2018)
    assert result.exit_code != 0
    problems = problems_of(result, episodes)
    # Every problem names a line of the file and one of the checked fields.
    assert len(problems) > 1000
    for problem in problems:
        number, field, _ = problem[len(episodes) + 1 :].split(":", 2)
        assert 2 <= int(number) <= 5051
        assert field.strip() in {"DEC", "DECOM", "REC", "LS", "PLACE"}
    assert f"{episodes}:313: DECOM: this episode" in result.stderr
    assert result.stderr.strip().endswith(f"{len(problems)} problems; nothing was written")
    assert trail(sqlite_url) == before


# === the liia-tools multi-year cases ===========================================================

LA_CODES = {"Barking and Dagenham": "BDG", "Newham": "NWM", "Sutton": "SUT"}


def liiatools_returns(tmp_path: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """One raw DfE return per (borough, YEAR): ISO dates to dd/mm/yyyy, LA and YEAR dropped."""
    rows: dict[tuple[str, int], list[dict]] = {}
    with open(_samples() / "liiatools-multi-year-fixes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (LA_CODES[row.pop("LA")], int(row.pop("YEAR")))
            row["DECOM"], row["DEC"] = dmy(row["DECOM"]), dmy(row["DEC"])
            rows.setdefault(key, []).append(row)
    return {
        key: write_return(tmp_path / "liiatools", f"{key[0]}-{key[1]}", found)
        for key, found in sorted(rows.items())
    }


# Each scenario is one child referred alone (in its own ledger), with every return of its
# borough imported year by year (received 30 June after the year). Rows are on the line of their
# YEAR file in the sample's order (the first row of a file on line 2). Days per collection year,
# worked out by hand; a year missing from `days` has no day in care (the child is absent from
# that return, or no return was made for it).
LIIATOOLS = {
    "NORULE_BAD": {
        "borough": "BDG",
        # 2017 (2016-17): line 2, 19/06/2015 - 26/07/2016 X1, but the episode starting on
        # 26/07/2016 is only in the 2022 return: X1 continuity is broken, the return is refused.
        "rejected": {2017: [(2, "REC")]},
        # 2022 (2021-22): 26/07/2016 - 12/12/2021 E17 -> [2021-04-01, 2021-12-12): Apr 30 +
        # May 31 + Jun 30 + Jul 31 + Aug 31 + Sep 30 + Oct 31 + Nov 30 + Dec 1-11 11 = 255.
        "days": {2022: 255},
    },
    "NORULE_NEW": {
        "borough": "NWM",
        "rejected": {},
        # 2023 (2022-23): 01/02/2022 - 10/07/2022 E17 -> [2022-04-01, 2022-07-10): Apr 30 +
        # May 31 + Jun 30 + Jul 9 = 100; 23/10/2022 open -> [2022-10-23, 2023-04-01): Oct 23-31
        # 9 + Nov 30 + Dec 31 + Jan 31 + Feb 28 + Mar 31 = 160; 100 + 160 = 260.
        "days": {2023: 260},
    },
    "NORULE_SUT": {
        "borough": "SUT",
        "rejected": {},
        # 2022 (2021-22): 15/12/2017 open -> the whole year, 2021-04-01 to 2022-03-31 = 365.
        "days": {2022: 365},
    },
    "RULE1_BAD": {
        "borough": "BDG",
        "rejected": {},
        # 2018 (2017-18): 13/01/2016 open -> the whole year = 365 (Feb 2018 has 28 days).
        # 2019 (2018-19): absent from the return -> 0, although the 2020 return's row says
        # DECOM 20/08/2017: a return is not evidence for days outside its period.
        # 2020 (2019-20): 20/08/2017 - 21/06/2019 X1 -> [2019-04-01, 2019-06-21): Apr 30 +
        # May 31 + Jun 20 = 81; 21/06/2019 - 23/07/2019 E6 -> Jun 21-30 10 + Jul 1-22 22 = 32;
        # 81 + 32 = 113.
        "days": {2018: 365, 2020: 113},
    },
    "RULE1A_BAD": {
        "borough": "BDG",
        "rejected": {},
        # 2017 (2016-17): 22/01/2016 - 24/10/2016 X1 -> [2016-04-01, 2016-10-24): Apr 30 +
        # May 31 + Jun 30 + Jul 31 + Aug 31 + Sep 30 + Oct 23 = 206; 24/10/2016 open ->
        # Oct 24-31 8 + Nov 30 + Dec 31 + Jan 31 + Feb 28 + Mar 31 = 159; 206 + 159 = 365.
        # 2018 (2017-18): the open episode is gone; 20/04/2017 - 13/06/2017 E8 ->
        # Apr 20-30 11 + May 31 + Jun 1-12 12 = 54 (1-19 April are out of care).
        "days": {2017: 365, 2018: 54},
    },
    "RULE2_BAD": {
        "borough": "BDG",
        "rejected": {},
        # 2020 (2019-20): 10/05/2019 open -> [2019-05-10, 2020-04-01): May 10-31 22 + Jun 30 +
        # Jul 31 + Aug 31 + Sep 30 + Oct 31 + Nov 30 + Dec 31 + Jan 31 + Feb 29 + Mar 31 = 327.
        # No 2021 return; absent from 2022's.
        "days": {2020: 327},
    },
    "RULE3_BAD": {
        "borough": "BDG",
        "rejected": {},
        # The "duplicate": DECOM 27/09/2016 in 2017, 23/09/2016 in 2018; each return states its
        # own year. 2017 (2016-17): 27/09/2016 open -> Sep 27-30 4 + Oct 31 + Nov 30 + Dec 31 +
        # Jan 31 + Feb 28 + Mar 31 = 186. 2018 (2017-18): 23/09/2016 - 30/05/2017 E2 ->
        # Apr 30 + May 1-29 29 = 59.
        "days": {2017: 186, 2018: 59},
    },
    "RULE3A_BAD": {
        "borough": "BDG",
        # 2018 (2017-18): line 5, 25/11/2017 - 25/01/2018 X1, but this child's next episode in
        # the return starts on 22/03/2018: the return is refused.
        "rejected": {2018: [(5, "REC")]},
        # 2019 (2018-19): 25/01/2018 - 16/05/2018 E45 -> Apr 30 + May 1-15 15 = 45.
        "days": {2019: 45},
    },
    "RULE4_BAD": {
        "borough": "BDG",
        "rejected": {},
        # 2019 (2018-19): 23/11/2018 - 24/12/2018 X1 -> Nov 23-30 8 + Dec 1-23 23 = 31;
        # 24/12/2018 open -> Dec 24-31 8 + Jan 31 + Feb 28 + Mar 31 = 98; 31 + 98 = 129.
        # 2020 (2019-20): the overlapping 20/12/2018 - 19/08/2019 X1 -> [2019-04-01, 2019-08-19):
        # Apr 30 + May 31 + Jun 30 + Jul 31 + Aug 1-18 18 = 140; 19/08/2019 - 01/10/2019 E4A ->
        # Aug 19-31 13 + Sep 30 = 43; 140 + 43 = 183.
        "days": {2019: 129, 2020: 183},
    },
    "RULE5_BAD": {
        "borough": "BDG",
        # 2020 (2019-20): line 7, 06/11/2019 - 29/03/2020 X1 and nothing starts on 29/03/2020
        # (the X1 gap: the next episode starts on 02/04/2020): the return is refused.
        "rejected": {2020: [(7, "REC")]},
        # 2022 (2021-22): 02/04/2020 open -> the whole year = 365.
        "days": {2022: 365},
    },
}


@pytest.mark.parametrize("child", sorted(LIIATOOLS))
def test_liiatools_multi_year_cases_give_the_days_each_return_states(child, tmp_path, sqlite_url):
    scenario = LIIATOOLS[child]
    borough = scenario["borough"]
    setup(
        sqlite_url,
        tmp_path,
        [borough],
        [referral("K1", borough, child, "2005-01-01", "2016-01-04")],
    )
    returns = liiatools_returns(tmp_path)
    years = sorted(year for (b, year) in returns if b == borough)
    imported = []
    for year in years:
        header, episodes = returns[(borough, year)]
        result = import_903(sqlite_url, borough, (header, episodes), f"{year}-06-30", year=year)
        expected = scenario["rejected"].get(year)
        if expected is None:
            assert result.exit_code == 0, result.output
            imported.append(year)
            continue
        assert result.exit_code != 0
        problems = problems_of(result, episodes)
        assert [(int(p.split(":")[1]), p.split(":")[2].strip()) for p in problems] == expected
        assert "nothing was written" in result.stderr
    for year in range(min(years), max(years) + 1):
        first, last = financial_year(year)
        assert days_in_care(sqlite_url, "K1", first, last) == scenario["days"].get(year, 0), year
    # Care data is verified to the end of the last period imported (refused ones add nothing).
    coverage = coverage_from_facts(facts(sqlite_url), C)
    assert coverage[borough] == date(max(imported), 3, 31)


def test_a_refused_liiatools_year_names_every_child_with_a_problem(tmp_path, sqlite_url):
    """All Barking and Dagenham children referred together: the 2020 return is refused whole."""
    children = [c for c, s in LIIATOOLS.items() if s["borough"] == "BDG"]
    referrals = [referral(f"K-{c}", "BDG", c, "2005-01-01", "2016-01-04") for c in children]
    setup(sqlite_url, tmp_path, ["BDG"], referrals)
    header, episodes = liiatools_returns(tmp_path)[("BDG", 2020)]
    result = import_903(sqlite_url, "BDG", (header, episodes), "2020-06-30", year=2020)
    assert result.exit_code != 0
    # RULE5_BAD's X1 gap is the only problem; RULE1_BAD, RULE2_BAD and RULE4_BAD rows are fine,
    # but nothing of them is written either.
    assert problems_of(result, episodes) == [
        f"{episodes}:7: REC: X1 says a new episode starts on DEC 29/03/2020, but no episode of "
        "this child in the return starts that day"
    ]
    assert not [e for e in trail(sqlite_url) if e["type"].startswith("Care")]


# === resubmission, idempotency, privacy ========================================================

# Sutton, period 2019-04-01 to 2020-03-31. Case S1 is child SUT-CHILD-A, S2 is SUT-CHILD-B.
FIRST = [
    # line 2: [2019-05-01, 2019-07-01) = May 31 + Jun 30 = 61 days
    episode("SUT-CHILD-A", "2019-05-01", "2019-07-01", "E11"),
    # line 3: [2019-09-01, 2019-11-01) = Sep 30 + Oct 31 = 61 days
    episode("SUT-CHILD-A", "2019-09-01", "2019-11-01", "E11"),
    # line 4: open -> [2020-01-10, 2020-04-01) = Jan 10-31 22 + Feb 29 + Mar 31 = 82 days
    episode("SUT-CHILD-B", "2020-01-10", ls="C1", place="U4"),
    # line 5: a child who was never referred: counted, discarded, never stored
    episode("NOT-REFERRED-X", "2019-06-01"),
]
RESUBMITTED = [
    # line 2: the same episode (same DECOM), ending a fortnight later: [2019-05-01, 2019-07-15)
    # = May 31 + Jun 30 + Jul 1-14 14 = 75 days
    episode("SUT-CHILD-A", "2019-05-01", "2019-07-15", "E11"),
    # (the September episode has vanished)
    episode("SUT-CHILD-B", "2020-01-10", ls="C1", place="U4"),
    episode("NOT-REFERRED-X", "2019-06-01"),
]
SUTTON = [
    referral("S1", "SUT", "SUT-CHILD-A", "2006-05-01", "2019-01-07"),
    referral("S2", "SUT", "SUT-CHILD-B", "2007-02-01", "2019-01-07"),
]
YEAR = financial_year(2020)


def test_a_resubmission_corrects_and_retracts_and_earlier_knowledge_keeps_the_first_return(
    db_url, tmp_path
):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    first = write_return(tmp_path / "r1", "sut-2020", FIRST)
    result = import_903(db_url, "SUT", first, "2020-06-30", year=2020, format="json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows_unmatched"], summary["episodes_new"], summary["appended"]) == (1, 3, 7)

    # B's episode is still open at the period end: it ends on the day after, as the period does.
    ends = {
        e["event"]["episode"]: e["event"] for e in trail(db_url) if e["type"] == "CareEpisodeEnded"
    }
    assert ends["903:SUT:2019-04-01:2020-01-10"]["effective"] == "2020-04-01"
    assert ends["903:SUT:2019-04-01:2020-01-10"]["reason"] == PERIOD_END
    assert ends["903:SUT:2019-04-01:2019-05-01"]["reason"] == "E11"

    second = write_return(tmp_path / "r2", "sut-2020", RESUBMITTED)
    result = import_903(db_url, "SUT", second, "2020-09-01", year=2020, format="json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["episodes_corrected"], summary["episodes_retracted"]) == (1, 1)
    assert (summary["episodes_new"], summary["episodes_unchanged"]) == (0, 1)
    # Two retractions (the vanished episode's start, then its end), a correction, one receipt.
    added = trail(db_url)[-4:]
    assert [e["type"] for e in added] == [
        "EventRetracted",
        "EventRetracted",
        "EventCorrected",
        "CareDataReceived",
    ]
    retracted, _, corrected, _ = added
    assert retracted["event"]["target"] == "903:SUT:2019-04-01:S1:2019-09-01:start@2020-06-30"
    assert corrected["event"]["target"] == "903:SUT:2019-04-01:S1:2019-05-01:end@2020-06-30"
    assert corrected["event"]["changes"] == {"effective": "2019-07-15"}
    assert corrected["recorded_on"].startswith("2020-09-01")
    assert corrected["source"] == "sut-2020-episodes.csv:2"

    first_day, last_day = YEAR
    # Known before the resubmission was received: the first return (61 + 61 = 122 days).
    assert days_in_care(db_url, "S1", first_day, last_day, known_at=date(2020, 8, 31)) == 122
    # Known now: the resubmission (75 days).
    assert days_in_care(db_url, "S1", first_day, last_day) == 75
    assert days_in_care(db_url, "S2", first_day, last_day) == 82
    assert days_in_care(db_url, "S2", first_day, last_day, known_at=date(2020, 8, 31)) == 82

    # The first return again cannot supersede the later one.
    result = import_903(db_url, "SUT", first, "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert "a later return for SUT 2019-04-01 to 2020-03-31 (received 2020-09-01)" in result.stderr


def test_importing_the_same_return_again_changes_nothing_and_says_so(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path, "sut-2020", FIRST)
    assert import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020).exit_code == 0
    before = trail(sqlite_url)
    again = import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020)
    assert again.exit_code == 0, again.output
    assert "appended 0, already present 0 (nothing new: this return is already imported)" in (
        again.stdout
    )
    assert trail(sqlite_url) == before
    # The same rows as XML are the same return.
    xml = tmp_path / "sut-2020.xml"
    xml.write_text(dfe_xml(FIRST))
    result = import_903(sqlite_url, "SUT", (str(xml),), "2020-06-30", year=2020)
    assert result.exit_code == 0, result.output
    assert "nothing new" in result.stdout
    # A different return with the same received date is refused: a resubmission needs its own.
    other = write_return(tmp_path / "other", "sut-2020", RESUBMITTED)
    refused = import_903(sqlite_url, "SUT", other, "2020-06-30", year=2020)
    assert refused.exit_code != 0
    assert "give a resubmission its own --received-on" in refused.stderr
    assert trail(sqlite_url) == before


def test_unmatched_rows_and_child_ids_are_never_stored(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path, "sut-2020", FIRST)
    result = import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020)
    assert result.exit_code == 0, result.output
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    stored = path.read_bytes() + b"".join(
        p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name + "-")
    )
    for child in (b"NOT-REFERRED-X", b"SUT-CHILD-A", b"SUT-CHILD-B"):
        assert child not in stored
    # The discarded row is not an episode anywhere.
    assert not [e for e in trail(sqlite_url) if e["event"].get("effective") == "2019-06-01"]


def test_the_next_year_starts_where_the_period_end_left_off(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    assert (
        import_903(
            sqlite_url, "SUT", write_return(tmp_path / "a", "y2020", FIRST), "2020-06-30", year=2020
        ).exit_code
        == 0
    )
    # 2020-21: B's episode ceased on 01/06/2020 -> [2020-04-01, 2020-06-01) = Apr 30 + May 31
    # = 61 days; its 2019-20 episode ends on 2020-04-01 ("period-end"), no overlap.
    nxt = [episode("SUT-CHILD-B", "2020-01-10", "2020-06-01", "E11", ls="C1", place="U4")]
    result = import_903(
        sqlite_url, "SUT", write_return(tmp_path / "b", "y2021", nxt), "2021-06-30", year=2021
    )
    assert result.exit_code == 0, result.output
    first, last = financial_year(2021)
    assert days_in_care(sqlite_url, "S2", first, last) == 61
    # From 10 January 2020 to 31 May 2020 without a break: 82 + 61 = 143.
    assert days_in_care(sqlite_url, "S2", date(2020, 1, 1), date(2020, 12, 31)) == 143
    # A referred child absent from the 2020-21 return was not in care in it.
    assert days_in_care(sqlite_url, "S1", first, last) == 0


# === validation of used rows ===================================================================


def test_every_problem_of_a_used_row_is_listed_and_unused_rows_do_not_block(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    before = trail(sqlite_url)
    rows = [
        episode("SUT-CHILD-A", ""),  # line 2: no such day (below)
        episode("SUT-CHILD-A", "2019-05-01", "2019-04-01", "E11"),  # line 3: DEC before DECOM
        episode("SUT-CHILD-A", "2019-06-01", "2019-06-10", "X9", ls="Z9", place="Q1"),  # line 4
        episode("SUT-CHILD-A", "2019-07-01", "2019-07-10"),  # line 5: DEC without REC
        episode("SUT-CHILD-A", "2019-08-01", "2019-08-10", "X1"),  # line 6: X1, nothing follows
        episode("SUT-CHILD-B", "2019-05-01", "2019-06-01", "E11"),  # line 7
        episode("SUT-CHILD-B", "2019-05-20", "2019-07-01", "E11"),  # line 8: overlaps line 7
        # line 9: before the period, ignored (a row starting after it refuses the return:
        # test_ssda903_trust.py)
        episode("SUT-CHILD-B", "2018-05-01", "2018-06-01", "E11", ls="??"),
        episode("NOT-REFERRED-X", "", ls="??"),  # line 10: not referred, not a problem
    ]
    rows[0]["DECOM"] = "31/04/2019"
    rows[-1]["DECOM"] = "not a date"
    files = write_return(tmp_path, "bad", rows)
    result = import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020)
    assert result.exit_code != 0
    found = [p.split(":", 1)[1] for p in problems_of(result, files[1])]
    assert [p.split(":")[0] + ":" + p.split(":")[1].strip() for p in found] == [
        "2:DECOM",
        "3:DEC",
        "4:LS",
        "4:PLACE",
        "4:REC",
        "5:REC",
        "6:REC",
        "8:DECOM",
    ]
    assert "'31/04/2019' is not a real calendar date" in found[0]
    assert "'Z9' is not an SSDA903 legal status" in found[2]
    assert "overlaps the episode on line 7" in found[7]
    assert trail(sqlite_url) == before


def test_a_duplicated_row_is_named_as_a_duplicate(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    row = episode("SUT-CHILD-A", "2019-05-01", "2019-07-01", "E11")
    files = write_return(tmp_path, "dup", [row, dict(row)])
    result = import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert f"{files[1]}:3: DECOM: duplicates the episode on line 2" in result.stderr


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("CHILD,DECOM,LS\nA,01/05/2019,C2\n", ":1: (header row): missing column(s) RNE, CIN"),
        (
            ",".join(HEADER_COLUMNS) + "\nA,1,01/01/2006,WBRI,,,\n",
            ":1: (header row): missing column(s) DECOM, RNE, LS, CIN, PLACE, PLACE_PROVIDER, DEC, "
            "REC, REASON_PLACE_CHANGE, HOME_POST, PL_POST, URN (this looks like the header table)",
        ),
        (",".join(EPISODE_COLUMNS) + "\nA,01/05/2019,S\n", ":2: (row): 3 fields, but"),
        (",".join(EPISODE_COLUMNS) + "\nA,\xff\n", ":2: (file): not UTF-8 text"),
        ("", ":1: (header row): empty file"),
    ],
    ids=["missing columns", "wrong table", "short row", "not utf-8", "empty"],
)
def test_a_malformed_csv_is_a_clear_error_naming_the_file(content, where, tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    before = trail(sqlite_url)
    header, _ = write_return(tmp_path, "ok", FIRST)
    episodes = tmp_path / "broken.csv"
    episodes.write_bytes(content.encode("latin-1"))
    result = import_903(sqlite_url, "SUT", (header, str(episodes)), "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert f"{episodes}{where}" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {episodes}:")
    assert trail(sqlite_url) == before


def test_whole_import_errors_are_one_line(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path, "r", FIRST)
    early = import_903(sqlite_url, "SUT", files, "2020-03-31", year=2020)
    assert early.exit_code != 0
    assert early.stderr.startswith("error: a return for a period ending 2020-03-31 cannot have")
    assert import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020).exit_code == 0
    overlapping = import_903(sqlite_url, "SUT", files, "2020-12-01", period_end="2020-09-30")
    assert overlapping.exit_code != 0
    assert "overlaps the period 2019-04-01 to 2020-03-31" in overlapping.stderr
    assert len(overlapping.stderr.strip().splitlines()) == 1


# === the XML form ==============================================================================


def dfe_xml(rows: list[dict]) -> str:
    """The DfE layout: <EXPSSDA903><CHILD><HEADER><CHILDID/>..</HEADER><EPISODE><PL/>.."""
    children: dict[str, list[dict]] = {}
    for row in rows:
        children.setdefault(row["CHILD"], []).append(row)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<EXPSSDA903>"]
    for child, episodes in children.items():
        out.append(f"  <CHILD><HEADER><CHILDID>{child}</CHILDID><SEX>1</SEX></HEADER>")
        for row in episodes:
            fields = "".join(
                f"<{'PL' if c == 'PLACE' else c}>{row[c]}</{'PL' if c == 'PLACE' else c}>"
                for c in EPISODE_COLUMNS[1:]
            )
            out.append(f"    <EPISODE>{fields}</EPISODE>")
        out.append("    <REVIEW><REVIEW>01/01/2020</REVIEW></REVIEW>")
        out.append("  </CHILD>")
    out.append("</EXPSSDA903>")
    return "\n".join(out) + "\n"


def test_the_xml_form_reads_as_the_csv_form(tmp_path):
    header, episodes = write_return(tmp_path, "x", FIRST)
    from_csv = read_return(header, episodes)
    xml = tmp_path / "x.xml"
    xml.write_text(dfe_xml(FIRST))
    from_xml = read_return(str(xml))
    assert from_xml.form == "xml" and from_xml.header_children == 3
    assert [dict(r.values) for r in from_xml.episodes] == [
        dict(r.values) for r in from_csv.episodes
    ]
    # Each row is on the line of its <EPISODE> (A on 4 and 5, B on 9, X on 13).
    assert [r.line for r in from_xml.episodes] == [4, 5, 9, 13]
    assert from_xml.digest == from_csv.digest


def test_the_grouped_xml_layout_with_iso_dates_is_read_too(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    xml = tmp_path / "grouped.xml"
    xml.write_text(
        "<Children>\n"
        "  <Child>\n"
        "    <Header><CHILDID>SUT-CHILD-A</CHILDID></Header>\n"
        "    <Episodes>\n"
        "      <Episode><DECOM>2019-05-01</DECOM><LS>C2</LS><PL>U1</PL>\n"
        "               <DEC>2019-07-01</DEC><REC>E11</REC></Episode>\n"
        "    </Episodes>\n"
        "  </Child>\n"
        "</Children>\n"
    )
    result = import_903(sqlite_url, "SUT", (str(xml),), "2020-06-30", year=2020)
    assert result.exit_code == 0, result.output
    starts = [e for e in trail(sqlite_url) if e["type"] == "CareEpisodeStarted"]
    assert starts[0]["source"] == "grouped.xml:5"
    first, last = YEAR
    assert days_in_care(sqlite_url, "S1", first, last) == 61  # May 31 + June 30


def test_a_broken_or_foreign_xml_file_is_named(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    broken = tmp_path / "broken.xml"
    broken.write_text("<EXPSSDA903>\n<CHILD>\n</EXPSSDA903>\n")
    result = import_903(sqlite_url, "SUT", (str(broken),), "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert f"{broken}:3: (xml): not well-formed XML: mismatched tag" in result.stderr
    foreign = tmp_path / "foreign.xml"
    foreign.write_text("<html><body/></html>")
    result = import_903(sqlite_url, "SUT", (str(foreign),), "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert "<html> is not an SSDA903 return" in result.stderr


# === limits of the Case rule, and the command in a fresh process ===============================


def test_a_vanished_episode_before_a_later_one_and_a_new_earlier_one_are_imported(
    tmp_path, sqlite_url
):
    """The Case rule checks the episodes as the whole import leaves each case, so an episode
    may vanish while a later one stands, and a new one may come before those recorded."""
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path / "a", "r", FIRST)
    assert import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020).exit_code == 0
    first_day, last_day = YEAR
    # A's May episode vanishes while its September one stays: 61 days (Sep 30 + Oct 31).
    vanished = write_return(tmp_path / "b", "r", [FIRST[1], FIRST[2]])
    result = import_903(sqlite_url, "SUT", vanished, "2020-09-01", year=2020)
    assert result.exit_code == 0, result.output
    assert days_in_care(sqlite_url, "S1", first_day, last_day) == 61
    # Then a new April episode before it: [2019-04-10, 2019-04-20) adds 10 days.
    earlier = [episode("SUT-CHILD-A", "2019-04-10", "2019-04-20", "E11"), FIRST[1], FIRST[2]]
    result = import_903(
        sqlite_url, "SUT", write_return(tmp_path / "c", "r", earlier), "2020-10-01", year=2020
    )
    assert result.exit_code == 0, result.output
    assert days_in_care(sqlite_url, "S1", first_day, last_day) == 71
    # Known before either resubmission: the first return's 122 days.
    assert days_in_care(sqlite_url, "S1", first_day, last_day, known_at=date(2020, 8, 31)) == 122


def test_an_episode_overlapping_one_already_recorded_is_refused_whole(tmp_path, sqlite_url):
    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path / "a", "r", FIRST)
    assert import_903(sqlite_url, "SUT", files, "2020-06-30", year=2020).exit_code == 0
    before = trail(sqlite_url)
    # A new episode from 20 June to 10 July would overlap the May one [2019-05-01, 2019-07-01).
    overlapping = [episode("SUT-CHILD-A", "2019-06-20", "2019-07-10", "E11"), *FIRST[:3]]
    result = import_903(
        sqlite_url, "SUT", write_return(tmp_path / "c", "r", overlapping), "2020-09-01", year=2020
    )
    assert result.exit_code != 0
    assert "overlaps" in result.stderr
    assert trail(sqlite_url) == before


def test_the_command_runs_in_a_fresh_process(tmp_path, sqlite_url):
    import subprocess
    import sys

    setup(sqlite_url, tmp_path, ["SUT"], SUTTON)
    header, episodes = write_return(tmp_path, "sut-2020", FIRST)
    args = ["--db", sqlite_url, "--borough", "SUT", "--year", "2020"]
    command = [sys.executable, "-m", "soc_ledger.cli", "import-903", *args]
    done = subprocess.run(
        [*command, "--received-on", "2020-06-30", "--format", "json", header, episodes],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["appended"] == 7
