"""Claims, disputes and payments (SPEC §7): reconciliation line by line, statements of account.

Pure functions over facts and the outcome rules, plus the query functions the commands call.
The readings (also in docs/claims.md):

- **What a claim line asks for.** A claim line asks its payer for the payer's share of one
  case's outcome weeks that ended after the period the payer's previous claim line for that case
  covered, up to the claim's `period_end`. "The previous line" is the line for the same case in
  the payer's claim with the latest `period_end` before it (claims of the same payer in order of
  `period_end`, then of recording). The payer's share is the borough share (after caps) for
  the case's referring borough, the top-up share (after caps) for the top-up funder, nothing for
  anyone else. Exactly:

      due(line) = owed(case, payer, as_of=period_end) - owed(case, payer, as_of=previous end)

  where `owed` is what `liability` gives that payer for that case (0 before any claim), both
  read with the same knowledge. Because a week's amount is final once it has ended, that is the
  payer's share of the case's weeks ending in (previous end, period_end]; written as a
  difference, a case's lines add up, claim by claim, to what it owes at the last one exactly.
- **Due then / due now.** *Due then* reads the facts known at the claim's recorded instant
  (`recorded_on` of the `ClaimSubmitted`), *due now* those known at `known_at` (default:
  everything). Both use the same previous lines (the claims on the ledger at
  (`as_of`, `known_at`)), so a difference between them comes only from facts about care,
  engagement, coverage or terms recorded after the claim: the events that changed the line's
  weeks are named (`because`).
- **Difference.** `claim_error` when claimed differs from due then, `later_correction` when due
  then differs from due now, `both` when both. Money decides; `weeks` is shown for information.
- **Disputes.** A `DisputeResolved` settles the line at its `amount` whatever its `outcome`
  (`upheld`: the payer was right, typically a lower amount; `rejected`: the claim stands, the
  claimed amount; `adjusted`: a compromise). It decides how payments are allocated, never what is
  due: what is due is what the contract's rules give from the facts. A dispute that showed the
  data wrong is settled in the data (an `EventCorrected` or `EventRetracted`), which moves *due
  now*. A line is `disputed` by its claimed amount while its dispute is open.
- **Payments.** A `PaymentReceived` pays a claim, not a line. All payments on a claim (on or
  before `as_of`) are allocated together: lines in claim order, each up to what it asks (its
  claimed amount, or the amount its dispute was settled at), lines under open dispute last;
  anything paid beyond every line's ask goes on the claim's last line. So the lines' `paid` adds
  up to the claim's payments to the penny.
- **Adjustment** of a line = due now - paid: positive, the payer owes it; negative, it is owed
  back to the payer. A claim's adjustment is the sum of its lines' (= due now - paid).
- **On the ledger at (as_of, known_at)**: claims recorded by `known_at` and submitted
  (`effective`) on or before `as_of`; payments, disputes and resolutions likewise, each by its
  own effective date.
- **Statement** of a payer at (as_of, known_at): each claim with its due (due now), paid,
  disputed and adjustment; *unclaimed* = what the payer owes at `as_of` for weeks no claim line
  has covered; balance = adjustments + unclaimed = everything the payer owes at `as_of` (as
  `liability` gives it) - everything it has paid.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine

from soc_ledger.domain import contract as contract_rules
from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt
from soc_ledger.domain.outcomes.facts import CaseFacts
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import LIFECYCLE, engagement
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.projections import readmodel
from soc_ledger.projections.outcome_facts import knowledge
from soc_ledger.projections.queries import EventRef, recorded_between

CLAIM_TYPES = ("ClaimSubmitted", "ClaimLineDisputed", "DisputeResolved", "PaymentReceived")


# --- claims as facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim as read from the facts, with everything recorded about it (any date)."""

    claim: str
    payer: str
    period_end: date
    submitted: date  # the claim's effective date
    position: int  # log position of its ClaimSubmitted
    lines: tuple[ev.ClaimLine, ...]
    disputes: tuple[ev.ClaimLineDisputed, ...] = ()
    resolutions: tuple[ev.DisputeResolved, ...] = ()
    payments: tuple[ev.PaymentReceived, ...] = ()

    @property
    def claimed(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def paid(self, as_of: date) -> Decimal:
        return sum((p.amount for p in self.payments if p.effective <= as_of), ZERO)

    def dispute(self, case: str, as_of: date) -> DisputeState | None:
        """The state of the dispute on a line at `as_of`, None if none was raised by then."""
        raised = next(
            (d for d in self.disputes if d.case == case and d.effective <= as_of), None
        )
        if raised is None:
            return None
        settled = next(
            (r for r in self.resolutions if r.case == case and r.effective <= as_of), None
        )
        return DisputeState(raised, settled)

    def allocate(self, as_of: date) -> dict[str, Decimal]:
        """The claim's payments at `as_of` spread over its lines (see the module's readings)."""
        disputes = {line.case: self.dispute(line.case, as_of) for line in self.lines}
        held = {case for case, d in disputes.items() if d is not None and d.open}
        order = [line for line in self.lines if line.case not in held] + [
            line for line in self.lines if line.case in held
        ]
        left = self.paid(as_of)
        paid = {line.case: ZERO for line in self.lines}
        for line in order:
            d = disputes[line.case]
            ask = d.resolution.amount if d is not None and d.resolution else line.amount
            take = min(left, ask)
            paid[line.case] += take
            left -= take
        if left and self.lines:
            paid[self.lines[-1].case] += left
        return paid


@dataclass(frozen=True, slots=True)
class DisputeState:
    raised: ev.ClaimLineDisputed
    resolution: ev.DisputeResolved | None

    @property
    def open(self) -> bool:
        return self.resolution is None

    @property
    def outcome(self) -> str:
        return "open" if self.resolution is None else self.resolution.outcome


def claims_from_facts(facts: Iterable[Fact], contract: str) -> dict[str, Claim]:
    """Every claim of `contract` with its disputes, resolutions and payments, in log order.

    Facts run through the contract's own rules (`domain.contract.apply`); a fact they would
    reject at this reading is left out, as `contract_from_facts` does. `facts` must include
    the `ContractAgreed` (the rules need an agreed contract).
    """
    state = ContractState(contract)
    drafts: dict[str, dict] = {}
    for fact in facts:
        event = fact.event
        if event.contract != contract:
            continue
        try:
            contract_rules.apply(state, event)
        except DomainError:
            continue
        if isinstance(event, ev.ClaimSubmitted):
            drafts[event.claim] = {
                "claim": event.claim,
                "payer": event.payer,
                "period_end": event.period_end,
                "submitted": event.effective,
                "position": fact.recorded.position,
                "lines": tuple(event.lines),
                "disputes": [],
                "resolutions": [],
                "payments": [],
            }
        elif isinstance(event, ev.ClaimLineDisputed):
            drafts[event.claim]["disputes"].append(event)
        elif isinstance(event, ev.DisputeResolved):
            drafts[event.claim]["resolutions"].append(event)
        elif isinstance(event, ev.PaymentReceived):
            drafts[event.claim]["payments"].append(event)
    return {
        claim: Claim(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in draft.items()}
        )
        for claim, draft in drafts.items()
    }


