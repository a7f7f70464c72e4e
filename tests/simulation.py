"""A seeded generator of realistic contract histories, as they arrive, for the simulation spine.

`generate(seed)` draws one contract's history from `random.Random(seed)` alone, so a seed is
the whole reproduction of a failure. What it draws:

- a contract (either week rule), 0-2 caps tight enough to bind, 2-4 boroughs joining at
  different dates, sometimes one withdrawing later, 0-2 variations (price, top-up, exclusions,
  caps) recorded before or after they take effect;
- quarterly care data per borough, arriving late, sometimes restated or retracted;
- 6-20 cases referred over three years: some declined, some ending inside 28 days, booster
  sessions, 0-4 care stays each (excluded legal statuses, the last sometimes open);
- restatements: stays ended differently (and restated again, or the restatement retracted),
  legal statuses corrected, stays retracted whole, intervention ends corrected.

Recorded dates are late (days to a year), with times of day. Every dependency A -> B (the
contract before a referral, a stay's end before the next stay's start, a target before its
correction, ...) has recorded(A) <= recorded(B), so every `known_at` reads a valid history.

Arrival: lines are delivered in batches, one per quarter of recording, but some arrive quarters
late with their original recorded dates (backfill), and everything that depends on them waits
with them. So the log's order is not the recorded order, and a later batch can change what
an earlier `known_at` knew.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from tests.history_strategies import TARGETS, midnight, money, plus
from tests.outcome_builders import REFERENCE_TERMS as TERMS

CONTRACT = "sim"
AGREED = date(2017, 9, 1)
LATEST = date(2025, 6, 30)  # nothing is recorded later (the ledger refuses the future)
BOROUGHS = ("SUT", "MRT", "BEX", "NWM")
FUNDER = "CBO"

def quarter(day: date) -> int:
    return day.year * 4 + (day.month - 1) // 3


@dataclass(frozen=True)
class Line:
    seq: int  # creation order: every dependency is created before what depends on it
    recorded: datetime
    text: str
    deps: tuple[int, ...]


@dataclass
class Simulation:
    seed: int
    lines: list[Line]
    arrival: dict[int, int]  # seq -> batch number
    batches: list[list[Line]] = field(default_factory=list)

    @property
    def recorded_days(self) -> list[date]:
        return sorted({line.recorded.date() for line in self.lines})

    def jsonl(self) -> str:
        """The batches as delivered, for a human reading a failure."""
        out = []
        for i, batch in enumerate(self.batches):
            out.append(f"# batch {i}")
            out.extend(line.text for line in batch)
        return "\n".join(out) + "\n"


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.lines: list[Line] = []
        self.by_key: dict[str, Line] = {}

    # -- clocks --------------------------------------------------------------------------------

    def lag(self) -> int:
        r = self.rng.random()
        if r < 0.45:
            return self.rng.randint(0, 7)
        if r < 0.85:
            return self.rng.randint(20, 150)
        return self.rng.randint(150, 400)

    def when(self, effective: date, *deps: Line, lag: int | None = None) -> datetime:
        """Recorded `lag` days after `effective` (sometimes at a time of day), never before
        what it depends on, never after LATEST."""
        day = min(plus(effective, self.lag() if lag is None else lag), LATEST)
        moment = midnight(max(day, AGREED))
        if self.rng.random() < 0.2:
            moment += timedelta(hours=self.rng.randint(1, 23), minutes=self.rng.randint(0, 59))
        return max([moment, *(d.recorded for d in deps)])

    # -- lines ---------------------------------------------------------------------------------

    def add(self, type: str, effective: date, recorded: datetime, deps=(), **fields) -> Line:
        stamp = (
            recorded.date().isoformat()
            if recorded.time() == time.min
            else recorded.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        event = {
            "type": type,
            "contract": CONTRACT,
            "effective": effective.isoformat(),
            "recorded_on": stamp,
            **fields,
        }
        line = Line(len(self.lines), recorded, json.dumps(event), tuple(d.seq for d in deps))
        self.lines.append(line)
        if "key" in fields:
            self.by_key[fields["key"]] = line
        return line

    def correct(self, target: Line, key: str, recorded: datetime, deps=(), **changes) -> Line:
        target_key = json.loads(target.text)["key"]
        return self.add(
            "EventCorrected", recorded.date(), recorded, (target, *deps), key=key,
            target=target_key, changes=changes, reason="restated",
        )

    def retract(self, target: Line, key: str, recorded: datetime, deps=()) -> Line:
        target_key = json.loads(target.text)["key"]
        return self.add(
            "EventRetracted", recorded.date(), recorded, (target, *deps), key=key,
            target=target_key, reason="withdrawn",
        )

    # -- the contract --------------------------------------------------------------------------

    def contract(self) -> tuple[Line, dict[str, tuple[Line, date, date | None]]]:
        rng = self.rng
        terms = dict(TERMS)
        terms["week_rule"] = rng.choice(["fixed_blocks", "fixed_blocks", "consecutive_runs"])
        caps = []
        for i in range(rng.choice([0, 0, 1, 1, 2])):
            cap: dict[str, Any] = {
                "cap": f"cap{i}",
                "payer": rng.choice(["boroughs", FUNDER, "SUT"]),
                "amount": money(rng.randint(0, 169 * 200 * 100)),
            }
            if rng.random() < 0.5:
                cap["boroughs"] = rng.choice([["SUT"], ["MRT", "BEX"], ["SUT", "MRT", "NWM"]])
            caps.append(cap)
        agreed = self.add(
            "ContractAgreed", AGREED, midnight(AGREED), key="contract", name="Simulated",
            lead_commissioner="SUT", prime_contractor="PFP", top_up_funder=FUNDER, terms=terms,
            caps=caps,
        )
        boroughs: dict[str, tuple[Line, date, date | None]] = {}
        chosen = BOROUGHS[: rng.randint(2, 4)]
        for i, borough in enumerate(chosen):
            joined = date(2018, 2, 1) if i < 2 else plus(date(2018, 6, 1), rng.randint(0, 450))
            line = self.add(
                "BoroughAcceded", joined, self.when(joined, agreed, lag=rng.randint(0, 20)),
                (agreed,), key=f"accede-{borough}", borough=borough, name=borough, award="A",
            )
            boroughs[borough] = (line, joined, None)
        if len(chosen) > 2 and rng.random() < 0.4:
            borough = chosen[-1]
            line, joined, _ = boroughs[borough]
            left = plus(joined, rng.randint(200, 700))
            self.add(
                "BoroughWithdrew", left, self.when(left, line), (line,),
                key=f"withdraw-{borough}", borough=borough,
            )
            boroughs[borough] = (line, joined, left)
        for v in range(rng.choice([0, 1, 1, 2])):
            effective = plus(date(2018, 6, 1), rng.randint(0, 1400))
            changes: dict[str, Any] = {
                "price_per_week": rng.choice(["180.50", "200.00", "214.00", "250.00"])
            }
            if rng.random() < 0.4:
                changes["top_up_per_week"] = rng.choice(["40.00", "45.00", "50.00"])
            if rng.random() < 0.3:
                changes["excluded_legal_statuses"] = rng.choice([["V3"], ["V3", "V4", "E1"]])
            new_caps = []
            for cap in caps:
                if rng.random() < 0.5:
                    new_caps.append({**cap, "amount": money(rng.randint(0, 169 * 300 * 100))})
            if rng.random() < 0.2:
                new_caps.append(
                    {"cap": f"late{v}", "payer": "boroughs",
                     "amount": money(rng.randint(0, 169 * 150 * 100))}
                )
            self.add(
                "VariationAgreed", effective,
                self.when(effective, agreed, lag=rng.randint(-90, 300)), (agreed,),
                key=f"var-{v}", variation=f"v{v}", description="varied", term_changes=changes,
                caps=new_caps, targets=TARGETS,
            )
        return agreed, boroughs

    def coverage(self, borough: str, accession: Line, joined: date) -> None:
        rng = self.rng
        end = date(2018, 3, 31)
        j = 0
        while end < date(2024, 3, 31):
            if end >= joined and rng.random() < 0.8:
                recorded = self.when(end, accession, lag=rng.randint(15, 200))
                key = f"cover-{borough}-{j}"
                line = self.add(
                    "CareDataReceived", recorded.date(), recorded, (accession,), key=key,
                    borough=borough, covers_until=end.isoformat(),
                )
                restated = rng.random()
                later = self.when(recorded.date(), line, lag=rng.randint(0, 200))
                if restated < 0.06:
                    new = plus(end, rng.randint(-120, 60))
                    self.correct(line, f"{key}-fix", later, covers_until=new.isoformat())
                elif restated < 0.1:
                    self.retract(line, f"{key}-gone", later)
                j += 1
            end = {3: date(end.year, 6, 30), 6: date(end.year, 9, 30),
                   9: date(end.year, 12, 31), 12: date(end.year + 1, 3, 31)}[end.month]

    # -- cases ---------------------------------------------------------------------------------

    def case(self, name: str, borough: str, accession: Line, joined: date, left: date | None):
        rng = self.rng
        last = min(date(2021, 6, 30), plus(left, -1) if left else date(2021, 6, 30))
        span = (last - joined).days
        if span < 0:
            return
        referred = plus(joined, rng.randint(0, min(span, 1100)))
        age = rng.randint(10, 16)
        born = plus(date(referred.year - age, referred.month, 1), -rng.randint(0, 300))
        ref = self.add(
            "ReferralReceived", referred, self.when(referred, accession), (accession,),
            key=f"{name}-ref", case=name, borough=borough, child_ref=f"{borough}-child-{name}",
            date_of_birth=born.isoformat(), behaviours=["offending"], in_care=False,
        )
        if rng.random() < 0.1:
            declined = plus(referred, rng.randint(0, 20))
            self.add(
                "ReferralDeclined", declined, self.when(declined, ref), (ref,),
                key=f"{name}-dec", case=name, reason="not eligible",
            )
            return
        accepted = min(plus(referred, rng.randint(0, 20)), date(2021, 6, 30))
        acc = self.add(
            "ReferralAccepted", accepted, self.when(accepted, ref), (ref,), key=f"{name}-acc",
            case=name, intervention=rng.choice(["MST", "FFT"]),
        )
        met = plus(accepted, rng.randint(0, 30))
        ffm = self.add(
            "FirstFamilyMeeting", met, self.when(met, acc), (acc,), key=f"{name}-ffm", case=name
        )
        ending = rng.choice(["open", "short", "long", "long", "long"])
        if ending != "open":
            ended = plus(met, rng.randint(0, 27) if ending == "short" else rng.randint(28, 300))
            end = self.add(
                "InterventionEnded", ended, self.when(ended, ffm), (ffm,), key=f"{name}-end",
                case=name, reason=rng.choice(["completed", "disengaged", "moved_away"]),
            )
            if rng.random() < 0.15:
                new = plus(met, rng.randint(0, 120))
                later = self.when(end.recorded.date(), end, lag=rng.randint(0, 200))
                self.correct(end, f"{name}-end-fix", later, effective=new.isoformat())
        if rng.random() < 0.25:
            boost = plus(met, rng.randint(60, 200))
            self.add(
                "BoosterSession", boost, self.when(boost, ffm), (ffm,), key=f"{name}-boost",
                case=name,
            )
        self.episodes(name, met, ref)

    def episodes(self, name: str, met: date, ref: Line) -> None:
        rng = self.rng
        n = rng.choice([0, 1, 1, 2, 2, 3, 4])
        cursor = plus(met, rng.randint(-60, 250))
        spans: list[tuple[date, date | None]] = []
        for i in range(n):
            start = plus(cursor, rng.randint(0, 120) if i else 0)
            is_open = i == n - 1 and rng.random() < 0.3
            end = None if is_open else plus(start, rng.randint(1, 120))
            spans.append((start, end))
            if end is None:
                break
            cursor = end
        previous = ref  # a stay starts once the previous stay's end is known
        for i, (start, end) in enumerate(spans):
            ep = f"{name}-E{i}"
            started = self.add(
                "CareEpisodeStarted", start, self.when(start, previous), (previous,),
                key=f"{ep}-start", case=name, episode=ep,
                legal_status=rng.choice(["C2", "C2", "C2", "E1", "V3", "V4"]),
                placement=rng.choice(["U1", "P1", "R1"]),
            )
            known = started
            if rng.random() < 0.1:
                self.correct(
                    started, f"{ep}-ls-fix", self.when(started.recorded.date(), started),
                    legal_status=rng.choice(["C2", "V3"]),
                )
            if end is not None:
                ended = self.add(
                    "CareEpisodeEnded", end, self.when(end, started), (started,),
                    key=f"{ep}-end", case=name, episode=ep, reason="E11",
                )
                known = previous = ended
                # Any reading of the end stays in [start, next start]: never an overlap.
                upper = spans[i + 1][0] if i + 1 < len(spans) else plus(start, 250)
                if rng.random() < 0.3:
                    fix = self.correct(
                        ended, f"{ep}-fix", self.when(ended.recorded.date(), ended),
                        effective=plus(start, rng.randint(0, (upper - start).days)).isoformat(),
                    )
                    previous = fix
                    again = rng.choice([None, None, "correct", "retract"])
                    later = self.when(fix.recorded.date(), fix)
                    if again == "correct":
                        previous = self.correct(
                            fix, f"{ep}-fix-fix", later,
                            changes={
                                "effective": plus(
                                    start, rng.randint(0, (upper - start).days)
                                ).isoformat()
                            },
                        )
                    elif again == "retract":
                        previous = self.retract(fix, f"{ep}-unfix", later)
            if rng.random() < 0.12:
                gone = self.when(known.recorded.date(), previous, lag=rng.randint(0, 300))
                start_gone = self.retract(started, f"{ep}-start-gone", gone, (previous,))
                if end is not None:  # with the start: an end alone would leave it open
                    self.retract(self.by_key[f"{ep}-end"], f"{ep}-end-gone", gone, (start_gone,))

    # -- arrival -------------------------------------------------------------------------------

    def deliver(self) -> Simulation:
        rng = self.rng
        order = sorted(self.lines, key=lambda x: (x.recorded, x.seq))
        arrival: dict[int, int] = {}
        first = quarter(AGREED)
        for line in order:
            batch = quarter(line.recorded.date()) - first
            if rng.random() < 0.12:
                batch += rng.randint(1, 6)  # it arrives late, its recorded date backfilled
            for dep in line.deps:
                batch = max(batch, arrival[dep])
            arrival[line.seq] = batch
        sim = Simulation(self.seed, order, arrival)
        grouped: dict[int, list[Line]] = {}
        for line in order:
            grouped.setdefault(arrival[line.seq], []).append(line)
        sim.batches = [grouped[b] for b in sorted(grouped)]
        return sim


def generate(seed: int) -> Simulation:
    g = _Generator(seed)
    agreed, boroughs = g.contract()
    for borough, (accession, joined, _) in boroughs.items():
        g.coverage(borough, accession, joined)
    names = sorted(boroughs)
    for n in range(g.rng.randint(6, 20)):
        borough = g.rng.choice(names)
        accession, joined, left = boroughs[borough]
        g.case(f"K{n:02d}", borough, accession, joined, left)
    return g.deliver()
