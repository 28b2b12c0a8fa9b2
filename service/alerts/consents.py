"""Consent to be introduced, per opportunity and party, in the operational database.

The operator records each party's consent (who recorded it, when, a note); alerts name the
counterpart only while both parties' consents stand. Withdrawing keeps the row, with who
withdrew it and when, so the history of what was allowed when is never lost; giving consent
again after a withdrawal starts a new consent (the row is replaced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parkflow.errors import InputError
from parkflow.timeunits import now_ms as wall_ms
from service.state import Database
from service.state.tables import consents


@dataclass(frozen=True, slots=True)
class Consent:
    opportunity_id: str
    tenant: str
    park: str
    given_ms: int
    given_by: str
    withdrawn_ms: int | None = None
    withdrawn_by: str | None = None
    note: str | None = None

    @property
    def standing(self) -> bool:
        return self.withdrawn_ms is None


def introduced(conn: Connection, opportunity_id: str, parties: tuple[str, str]) -> bool:
    """Whether both parties' consents to be introduced for this opportunity stand: read in
    the caller's transaction, so an alert is rendered against the consents of its moment."""
    return opportunity_id in introduced_among(conn, {opportunity_id: parties})


class ConsentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def give(
        self,
        park: str,
        opportunity_id: str,
        tenant: str,
        by: str,
        note: str | None = None,
        now_ms: int | None = None,
    ) -> Consent:
        if not by.strip():
            raise InputError("a consent says who recorded it")
        at = wall_ms() if now_ms is None else now_ms
        consent = Consent(opportunity_id, tenant, park, at, by, note=note)

        def work(conn: Connection) -> Consent:
            key = (consents.c.opportunity_id == opportunity_id) & (consents.c.tenant == tenant)
            conn.execute(consents.delete().where(key))
            conn.execute(consents.insert().values(**_row(consent)))
            return consent

        return self.db.retrying(work)

    def withdraw(
        self, opportunity_id: str, tenant: str, by: str, now_ms: int | None = None
    ) -> Consent:
        if not by.strip():
            raise InputError("a withdrawal says who recorded it")
        at = wall_ms() if now_ms is None else now_ms

        def work(conn: Connection) -> Consent:
            key = (consents.c.opportunity_id == opportunity_id) & (consents.c.tenant == tenant)
            row = conn.execute(sa.select(consents).where(key).with_for_update()).mappings().first()
            if row is None or row["withdrawn_ms"] is not None:
                raise InputError(
                    f"no standing consent of {tenant} for opportunity {opportunity_id}"
                )
            conn.execute(consents.update().where(key).values(withdrawn_ms=at, withdrawn_by=by))
            return Consent(**{**dict(row), "withdrawn_ms": at, "withdrawn_by": by})

        return self.db.retrying(work)

    def of(self, opportunity_id: str | None = None) -> list[Consent]:
        query = sa.select(consents).order_by(consents.c.opportunity_id, consents.c.tenant)
        if opportunity_id is not None:
            query = query.where(consents.c.opportunity_id == opportunity_id)
        with self.db.connect() as conn:
            return [Consent(**dict(r)) for r in conn.execute(query).mappings()]

    def introduced(self, opportunity_id: str, parties: tuple[str, str]) -> bool:
        with self.db.connect() as conn:
            return introduced(conn, opportunity_id, parties)

    def introduced_among(self, parties: Mapping[str, tuple[str, str]]) -> set[str]:
        """Of these opportunities (id -> its two parties), those whose parties' consents both
        stand: one query for a page of them."""
        with self.db.connect() as conn:
            return introduced_among(conn, parties)


def introduced_among(conn: Connection, parties: Mapping[str, tuple[str, str]]) -> set[str]:
    """``introduced`` for many opportunities (id -> its two parties) in the caller's
    transaction, a query per 400 of them rather than one each."""
    standing: dict[str, set[str]] = {}
    ids = sorted(parties)
    for i in range(0, len(ids), 400):
        rows = conn.execute(
            sa.select(consents.c.opportunity_id, consents.c.tenant).where(
                consents.c.opportunity_id.in_(ids[i : i + 400]),
                consents.c.withdrawn_ms.is_(None),
            )
        )
        for oid, tenant in rows:
            standing.setdefault(oid, set()).add(tenant)
    return {oid for oid, pair in parties.items() if set(pair) <= standing.get(oid, set())}


def _row(c: Consent) -> dict[str, Any]:
    return {
        "opportunity_id": c.opportunity_id,
        "tenant": c.tenant,
        "park": c.park,
        "given_ms": c.given_ms,
        "given_by": c.given_by,
        "withdrawn_ms": c.withdrawn_ms,
        "withdrawn_by": c.withdrawn_by,
        "note": c.note,
    }