def on_ledger(claims: Iterable[Claim], as_of: date) -> list[Claim]:
    """The claims submitted on or before `as_of`, in order of period end, then of recording."""
    return sorted(
        (c for c in claims if c.submitted <= as_of), key=lambda c: (c.period_end, c.position)
    )


@dataclass(frozen=True, slots=True)
class Windows:
    """For one payer: where each claim line's weeks begin, and where the claimed weeks end."""

    previous: dict[tuple[str, str], date | None]  # (claim, case) -> the previous line's end
    last: dict[str, date]  # case -> the period end of its latest line

    @classmethod
    def of(cls, claims: Iterable[Claim], payer: str) -> Windows:
        """`claims` in order of period end, then of recording (`on_ledger`)."""
        previous: dict[tuple[str, str], date | None] = {}
        last: dict[str, date] = {}
        for claim in claims:
            if claim.payer != payer:
                continue
            for line in claim.lines:
                previous[(claim.claim, line.case)] = last.get(line.case)
                last[line.case] = claim.period_end
        return cls(previous, last)


# --- what a payer owes for a case at any as_of --------------------------------------------


@dataclass(frozen=True, slots=True)
class Share:
    """A payer's share of a case's outcome weeks: money after caps, and how many weeks."""

    amount: Decimal = ZERO
    weeks: int = 0

    def __sub__(self, other: Share) -> Share:
        return Share(self.amount - other.amount, self.weeks - other.weeks)


