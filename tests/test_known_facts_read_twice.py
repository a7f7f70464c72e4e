"""`known_facts_read_twice` (domain/knowledge.py), which `verify` folds each contract with
without holding its stream, reads exactly as `known_facts` over the whole history: on random
streams of costs, corrections of them, corrections of those corrections, and retractions of
either, the same facts in the same order with the same readings and the same `because`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from soc_ledger.domain.events import EVENT_ADAPTER
from soc_ledger.domain.knowledge import Recorded, known_facts, known_facts_read_twice

STREAM = '["plcip"]'
START = datetime(2020, 1, 1, tzinfo=UTC)

# Each step adds one event to the stream: a cost of some pence, or a corrector acting on the
# event `target` steps back (a cost, or an earlier corrector) of the given kind.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("cost"), st.integers(1, 99_999)),
        st.tuples(st.just("correct"), st.integers(1, 30), st.integers(1, 99_999)),
        st.tuples(st.just("retract"), st.integers(1, 30)),
    ),
    min_size=1,
    max_size=30,
)


def _history(drawn: list[tuple]) -> list[Recorded]:
    history: list[Recorded] = []
    for step in drawn:
        version = len(history) + 1
        fields: dict = {"contract": "plcip", "effective": "2020-01-01", "key": f"k{version}"}
        target = None
        if step[0] == "cost":
            fields |= {"type": "CostIncurred", "category": "delivery", "amount": f"{step[1]}.00"}
        else:
            # A corrector acts on a cost or a correction (the ledger corrects no retraction).
            actable = [r for r in history if r.event.type != "EventRetracted"]
            if not actable:
                continue
            target = actable[-min(step[1], len(actable))]
            fields |= {"type": f"Event{'Corrected' if step[0] == 'correct' else 'Retracted'}"}
            fields |= {"target": target.event.key, "reason": "restated"}
            if step[0] == "correct":
                # A cost's amount, or a correction's own changes, read anew.
                changed = {"amount": f"{step[2]}.00"}
                is_cost = target.event.type == "CostIncurred"
                fields["changes"] = changed if is_cost else {"changes": changed}
        when = START + timedelta(days=version)
        history.append(
            Recorded(
                position=version,
                stream=STREAM,
                version=version,
                recorded_on=when,
                appended_at=when,
                event=EVENT_ADAPTER.validate_python(fields),
                target_version=None if target is None else target.version,
            )
        )
    return history


@given(steps)
def test_reading_twice_gives_the_facts_of_the_whole_history(drawn):
    history = _history(drawn)
    reads = []

    def read():
        reads.append(1)
        return iter(history)

    assert list(known_facts_read_twice(read)) == known_facts(history)
    assert len(reads) == 2


def test_a_correction_of_a_correction_and_a_retracted_one_read_alike():
    # Worked by hand: cost 1 (100), its correction 2 (to 200), 2 corrected by 3 (to 300);
    # cost 4 (400) corrected by 5 (to 500), 5 retracted by 6: cost 4 reads 400 again.
    history = _history(
        [("cost", 100), ("correct", 1, 200), ("correct", 1, 300), ("cost", 400),
         ("correct", 1, 500), ("retract", 1)]
    )  # fmt: skip
    facts = list(known_facts_read_twice(lambda: iter(history)))
    assert [(f.recorded.version, str(f.event.amount)) for f in facts] == [
        (1, "300.00"),
        (4, "400.00"),
    ]
    assert [tuple(r.version for r in f.because) for f in facts] == [(1, 2), (4,)]
    assert facts == known_facts(history)
