"""Rows as stored, read raw (no type conversion, no objects): what an answer is made of, read
to compare with what a remembered answer was made of (``service.api.answers``). A raw read
of a tenant's rows costs a fraction of making them into the repositories' objects, the
response models and JSON; the repositories stay the only readers that interpret them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

import sqlalchemy as sa

from service.state import Database

Rows = tuple[tuple[Any, ...], ...]


def exchange_rows(db: Database, park: str | None, tenant: str | None = None) -> Rows:
    """Every exchange (of ``park``; of ``tenant``'s: those it is registered a party to and
    those not registered yet) in id order: its supplier, receiver and id, then every
    column."""
    where: list[str] = []
    if park is not None:
        where.append("park = :park")
    if tenant is not None:
        where.append("(supplier IS NULL OR supplier = :tenant OR receiver = :tenant)")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    query = sa.text(f"SELECT supplier, receiver, id, * FROM exchanges{clause} ORDER BY id")
    with db.connect() as conn:
        return tuple(tuple(r) for r in conn.execute(query, {"park": park, "tenant": tenant}))


def savings_rows(
    db: Database,
    exchange_ids: Collection[str] | None,
    park: str | None,
    start: date | None,
    end: date | None,
) -> Rows:
    """The verified days of ``exchange_ids`` (every exchange's when None), of ``park``,
    from ``start`` to ``end`` (excluded), every column, in (exchange, day) order."""
    if exchange_ids is not None and not exchange_ids:
        return ()
    where: list[str] = []
    params: dict[str, Any] = {}
    if exchange_ids is not None:
        where.append("exchange_id IN :ids")
        params["ids"] = sorted(exchange_ids)
    if park is not None:
        where.append("park = :park")
        params["park"] = park
    if start is not None:
        where.append("day >= :start")
        params["start"] = start
    if end is not None:
        where.append("day < :end")
        params["end"] = end
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    query = sa.text(f"SELECT * FROM exchange_savings{clause} ORDER BY exchange_id, day")
    if exchange_ids is not None:
        query = query.bindparams(sa.bindparam("ids", expanding=True))
    if start is not None:
        query = query.bindparams(sa.bindparam("start", type_=sa.Date))
    if end is not None:
        query = query.bindparams(sa.bindparam("end", type_=sa.Date))
    with db.connect() as conn:
        return tuple(tuple(r) for r in conn.execute(query, params))


_ALERT_SHOWN = (
    "id, kind, subject, park, tenant, severity, status, summary, opened_ms, acknowledged_ms,"
    " acknowledged_by, resolved_ms, evaluated_ms"
)


def alert_rows(
    db: Database, statuses: Collection[str], park: str | None, tenant: str | None
) -> Rows:
    """The alerts in these states (of ``park``, of ``tenant``): the columns the API shows,
    in (opened, id) order."""
    where = ["status IN :statuses"]
    params: dict[str, Any] = {"statuses": sorted(statuses)}
    if park is not None:
        where.append("park = :park")
        params["park"] = park
    if tenant is not None:
        where.append("tenant = :tenant")
        params["tenant"] = tenant
    query = sa.text(
        f"SELECT {_ALERT_SHOWN} FROM alerts WHERE {' AND '.join(where)} ORDER BY opened_ms, id"
    ).bindparams(sa.bindparam("statuses", expanding=True))
    with db.connect() as conn:
        return tuple(tuple(r) for r in conn.execute(query, params))