NOTHING = Share()


class _Reading:
    """One `liability` answer, indexed for `owed` lookups: per case, its outcome weeks' last
    days and the running sums of the borough and top-up shares."""

    def __init__(self, result: Liability) -> None:
        self.result = result
        self.borough = {c.case: c.borough for c in result.cases}
        self.table: dict[str, tuple[list[date], list[Decimal], list[Decimal]]] = {}
        for case, (_, weeks) in result.by_case.items():
            ends: list[date] = []
            borough, top_up = [ZERO], [ZERO]
            for w in weeks:
                if w.status == "outcome":
                    ends.append(w.end)
                    borough.append(borough[-1] + w.borough_amount)
                    top_up.append(top_up[-1] + w.top_up_amount)
            self.table[case] = (ends, borough, top_up)


class Owed:
    """What each payer owes for each case at any `as_of` up to `horizon`, at one knowledge.

    One `liability` at `horizon` answers every earlier `as_of`: a week's status and amount are
    final once it has ended (caps take weeks in the order of their last days), so the weeks that
    ended by `as_of` are the same in both. The one exception is a case that had outcome weeks by
    `as_of` but was not yet tracked then (still inside its first `min_engagement_days`, possible
    only under terms whose tracking offset is shorter than that): for such an `as_of` the
    liability is computed at `as_of` itself. Either way the answer is `liability(as_of)`'s.
    """

    def __init__(
        self,
        contract: ContractState,
        cases: Mapping[str, CaseFacts],
        coverage: Mapping[str, date],
        horizon: date,
    ) -> None:
        self.contract = contract
        self.cases = cases
        self.coverage = coverage
        self.horizon = horizon
        self.timeline = TermsTimeline(contract)
        self.funder = self.timeline.top_up_funder
        self._full = _Reading(liability(contract, cases, coverage, horizon))
        self._first_outcome = {
            case: ends[0] for case, (ends, _, _) in self._full.table.items() if ends
        }
        self._readings: dict[date, _Reading] = {horizon: self._full}

    def _reading(self, as_of: date) -> _Reading:
        if as_of > self.horizon:
            raise ValueError(f"as_of {as_of} is after the horizon {self.horizon}")
        found = self._readings.get(as_of)
        if found is None:
            early = any(
                end <= as_of and engagement(self.cases[case], self.timeline, as_of) != "tracked"
                for case, end in self._first_outcome.items()
            )
            found = (
                _Reading(liability(self.contract, self.cases, self.coverage, as_of))
                if early
                else self._full
            )
            self._readings[as_of] = found
        return found

    def share(self, case: str, payer: str, as_of: date | None) -> Share:
        """The payer's share of the case's outcome weeks at `as_of` (None: nothing yet)."""
        if as_of is None:
            return NOTHING
        reading = self._reading(as_of)
        entry = reading.table.get(case)
        if entry is None:
            return NOTHING
        ends, borough, top_up = entry
        i = bisect_right(ends, as_of)
        pays_borough = payer == reading.borough[case]
        pays_top_up = payer == self.funder
        amount = (borough[i] if pays_borough else ZERO) + (top_up[i] if pays_top_up else ZERO)
        return Share(amount, i if pays_borough or pays_top_up else 0)

    def due(self, case: str, payer: str, after: date | None, upto: date) -> Share:
        """A claim line's due: the share at `upto` less the share at `after`."""
        return self.share(case, payer, upto) - self.share(case, payer, after)

    def weeks(self, case: str, after: date | None, upto: date) -> list[Week]:
        """The case's weeks (any status) ending in (after, upto], as read at `upto`."""
        reading = self._reading(upto)
        return [
            w
            for w in reading.result.weeks_of(case)
            if w.end <= upto and (after is None or w.end > after)
        ]


