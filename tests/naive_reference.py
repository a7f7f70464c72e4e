"""A deliberately simple, day-by-day implementation of the SPEC §5 outcome rules, for tests.

It shares no code with `soc_ledger.projections`: it reads the event models, folds the contract
with the domain's own `ContractState` (for `terms_on`/`caps_on`), and then walks every day of
every tracking window in one loop. Slow and obvious on purpose; the property tests check that
the interval engine agrees with it exactly.

The readings are the engine's (see `domain/outcomes/`), restated the slow way:
- a day is in care when a spell covers it (start <= day < end, open spells run on) whose legal
  status and placement are not excluded by the terms in force on the last day of the day's
  fixed 7-day block;
- fixed_blocks: a block is pending / in_care / outcome / unverified;
- consecutive_runs: count consecutive verified-or-not out-of-care elapsed days; every 7th one
  closes a unit (outcome if that day is verified, else unverified) and the count restarts;
  a day in care resets the count; in_care and pending are counted over the fixed blocks;
- caps: outcome units by (last day, case); running total per cap of what was owed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from soc_ledger.domain import contract as contract_rules
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.events import CASE_EVENTS

ZERO = Decimal("0.00")


@dataclass
class NaiveCase:
    case: str
    weeks: dict[str, int] = field(
        default_factory=lambda: {"outcome": 0, "in_care": 0, "unverified": 0, "pending": 0}
    )
    owed_borough: Decimal = ZERO
    owed_top_up: Decimal = ZERO
    provisional_borough: Decimal = ZERO
    provisional_top_up: Decimal = ZERO
    capped_borough: Decimal = ZERO
    capped_top_up: Decimal = ZERO
    days_in_care: int = 0
    days_out_of_care: int = 0


def naive_liability(
    facts: list, contract_id: str, as_of: date, week_rule: str | None = None
) -> dict[str, NaiveCase]:
    """Per tracked case: weeks by status, money after caps, days; from the facts alone."""
    contract = ContractState(contract_id)
    for fact in facts:
        e = fact.event
        if e.contract == contract_id and e.type not in CASE_EVENTS:
            contract_rules.apply(contract, e)

    terms_cache: dict[date, object] = {}

    def terms(day):
        if day not in terms_cache:
            terms_cache[day] = contract.terms_on(day)
        return terms_cache[day]

    # the cases, the slow way
    cases: dict[str, dict] = {}
    coverage: dict[str, date] = {}
    for fact in facts:
        e = fact.event
        if e.contract != contract_id:
            continue
        if e.type == "CareDataReceived":
            if e.borough not in coverage or e.covers_until > coverage[e.borough]:
                coverage[e.borough] = e.covers_until
            continue
        if e.type not in CASE_EVENTS:
            continue
        case_id = e.case
        c = cases.setdefault(case_id, {"spells": {}, "ends": {}})
        if e.type == "ReferralReceived":
            c["borough"] = e.borough
        elif e.type == "ReferralAccepted":
            c["intervention"] = e.intervention
        elif e.type == "FirstFamilyMeeting":
            c["first"] = e.effective
        elif e.type == "InterventionEnded":
            c["ended"] = e.effective
        elif e.type == "CareEpisodeStarted":
            c["spells"][e.episode] = (e.effective, e.legal_status, e.placement)
        elif e.type == "CareEpisodeEnded":
            c["ends"][e.episode] = e.effective

    one = timedelta(days=1)
    results: dict[str, NaiveCase] = {}
    units: list[tuple[date, str, str, Decimal, Decimal]] = []  # outcome units for the caps
    for case_id in sorted(cases):
        c = cases[case_id]
        if "borough" not in c or "intervention" not in c or "first" not in c:
            continue
        first = c["first"]
        if first > as_of:
            continue
        t = terms(first)
        ended = c.get("ended")
        last_engaged = ended if ended is not None and ended <= as_of else as_of
        if (last_engaged - first).days < t.min_engagement_days:
            continue
        rule = week_rule or t.week_rule
        start = first + timedelta(weeks=t.tracking_offset_weeks[c["intervention"]])
        result = results[case_id] = NaiveCase(case_id)
        verified_to = coverage.get(c["borough"], date.min)

        block_in_care: dict[int, bool] = {}
        run = 0
        day = start
        for n in range(7 * t.tracking_weeks):
            day = start + n * one
            k = n // 7
            block_end = start + (7 * k + 6) * one
            bt = terms(block_end)
            in_care = False
            for episode, (begin, status, placement) in c["spells"].items():
                end = c["ends"].get(episode)
                if begin <= day and (end is None or day < end):
                    if status not in bt.excluded_legal_statuses and (
                        placement not in bt.excluded_placements
                    ):
                        in_care = True
            if day > as_of:
                continue
            block_in_care[k] = block_in_care.get(k, False) or in_care
            if in_care:
                result.days_in_care += 1
                run = 0
            else:
                result.days_out_of_care += 1
                run += 1
                if rule == "consecutive_runs" and run == 7:
                    run = 0
                    _count(result, units, c, day, day <= verified_to, terms(day))

        for k in range(t.tracking_weeks):
            block_end = start + (7 * k + 6) * one
            if block_end > as_of:
                result.weeks["pending"] += 1
            elif block_in_care[k]:
                result.weeks["in_care"] += 1
            elif rule == "fixed_blocks":
                _count(result, units, c, block_end, block_end <= verified_to, terms(block_end))

    # caps, one outcome unit at a time
    funder = contract.agreed.top_up_funder
    cap_ids = []
    for change in contract.terms_history:
        for cap in change.caps:
            if cap.cap not in cap_ids:
                cap_ids.append(cap.cap)
    running = {cap_id: ZERO for cap_id in cap_ids}
    for day, case_id, borough, borough_price, top_up_price in sorted(units, key=lambda u: u[:2]):
        result = results[case_id]
        in_force = {cap.cap: cap for cap in contract.caps_on(day)}
        for share, price in (("borough", borough_price), ("top_up", top_up_price)):
            owed = price
            covering = []
            for cap_id in cap_ids:
                cap = in_force.get(cap_id) or _first_definition(contract, cap_id)
                if cap.boroughs is not None and borough not in cap.boroughs:
                    continue
                if share == "borough" and cap.payer not in ("boroughs", borough):
                    continue
                if share == "top_up" and cap.payer != funder:
                    continue
                covering.append(cap_id)
                if cap_id in in_force:
                    owed = min(owed, max(ZERO, in_force[cap_id].amount - running[cap_id]))
            for cap_id in covering:
                running[cap_id] += owed
            if share == "borough":
                result.owed_borough += owed
                result.capped_borough += price - owed
            else:
                result.owed_top_up += owed
                result.capped_top_up += price - owed
    return results


def _count(result: NaiveCase, units: list, c: dict, day: date, verified: bool, t) -> None:
    borough_price = t.price_per_week - t.top_up_per_week
    if verified:
        result.weeks["outcome"] += 1
        units.append((day, result.case, c["borough"], borough_price, t.top_up_per_week))
    else:
        result.weeks["unverified"] += 1
        result.provisional_borough += borough_price
        result.provisional_top_up += t.top_up_per_week


def _first_definition(contract: ContractState, cap_id: str):
    for change in contract.terms_history:
        for cap in change.caps:
            if cap.cap == cap_id:
                return cap
    raise KeyError(cap_id)
