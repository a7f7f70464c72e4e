"""The facts an SSDA903 import reads, known now, from the read models: the ledger declares what
it needs (`ledger.ssda903.importing.FactsNow`) and the command hands it this one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from soc_ledger.domain.knowledge import EVERYTHING, Fact
from soc_ledger.projections import outcome_facts, queries, readmodel, seals

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from soc_ledger.ledger.service import Ledger


class ReadModelFacts:
    """`FactsNow` over the fact-versions read model and the latest-facts query."""

    def catch_up(self, ledger: Ledger) -> None:
        ledger.follow(readmodel.catch_up, readmodel.NAME)
        seals.check_followed(ledger, (readmodel.NAME,))

    def the_contract(self, engine: Engine, contract: str | None) -> str:
        return queries.the_contract(engine, contract)

    def referrals(self, engine: Engine, contract: str) -> list[Fact]:
        return readmodel.facts_known_at(engine, contract, EVERYTHING, types=("ReferralReceived",))

    def latest_facts(
        self, conn: Connection, contract: str, cases: Iterable[str] | None = None
    ) -> list[Fact]:
        return outcome_facts.latest_facts(conn, contract, cases)


FACTS_NOW = ReadModelFacts()
