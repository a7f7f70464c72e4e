"""Build event histories in memory for the outcome-rule tests: no database, no CLI.

`History` appends events as `Recorded` log entries (positions 1, 2, ...; one stream per case as
the ledger keeps them), so tests go through `known_facts` exactly as the projections do.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from soc_ledger.domain.events import EVENT_ADAPTER
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt, Recorded, known_facts

CONTRACT = "plcip"
EARLY = date(2017, 1, 1)  # the default recorded date: known to every query

REFERENCE_TERMS: dict[str, Any] = {
    "price_per_week": "214.00",
    "top_up_per_week": "45.00",
    "tracking_weeks": 104,
    "tracking_offset_weeks": {"MST": 17, "FFT": 11},
    "min_engagement_days": 28,
    "week_rule": "fixed_blocks",
    "excluded_legal_statuses": ["V3", "V4"],
    "excluded_placements": [],
    "age_at_referral": {"min": 10, "max": 16, "exception_max": 17},
    "referrals_close": "2021-06-30",
    "co_commissioning_fee": [{"from": "2018-04-01", "annual_amount": "13000.00"}],
}

TARGETS = {
    "referrals": 0,
    "tracked": 0,
    "outcome_weeks": 0,
    "outcome_payments": {"low": "0.00", "medium": "0.00", "high": "0.00"},
    "investment": "0.00",
}


def instant(day: date | str) -> datetime:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime.combine(day, time(12), tzinfo=UTC)


def days(start: date, n: int) -> date:
    return date.fromordinal(start.toordinal() + n)


class History:
    """An append-only log of events for one contract, as `Recorded` entries."""

    def __init__(self, contract: str = CONTRACT) -> None:
        self.contract = contract
        self.records: list[Recorded] = []
        self._versions: dict[str, int] = defaultdict(int)

    # --- raw appends -------------------------------------------------------------------

    def add(
        self,
        type: str,
        effective: date | str,
        recorded: date | str = EARLY,
        stream: str | None = None,
        target: Recorded | None = None,
        **fields: Any,
    ) -> Recorded:
        event = EVENT_ADAPTER.validate_python(
            {"type": type, "contract": self.contract, "effective": str(effective), **fields}
        )
        if stream is None:
            case = fields.get("case")
            stream = f"{self.contract}/{case}" if case else self.contract
        self._versions[stream] += 1
        record = Recorded(
            position=len(self.records) + 1,
            stream=stream,
            version=self._versions[stream],
            recorded_on=instant(recorded),
            appended_at=instant(recorded),
            event=event,
            target_version=target.version if target is not None else None,
        )
        self.records.append(record)
        return record

    def correct(self, target: Recorded, recorded: date | str, **changes: Any) -> Recorded:
        return self._corrector("EventCorrected", target, recorded, changes=changes)

    def retract(self, target: Recorded, recorded: date | str) -> Recorded:
        return self._corrector("EventRetracted", target, recorded)

    def _corrector(self, type: str, target: Recorded, recorded: date | str, **fields) -> Recorded:
        event = EVENT_ADAPTER.validate_python(
            {
                "type": type,
                "contract": self.contract,
                "effective": str(target.event.effective),
                "target": target.event.key or str(target.version),
                "reason": "restated",
                **fields,
            }
        )
        self._versions[target.stream] += 1
        record = Recorded(
            position=len(self.records) + 1,
            stream=target.stream,
            version=self._versions[target.stream],
            recorded_on=instant(recorded),
            appended_at=instant(recorded),
            event=event,
            target_version=target.version,
        )
        self.records.append(record)
        return record

    def facts(self, known_at: date | None = None):
        return known_facts(self.records, EVERYTHING if known_at is None else KnownAt.on(known_at))

    # --- the contract -------------------------------------------------------------------

    def agree(
        self, caps: list[dict] | None = None, effective: str = "2017-09-01", **terms: Any
    ) -> Recorded:
        return self.add(
            "ContractAgreed", effective, name="Test contract", lead_commissioner="SUT",
            prime_contractor="PFP", top_up_funder="CBO", terms={**REFERENCE_TERMS, **terms},
            caps=caps or [],
        )

    def vary(
        self, variation: str, effective: date | str, caps: list[dict] | None = None,
        recorded: date | str = EARLY, **term_changes: Any,
    ) -> Recorded:
        return self.add(
            "VariationAgreed", effective, recorded, variation=variation,
            description=f"variation {variation}", term_changes=term_changes, caps=caps or [],
            targets=TARGETS,
        )

    def accede(self, borough: str, effective: str = "2018-02-01") -> Recorded:
        return self.add("BoroughAcceded", effective, borough=borough, name=borough, award="A1")

    def coverage(
        self, borough: str, covers_until: date | str, recorded: date | str = EARLY
    ) -> Recorded:
        return self.add(
            "CareDataReceived", covers_until, recorded, borough=borough,
            covers_until=str(covers_until),
        )

    # --- cases --------------------------------------------------------------------------

    def case(
        self,
        case: str,
        first_meeting: date | None,
        borough: str = "SUT",
        intervention: str = "MST",
        ended: date | None = None,
        referred: date = date(2018, 6, 1),
        recorded: date | str = EARLY,
    ) -> None:
        self.add(
            "ReferralReceived", referred, recorded, case=case, borough=borough,
            child_ref=f"child-{case}", date_of_birth="2006-01-15", behaviours=[], in_care=False,
        )
        self.add("ReferralAccepted", referred, recorded, case=case, intervention=intervention)
        if first_meeting is not None:
            self.add("FirstFamilyMeeting", first_meeting, recorded, case=case)
        if ended is not None:
            self.add("InterventionEnded", ended, recorded, case=case, reason="disengaged")

    def episode(
        self,
        case: str,
        episode: str,
        start: date,
        end: date | None = None,
        legal_status: str = "C2",
        placement: str = "U1",
        recorded: date | str = EARLY,
    ) -> tuple[Recorded, Recorded | None]:
        started = self.add(
            "CareEpisodeStarted", start, recorded, case=case, episode=episode,
            legal_status=legal_status, placement=placement, key=f"{case}-{episode}-start",
        )
        ended = None
        if end is not None:
            ended = self.add(
                "CareEpisodeEnded", end, recorded, case=case, episode=episode, reason="E11",
                key=f"{case}-{episode}-end",
            )
        return started, ended


def pounds(value: str | int) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))
