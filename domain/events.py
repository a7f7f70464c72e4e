"""Every event of SPEC §4 as a frozen pydantic model with exactly the fields listed there.

The JSON Lines input is validated against `LedgerEvent` (a union discriminated by `type`), so
an unknown type or an unknown field is an error, never silently dropped. Every model is
strict: a string is never read as a number or a flag, nor a number as a flag.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from soc_ledger.domain.values import (
    BirthDate,
    Code,
    Count,
    Instant,
    IsoDate,
    Money,
    Number,
    Percent,
    Share,
    Text,
)


class Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, defer_build=True, strict=True
    )


# --- contract terms -------------------------------------------------------------------


class AgeRange(Model):
    min: int = Field(ge=0, le=30)
    max: int = Field(ge=0, le=30)
    exception_max: int | None = Field(default=None, ge=0, le=30)


class FeeFrom(Model):
    from_: IsoDate = Field(alias="from")
    annual_amount: Money


WeekRule = Literal["fixed_blocks", "consecutive_runs"]
Intervention = Literal["MST", "FFT"]
# How outcomes are paid (docs/mechanisms.md); a contract may combine several.
Mechanism = Literal[
    "weeks_out_of_care", "care_days_saved", "wellbeing_improvement", "quality_bonus",
    "reunification",
]
MECHANISMS: tuple[str, ...] = get_args(Mechanism)
DEFAULT_MECHANISMS: tuple[str, ...] = ("weeks_out_of_care",)
Mechanisms = Annotated[list[Mechanism], Field(min_length=1, max_length=len(MECHANISMS))]


class CareDaysSavedTerms(Model):
    """`care_days_saved` (docs/care_days_saved.md): a price per care day saved against a
    comparison group's share of days in care, each case tracked `tracking_months` from its first
    family meeting."""

    price_per_day: Money
    comparison_care_share: Share
    target_care_share: Share
    tracking_months: int = Field(gt=0, le=240)


class Band(Model):
    """A weighted total at or above `from` (a percentage) pays `payment` percent."""

    from_: Percent = Field(alias="from")
    payment: Percent


class QualityBonusTerms(Model):
    """`quality_bonus` (docs/quality_bonus.md): areas scored each quarter, weighted, banded."""

    weights: dict[Code, Percent] = Field(min_length=1)
    bands: list[Band] = Field(min_length=1)
    annual_value: Money
    max_percent_per_year: Percent
    max_per_year: Money


class WellbeingTerms(Model):
    """`wellbeing_improvement` (docs/wellbeing_improvement.md): a price per tracked case whose
    later reading of `measure` is at least `min_improvement` points above its first."""

    measure: Code
    price_per_improvement: Money
    min_improvement: Percent
    min_weeks_between: int = Field(ge=0, le=520)


class ReunificationTerms(Model):
    """`reunification` (docs/reunification.md): a price per young person referred while in care
    who returns home and stays home `stay_home_weeks`; at least `min_referrals` such referrals
    are expected of the commissioner."""

    price_per_return: Money
    stay_home_weeks: int = Field(gt=0, le=520)
    min_referrals: Count


class Terms(Model):
    """The full terms of SPEC §3."""

    price_per_week: Money
    top_up_per_week: Money
    tracking_weeks: int = Field(gt=0, le=1000)
    tracking_offset_weeks: dict[Code, Annotated[int, Field(ge=0, le=520)]]
    min_engagement_days: int = Field(ge=0, le=3650)
    week_rule: WeekRule
    excluded_legal_statuses: list[Code]
    excluded_placements: list[Code]
    age_at_referral: AgeRange
    referrals_close: IsoDate
    co_commissioning_fee: list[FeeFrom]
    # Absent: `weeks_out_of_care` alone (every contract recorded before mechanisms were terms).
    mechanism: Mechanisms | None = None
    care_days_saved: CareDaysSavedTerms | None = None
    quality_bonus: QualityBonusTerms | None = None
    wellbeing_improvement: WellbeingTerms | None = None
    reunification: ReunificationTerms | None = None

    @property
    def mechanisms(self) -> tuple[str, ...]:
        return tuple(self.mechanism) if self.mechanism is not None else DEFAULT_MECHANISMS


class TermChanges(Model):
    """Any subset of `Terms` (a variation's changes)."""

    price_per_week: Money | None = None
    top_up_per_week: Money | None = None
    tracking_weeks: int | None = Field(default=None, gt=0, le=1000)
    tracking_offset_weeks: dict[Code, Annotated[int, Field(ge=0, le=520)]] | None = None
    min_engagement_days: int | None = Field(default=None, ge=0, le=3650)
    week_rule: WeekRule | None = None
    excluded_legal_statuses: list[Code] | None = None
    excluded_placements: list[Code] | None = None
    age_at_referral: AgeRange | None = None
    referrals_close: IsoDate | None = None
    co_commissioning_fee: list[FeeFrom] | None = None
    mechanism: Mechanisms | None = None
    care_days_saved: CareDaysSavedTerms | None = None
    quality_bonus: QualityBonusTerms | None = None
    wellbeing_improvement: WellbeingTerms | None = None
    reunification: ReunificationTerms | None = None


class Cap(Model):
    cap: Code
    payer: Code
    boroughs: list[Code] | None = None
    amount: Money


class OutcomePayments(Model):
    low: Money
    medium: Money
    high: Money


class ProfilePoint(Model):
    date: IsoDate
    referrals: Count
    outcome_payments: Money


class Targets(Model):
    referrals: Count
    tracked: Count
    outcome_weeks: Count
    outcome_payments: OutcomePayments
    investment: Money
    per_borough: dict[Code, Count] | None = None
    profile: list[ProfilePoint] | None = None


class ClaimLine(Model):
    case: Code
    weeks: Count
    amount: Money


# --- the envelope every event shares -------------------------------------------------------


class Event(Model):
    type: str
    contract: Code
    effective: IsoDate
    recorded_on: Instant | None = None
    key: Code | None = None
    source: Text | None = None

    @property
    def case_id(self) -> str | None:
        return getattr(self, "case", None)


# --- contract ---------------------------------------------------------------------------


class ContractAgreed(Event):
    type: Literal["ContractAgreed"]
    name: Text
    lead_commissioner: Code
    prime_contractor: Code
    top_up_funder: Code
    terms: Terms
    caps: list[Cap]


class BoroughAcceded(Event):
    type: Literal["BoroughAcceded"]
    borough: Code
    name: Text
    award: Code


class BoroughWithdrew(Event):
    type: Literal["BoroughWithdrew"]
    borough: Code


class VariationAgreed(Event):
    type: Literal["VariationAgreed"]
    variation: Code
    description: Text
    term_changes: TermChanges
    caps: list[Cap]
    targets: Targets


# --- case -------------------------------------------------------------------------------


class ReferralReceived(Event):
    type: Literal["ReferralReceived"]
    case: Code
    borough: Code
    # Stored only as a keyed pseudonym (SPEC §11); the ledger replaces it before storing.
    child_ref: Code
    # A full date on input, checked for eligibility; stored as year and month only.
    date_of_birth: BirthDate
    behaviours: list[Code]
    in_care: bool
    age_exception: Text | None = None


class ReferralAccepted(Event):
    type: Literal["ReferralAccepted"]
    case: Code
    intervention: Intervention


class ReferralDeclined(Event):
    type: Literal["ReferralDeclined"]
    case: Code
    reason: Text


class FirstFamilyMeeting(Event):
    type: Literal["FirstFamilyMeeting"]
    case: Code


class InterventionEnded(Event):
    type: Literal["InterventionEnded"]
    case: Code
    reason: Literal["completed", "disengaged", "withdrawn", "moved_away"]


class BoosterSession(Event):
    type: Literal["BoosterSession"]
    case: Code


class CareEpisodeStarted(Event):
    type: Literal["CareEpisodeStarted"]
    case: Code
    episode: Code
    legal_status: Code
    placement: Code


class CareEpisodeEnded(Event):
    type: Literal["CareEpisodeEnded"]
    case: Code
    episode: Code
    reason: Code


class WellbeingMeasured(Event):
    """A reading of a wellbeing measure for a case (e.g. an Outcomes Star), as a percentage of
    the measure's maximum; the first reading is the baseline, later ones show the change."""

    type: Literal["WellbeingMeasured"]
    case: Code
    measure: Code
    score: Percent


class CareDataReceived(Event):
    type: Literal["CareDataReceived"]
    borough: Code
    covers_until: IsoDate


class EventCorrected(Event):
    type: Literal["EventCorrected"]
    target: Code
    changes: dict[str, Any] = Field(min_length=1)
    reason: Text


class EventRetracted(Event):
    type: Literal["EventRetracted"]
    target: Code
    reason: Text


class QualityScored(Event):
    """One area's score for the quarter ending `quarter_end` (`quality_bonus`)."""

    type: Literal["QualityScored"]
    area: Code
    quarter_end: IsoDate
    score: Percent


class QualityPublished(Event):
    """The weighted total and payment a commissioner published for a quarter, to be checked
    against the ones the scores and terms give (never used to compute a payment)."""

    type: Literal["QualityPublished"]
    quarter_end: IsoDate
    weighted_total: Percent
    payment: Percent


# --- money ------------------------------------------------------------------------------


class ClaimSubmitted(Event):
    type: Literal["ClaimSubmitted"]
    claim: Code
    payer: Code
    period_end: IsoDate
    lines: list[ClaimLine]


class ClaimLineDisputed(Event):
    type: Literal["ClaimLineDisputed"]
    claim: Code
    case: Code
    raised_by: Code
    reason: Text


class DisputeResolved(Event):
    type: Literal["DisputeResolved"]
    claim: Code
    case: Code
    outcome: Literal["upheld", "rejected", "adjusted"]
    amount: Money


class PaymentReceived(Event):
    type: Literal["PaymentReceived"]
    claim: Code
    payer: Code
    amount: Money


class InvestmentCommitted(Event):
    type: Literal["InvestmentCommitted"]
    investor: Code
    amount: Money


class CapitalDrawn(Event):
    type: Literal["CapitalDrawn"]
    amount: Money
    purpose: Text
    allocation: dict[Code, Money] | None = None


class DistributionPaid(Event):
    type: Literal["DistributionPaid"]
    amount: Money
    allocation: dict[Code, Money] | None = None


class CostIncurred(Event):
    type: Literal["CostIncurred"]
    category: Code
    amount: Money
    provider: Code | None = None


class UnitCostsSet(Event):
    type: Literal["UnitCostsSet"]
    weekly_cost: dict[Code, Money]
    placement_mix: dict[Code, Share]
    counterfactual_rate: Share


# --- audit ------------------------------------------------------------------------------


class BalanceAsserted(Event):
    type: Literal["BalanceAsserted"]
    as_of: IsoDate
    known_at: IsoDate | None = None
    scope: Code
    figure: Literal["owed", "provisional", "outcome_weeks"]
    value: Number
    by: Code


EVENT_CLASSES: tuple[type[Event], ...] = (
    ContractAgreed,
    BoroughAcceded,
    BoroughWithdrew,
    VariationAgreed,
    ReferralReceived,
    ReferralAccepted,
    ReferralDeclined,
    FirstFamilyMeeting,
    InterventionEnded,
    BoosterSession,
    CareEpisodeStarted,
    CareEpisodeEnded,
    CareDataReceived,
    WellbeingMeasured,
    QualityScored,
    QualityPublished,
    EventCorrected,
    EventRetracted,
    ClaimSubmitted,
    ClaimLineDisputed,
    DisputeResolved,
    PaymentReceived,
    InvestmentCommitted,
    CapitalDrawn,
    DistributionPaid,
    CostIncurred,
    UnitCostsSet,
    BalanceAsserted,
)
EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in EVENT_CLASSES
}

LedgerEvent = Annotated[Union[EVENT_CLASSES], Field(discriminator="type")]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(
    LedgerEvent, config=ConfigDict(defer_build=True)
)

# Events that belong to one case's history (the Case aggregate); the rest are the contract's.
CASE_EVENTS = frozenset(
    {
        "ReferralReceived",
        "ReferralAccepted",
        "ReferralDeclined",
        "FirstFamilyMeeting",
        "InterventionEnded",
        "BoosterSession",
        "CareEpisodeStarted",
        "CareEpisodeEnded",
        "WellbeingMeasured",
    }
)
# Fields a correction may not change: they say what the event is and whose it is, not what it
# says (a referral "moved" to another case would leave its own case without it).
IDENTITY_FIELDS = frozenset({"type", "contract", "key", "recorded_on", "case", "target"})