# --- reconciliation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineReconciliation:
    case: str
    after: date | None  # the previous line's period end: weeks ending after it are covered
    claimed: Decimal
    claimed_weeks: int
    due_then: Share
    due_now: Share
    paid: Decimal
    dispute: DisputeState | None
    because: tuple[int, ...]  # the events recorded after the claim that moved its weeks

    @property
    def disputed(self) -> Decimal:
        return self.claimed if self.dispute is not None and self.dispute.open else ZERO

    @property
    def difference(self) -> str | None:
        error = self.claimed != self.due_then.amount
        later = self.due_then.amount != self.due_now.amount
        if error and later:
            return "both"
        if error:
            return "claim_error"
        return "later_correction" if later else None

    @property
    def adjustment(self) -> Decimal:
        """Due now - paid: positive, the payer owes it; negative, it is owed back."""
        return self.due_now.amount - self.paid


@dataclass(frozen=True, slots=True)
class Reconciliation:
    contract: str
    claim: Claim
    recorded_on: datetime
    as_of: date
    payee: str | None  # the prime contractor, who is paid
    lines: tuple[LineReconciliation, ...]
    events: Mapping[int, EventRef] = field(default_factory=dict)  # every event in `because`

    def total(self, name: str) -> Decimal:
        return sum((_amount(getattr(line, name)) for line in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return self.claim.paid(self.as_of)

    @property
    def adjustment(self) -> Decimal:
        return self.total("due_now") - self.paid

    @property
    def owed_by_payer(self) -> Decimal:
        return sum((a for line in self.lines if (a := line.adjustment) > 0), ZERO)

    @property
    def owed_to_payer(self) -> Decimal:
        return sum((-a for line in self.lines if (a := line.adjustment) < 0), ZERO)


def _amount(value: Decimal | Share) -> Decimal:
    return value.amount if isinstance(value, Share) else value


def reconcile_claim(
    contract: str,
    claim: Claim,
    windows: Windows,
    then: Owed,
    now: Owed,
    as_of: date,
    recorded_on: datetime,
    payee: str | None = None,
) -> Reconciliation:
    """One claim, line by line, at `as_of` (payments and disputes by then).

    `then` and `now` read the facts known at the claim's recording and at `known_at`;
    `windows` are the payer's claim lines on the ledger. Lines name no events (`because`);
    the query fills them in for the lines whose due moved.
    """
    paid = claim.allocate(as_of)
    lines = []
    for line in claim.lines:
        after = windows.previous.get((claim.claim, line.case))
        lines.append(
            LineReconciliation(
                case=line.case,
                after=after,
                claimed=line.amount,
                claimed_weeks=line.weeks,
                due_then=then.due(line.case, claim.payer, after, claim.period_end),
                due_now=now.due(line.case, claim.payer, after, claim.period_end),
                paid=paid[line.case],
                dispute=claim.dispute(line.case, as_of),
                because=(),
            )
        )
    return Reconciliation(contract, claim, recorded_on, as_of, payee, tuple(lines))


def correcting_events(
    case: str,
    before: Sequence[Week],
    after: Sequence[Week],
    news: Sequence[EventRef],
    by_ref: Mapping[tuple[str, int], EventRef],
) -> tuple[int, ...]:
    """The events among `news` (recorded between two readings) that decided the weeks that
    differ between `before` and `after`: those the weeks name (care data only where it changed
    whether a week was verified), corrections and retractions of what they name, and changes
    to the case's lifecycle (which move every week)."""
    old = {(w.index, w.end): w for w in before}
    new = {(w.index, w.end): w for w in after}
    decided: set[int] = set()
    verification = False
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and (a.status, a.owed, a.capped) == (
            b.status,
            b.owed,
            b.capped,
        ):
            continue
        decided.update(a.because if a else (), b.because if b else ())
        verification |= "unverified" in (a.status if a else None, b.status if b else None)
    responsible = set()
    for e in news:
        target = by_ref.get((e.stream, e.target_version)) if e.target_version else None
        if e.position in decided:
            if verification or e.type != "CareDataReceived":
                responsible.add(e.position)
        elif target is not None and target.position in decided:
            responsible.add(e.position)
        elif e.case == case and (
            e.type in LIFECYCLE or (target is not None and target.type in LIFECYCLE)
        ):
            responsible.add(e.position)
    return tuple(sorted(responsible))


# --- statements of account ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimAccount:
    """One claim on a payer's statement."""

    claim: Claim
    due: Decimal  # due now: the sum of its lines' due at the statement's knowledge
    paid: Decimal
    disputed: Decimal  # claimed amount of its lines under open dispute

    @property
    def claimed(self) -> Decimal:
        return self.claim.claimed

    @property
    def adjustment(self) -> Decimal:
        return self.due - self.paid


@dataclass(frozen=True, slots=True)
class Statement:
    contract: str
    payer: str
    as_of: date
    claims: tuple[ClaimAccount, ...]
    unclaimed: tuple[tuple[str, Share], ...]  # (case, share not covered by any claim line)

    def total(self, name: str) -> Decimal:
        return sum((getattr(c, name) for c in self.claims), ZERO)

    @property
    def unclaimed_amount(self) -> Decimal:
        return sum((s.amount for _, s in self.unclaimed), ZERO)

    @property
    def due(self) -> Decimal:
        """Everything the payer owes at `as_of`: claimed periods and unclaimed weeks."""
        return self.total("due") + self.unclaimed_amount

    @property
    def balance(self) -> Decimal:
        """Adjustments + unclaimed = due - paid: positive, the payer owes it."""
        return self.total("adjustment") + self.unclaimed_amount


def statement_of(
    contract: str, payer: str, claims: Iterable[Claim], owed: Owed, as_of: date
) -> Statement:
    """A payer's account at `as_of` from the claims on the ledger and what it owes."""
    mine = [c for c in on_ledger(claims, as_of) if c.payer == payer]
    windows = Windows.of(mine, payer)
    accounts = []
    for claim in mine:
        due = sum(
            (
                owed.due(line.case, payer, windows.previous[(claim.claim, line.case)],
                         claim.period_end).amount
                for line in claim.lines
            ),
            ZERO,
        )
        disputed = sum(
            (
                line.amount
                for line in claim.lines
                if (d := claim.dispute(line.case, as_of)) is not None and d.open
            ),
            ZERO,
        )
        accounts.append(ClaimAccount(claim, due, claim.paid(as_of), disputed))
    unclaimed = []
    for case in sorted(owed.cases):
        left = owed.share(case, payer, as_of) - owed.share(case, payer, windows.last.get(case))
        if left != NOTHING:
            unclaimed.append((case, left))
    return Statement(contract, payer, as_of, tuple(accounts), tuple(unclaimed))


# --- queries --------------------------------------------------------------------------------


def claims_at(engine: Engine, contract: str, known_at: KnownAt = EVERYTHING) -> dict[str, Claim]:
    """The contract's claims with what is recorded about them by `known_at`."""
    facts = readmodel.facts_known_at(engine, contract, known_at, ("ContractAgreed", *CLAIM_TYPES))
    return claims_from_facts(facts, contract)


def _owed(engine: Engine, contract: str, known_at: KnownAt, horizon: date) -> Owed:
    k = knowledge(engine, contract, known_at)
    return Owed(k.contract, k.cases, k.coverage, horizon)


def reconcile(
    engine: Engine, contract: str, claim: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Reconciliation:
    """One claim at (as_of, known_at): due then, due now, paid, disputed, adjustments."""
    return reconcile_many(engine, contract, as_of, known_at, [claim])[0]


def reconcile_many(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    claims: Sequence[str] | None = None,
) -> list[Reconciliation]:
    """Several claims (default: every claim on the ledger at as_of), reading each state of
    knowledge once: the facts known now, and those known at each distinct recording instant."""
    held = claims_at(engine, contract, known_at)
    ledger = on_ledger(held.values(), as_of)
    wanted = [c.claim for c in ledger] if claims is None else list(claims)
    for name in wanted:
        if name not in held:
            when = "" if known_at.until is None else f" as known at {known_at.until.date()}"
            raise QueryError(f"no claim {name!r} in contract {contract!r}{when}")
        if held[name].submitted > as_of:
            raise QueryError(
                f"claim {name!r} was submitted on {held[name].submitted}, after {as_of}"
            )
    if not wanted:
        return []
    events = recorded_between(engine, contract, EVERYTHING, known_at)
    by_position = {e.position: e for e in events}
    by_ref = {(e.stream, e.version): e for e in events}
    recorded = [(datetime.fromisoformat(e.recorded_on), e) for e in events]
    targets = [held[name] for name in wanted]
    instants = {c.claim: datetime.fromisoformat(by_position[c.position].recorded_on)
                for c in targets}

    now = _owed(engine, contract, known_at, max(c.period_end for c in targets))
    then: dict[datetime, Owed] = {}
    for instant in sorted(set(instants.values())):
        horizon = max(c.period_end for c in targets if instants[c.claim] == instant)
        then[instant] = _owed(engine, contract, KnownAt(instant), horizon)
    windows = {payer: Windows.of(ledger, payer) for payer in {c.payer for c in targets}}
    payee = now.contract.agreed.prime_contractor if now.contract.agreed else None

    results = []
    for claim in targets:
        instant = instants[claim.claim]
        result = reconcile_claim(
            contract, claim, windows[claim.payer], then[instant], now, as_of, instant, payee
        )
        moved = [line for line in result.lines if line.due_then != line.due_now]
        if moved:
            news = [e for moment, e in recorded if moment > instant]
            because = {
                line.case: correcting_events(
                    line.case,
                    then[instant].weeks(line.case, line.after, claim.period_end),
                    now.weeks(line.case, line.after, claim.period_end),
                    news,
                    by_ref,
                )
                for line in moved
            }
            named = sorted({p for refs in because.values() for p in refs})
            result = replace(
                result,
                lines=tuple(
                    replace(line, because=because.get(line.case, ())) for line in result.lines
                ),
                events={p: by_position[p] for p in named},
            )
        results.append(result)
    return results


def statement(
    engine: Engine, contract: str, payer: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Statement:
    """A payer's statement of account at (as_of, known_at)."""
    return statements(engine, contract, as_of, known_at, [payer])[0]


def statements(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    payers: Sequence[str] | None = None,
) -> list[Statement]:
    """Statements of account at (as_of, known_at), reading the facts once (default: every
    payer: the boroughs, the top-up funder, and anyone a claim was made to)."""
    held = claims_at(engine, contract, known_at)
    k = knowledge(engine, contract, known_at)
    known = sorted({*k.contract.boroughs, *(c.borough for c in k.cases.values())})
    if k.contract.agreed is not None:
        known.append(k.contract.agreed.top_up_funder)
    known += sorted({c.payer for c in held.values()} - set(known))
    for payer in payers or ():
        if payer not in known:
            raise QueryError(
                f"no payer {payer!r} in contract {contract!r} (a borough or the top-up funder)"
            )
    ledger = on_ledger(held.values(), as_of)
    horizon = max([as_of] + [c.period_end for c in ledger])
    owed = Owed(k.contract, k.cases, k.coverage, horizon)
    return [statement_of(contract, payer, ledger, owed, as_of) for payer in payers or known]
