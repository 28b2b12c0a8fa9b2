"""Exchanges in the operational database: the pipeline with its moves, what is registered,
dated prices and yearly factors, and the verified days of realised savings (read by the API).

A move reads its row ``FOR UPDATE`` (PostgreSQL; SQLite takes the file's write lock at BEGIN)
and applies the pure rules of ``pipeline.py``, so two operators moving the same exchange take
turns and the second sees the first's stage. Savings rows are keyed by (exchange, day) and
replaced whole: recomputing a day, however often, leaves one row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from parkflow.errors import InputError
from parkflow.timeunits import now_ms as wall_ms
from service.exchanges.columns import DAY_FIELDS, SavingsColumns, from_lists
from service.exchanges.model import (
    Benefit,
    Exchange,
    Factor,
    Item,
    Metering,
    Method,
    Price,
    Side,
    check_new_price,
)
from service.exchanges.pipeline import (
    Barrier,
    Move,
    Pipeline,
    Projection,
    Stage,
    move,
    start,
    update_projection,
)
from service.exchanges.savings import DaySavings
from service.state import Database
from service.state.tables import (
    exchange_factors,
    exchange_moves,
    exchange_prices,
    exchange_savings,
    exchanges,
)

_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Registration:
    """What the parties agreed to meter: everything of an ``Exchange`` but prices and factors."""

    supplier: str
    receiver: str
    resource: str
    unit: str
    benefit: Benefit
    from_meter: str
    to_meter: str
    metering: Metering
    start: date
    end: date | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    park: str
    pipeline: Pipeline
    opportunity_id: str | None
    registration: Registration | None
    created_ms: int


class ExchangeRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the pipeline -----------------------------------------------------------------------

    def create(
        self,
        exchange_id: str,
        park: str,
        owner: str,
        by: str,
        *,
        opportunity_id: str | None = None,
        projection: Projection | None = None,
        legal_status: str = "unknown",
        barrier: Barrier | None = None,
        notes: str = "",
        now_ms: int | None = None,
    ) -> Entry:
        at = wall_ms() if now_ms is None else now_ms
        if not exchange_id.strip() or not park.strip():
            raise InputError("an exchange has an id and a park")
        pipe, first = start(
            owner,
            by,
            at,
            projection=projection,
            legal_status=legal_status,
            barrier=barrier,
            notes=notes,
        )

        def work(conn: Connection) -> None:
            found = conn.execute(
                sa.select(exchanges.c.id).where(exchanges.c.id == exchange_id)
            ).first()
            if found is not None:
                raise InputError(f"an exchange {exchange_id} already exists")
            conn.execute(
                exchanges.insert().values(
                    id=exchange_id,
                    park=park,
                    opportunity_id=opportunity_id,
                    created_ms=at,
                    **_pipeline_row(pipe),
                )
            )
            _record(conn, exchange_id, first)

        with self.db.transaction() as conn:
            work(conn)
        return self.get(exchange_id)

    def move(
        self,
        exchange_id: str,
        to: Stage,
        by: str,
        note: str = "",
        now_ms: int | None = None,
    ) -> Entry:
        at = wall_ms() if now_ms is None else now_ms

        def work(conn: Connection) -> None:
            row = _locked(conn, exchange_id)
            entry = _entry(row)
            nxt, step = move(
                entry.pipeline,
                to,
                by,
                at,
                note=note,
                has_parties=entry.registration is not None,
            )
            conn.execute(
                exchanges.update().where(exchanges.c.id == exchange_id).values(**_pipeline_row(nxt))
            )
            _record(conn, exchange_id, step)

        self.db.retrying(work)
        return self.get(exchange_id)

    def update(
        self,
        exchange_id: str,
        *,
        owner: str | None = None,
        barrier: Barrier | None = None,
        clear_barrier: bool = False,
        legal_status: str | None = None,
        notes: str | None = None,
        projection: Projection | None = None,
    ) -> Entry:
        """Fields an operator keeps current; a projection is taken only until agreement."""

        def work(conn: Connection) -> None:
            pipe = _entry(_locked(conn, exchange_id)).pipeline
            if projection is not None:
                pipe = update_projection(pipe, projection)
            changes: dict[str, Any] = {}
            if owner is not None:
                if not owner.strip():
                    raise InputError("an exchange has an owner")
                changes["owner"] = owner
            if barrier is not None or clear_barrier:
                changes["barrier"] = barrier
            if legal_status is not None:
                changes["legal_status"] = legal_status
            if notes is not None:
                changes["notes"] = notes
            pipe = dataclasses.replace(pipe, **changes)
            conn.execute(
                exchanges.update()
                .where(exchanges.c.id == exchange_id)
                .values(**_pipeline_row(pipe))
            )

        self.db.retrying(work)
        return self.get(exchange_id)

    def register(self, exchange_id: str, registration: Registration) -> Entry:
        """The parties, resource and metering; refused once the exchange operates (its
        verified days were measured by what was registered)."""
        r = registration
        if r.supplier == r.receiver:
            raise InputError("an exchange is between two tenants: supplier and receiver differ")
        if r.end is not None and r.end < r.start:
            raise InputError("an exchange ends on or after its start")

        def work(conn: Connection) -> None:
            entry = _entry(_locked(conn, exchange_id))
            running = entry.pipeline.stage in (Stage.OPERATING, Stage.VERIFIED, Stage.ENDED)
            old = entry.registration
            if running and old is not None and dataclasses.replace(old, end=r.end) != r:
                raise InputError(
                    f"exchange {exchange_id} is {entry.pipeline.stage}: only its end date"
                    " may change; register a new exchange for a new arrangement"
                )
            conn.execute(
                exchanges.update()
                .where(exchanges.c.id == exchange_id)
                .values(
                    supplier=r.supplier,
                    receiver=r.receiver,
                    resource=r.resource,
                    unit=r.unit,
                    benefit=r.benefit.value,
                    from_meter=r.from_meter,
                    to_meter=r.to_meter,
                    metering=_metering_json(r.metering),
                    start_day=r.start,
                    end_day=r.end,
                )
            )

        self.db.retrying(work)
        return self.get(exchange_id)

    def add_price(self, exchange_id: str, price: Price, by: str, now_ms: int | None = None) -> None:
        at = wall_ms() if now_ms is None else now_ms
        if not by.strip():
            raise InputError("a price says who entered it")

        def work(conn: Connection) -> None:
            _locked(conn, exchange_id)
            check_new_price(_prices(conn, exchange_id), price)
            conn.execute(
                exchange_prices.insert().values(
                    exchange_id=exchange_id,
                    item=price.item.value,
                    effective=price.effective,
                    vnd_per_unit=str(price.vnd_per_unit),
                    paid_by=price.paid_by.value if price.paid_by else None,
                    hours=list(price.hours),
                    source=price.source,
                    created_ms=at,
                    created_by=by,
                )
            )

        self.db.retrying(work)

    def add_factor(self, exchange_id: str, factor: Factor) -> None:
        """A year's factor, once: a published factor is not revised under verified days."""

        def work(conn: Connection) -> None:
            _locked(conn, exchange_id)
            taken = conn.execute(
                sa.select(exchange_factors.c.year).where(
                    exchange_factors.c.exchange_id == exchange_id,
                    exchange_factors.c.year == factor.year,
                )
            ).first()
            if taken is not None:
                raise InputError(f"exchange {exchange_id} has a factor for {factor.year}")
            conn.execute(
                exchange_factors.insert().values(
                    exchange_id=exchange_id,
                    year=factor.year,
                    t_per_unit=str(factor.t_per_unit),
                    source=factor.source,
                )
            )

        self.db.retrying(work)

    # -- reads ------------------------------------------------------------------------------

    def get(self, exchange_id: str) -> Entry:
        with self.db.connect() as conn:
            row = (
                conn.execute(sa.select(exchanges).where(exchanges.c.id == exchange_id))
                .mappings()
                .first()
            )
        if row is None:
            raise InputError(f"no exchange {exchange_id}")
        return _entry(row)

    def entries(
        self, park: str | None = None, stages: Iterable[Stage] | None = None
    ) -> list[Entry]:
        query = sa.select(exchanges).order_by(exchanges.c.park, exchanges.c.id)
        if park is not None:
            query = query.where(exchanges.c.park == park)
        if stages is not None:
            query = query.where(exchanges.c.stage.in_([s.value for s in stages]))
        with self.db.connect() as conn:
            return [_entry(r) for r in conn.execute(query).mappings()]

    def moves(self, exchange_id: str) -> list[Move]:
        with self.db.connect() as conn:
            rows = conn.execute(
                sa.select(exchange_moves)
                .where(exchange_moves.c.exchange_id == exchange_id)
                .order_by(exchange_moves.c.id)
            ).mappings()
            return [
                Move(
                    r["at_ms"],
                    r["actor"],
                    Stage(r["from_stage"]) if r["from_stage"] else None,
                    Stage(r["to_stage"]),
                    r["note"],
                )
                for r in rows
            ]

    def exchange(self, exchange_id: str) -> Exchange:
        """The registered exchange with its prices and factors (``InputError`` if it has no
        registration yet)."""
        entry = self.get(exchange_id)
        with self.db.connect() as conn:
            return _exchange(entry, _prices(conn, exchange_id), _factors(conn, exchange_id))

    def metered(self, park: str | None = None) -> list[Exchange]:
        """Registered exchanges whose flow runs (operating, verified, or ended: an ended one's
        past days stay verifiable)."""
        running = (Stage.OPERATING, Stage.VERIFIED, Stage.ENDED)
        entries = [e for e in self.entries(park, running) if e.registration is not None]
        ids = [e.id for e in entries]
        prices: dict[str, list[Price]] = {}
        factors: dict[str, list[Factor]] = {}
        with self.db.connect() as conn:  # two queries for them all, not two per exchange
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                for xid, price in _prices_of(conn, chunk):
                    prices.setdefault(xid, []).append(price)
                for xid, factor in _factors_of(conn, chunk):
                    factors.setdefault(xid, []).append(factor)
        return [_exchange(e, prices.get(e.id, []), factors.get(e.id, [])) for e in entries]

    # -- savings ----------------------------------------------------------------------------

    def write_savings(self, rows: Sequence[DaySavings], now_ms: int | None = None) -> None:
        at = wall_ms() if now_ms is None else now_ms
        if not rows:
            return
        # the rows replaced, deleted by exchange (a long recomputation: few exchanges, many
        # days each) or by day (an hour's update: one day, many exchanges), whichever takes
        # fewer statements
        by_exchange: dict[str, set[date]] = {}
        by_day: dict[date, set[str]] = {}
        for r in rows:
            by_exchange.setdefault(r.exchange, set()).add(r.day)
            by_day.setdefault(r.day, set()).add(r.exchange)
        c = exchange_savings.c
        groups: list[tuple[Any, Any, list[Any]]]
        if len(by_exchange) <= len(by_day):
            groups = [(c.exchange_id == x, c.day, sorted(ds)) for x, ds in by_exchange.items()]
        else:
            groups = [(c.day == d, c.exchange_id, sorted(xs)) for d, xs in by_day.items()]

        def work(conn: Connection) -> None:
            for same, column, values in groups:
                for i in range(0, len(values), _CHUNK):
                    conn.execute(
                        exchange_savings.delete().where(same, column.in_(values[i : i + _CHUNK]))
                    )
            conn.execute(exchange_savings.insert(), [_savings_row(r, at) for r in rows])

        self.db.retrying(work)

    def savings(
        self,
        *,
        exchange_id: str | None = None,
        park: str | None = None,
        start: date | None = None,
        end: date | None = None,
        exchange_ids: Collection[str] | None = None,
    ) -> list[DaySavings]:
        """Verified days, by exchange and day; ``end`` exclusive; of ``exchange_ids`` only
        when given (a tenant's exchanges)."""
        return self.savings_columns(
            exchange_id=exchange_id, park=park, start=start, end=end, exchange_ids=exchange_ids
        ).rows()

    def savings_columns(
        self,
        *,
        exchange_id: str | None = None,
        park: str | None = None,
        start: date | None = None,
        end: date | None = None,
        exchange_ids: Collection[str] | None = None,
    ) -> SavingsColumns:
        """``savings`` as columns: one SELECT of the fields, no row object per day. The day
        and the flag are read as the driver gives them (SQLite: ISO text and 0/1, PostgreSQL:
        a date and a bool), without SQLAlchemy's conversion per row; numpy converts each
        column at once."""
        c = exchange_savings.c
        raw: dict[str, sa.types.TypeEngine[Any]] = {"day": sa.String(), "disagrees": sa.Integer()}
        selected = [
            sa.type_coerce(c[_COLUMN.get(f, f)], raw[f]) if f in raw else c[_COLUMN.get(f, f)]
            for f in DAY_FIELDS
        ]
        query = sa.select(*selected).order_by(c.exchange_id, c.day)
        if exchange_id is not None:
            query = query.where(c.exchange_id == exchange_id)
        if exchange_ids is not None:
            query = query.where(c.exchange_id.in_(sorted(exchange_ids)))
        if park is not None:
            query = query.where(c.park == park)
        if start is not None:
            query = query.where(c.day >= start)
        if end is not None:
            query = query.where(c.day < end)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in DAY_FIELDS]
        return from_lists(dict(zip(DAY_FIELDS, values, strict=True)))


def _locked(conn: Connection, exchange_id: str) -> RowMapping:
    row = (
        conn.execute(sa.select(exchanges).where(exchanges.c.id == exchange_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise InputError(f"no exchange {exchange_id}")
    return row


def _record(conn: Connection, exchange_id: str, step: Move) -> None:
    conn.execute(
        exchange_moves.insert().values(
            exchange_id=exchange_id,
            at_ms=step.at_ms,
            actor=step.by,
            from_stage=step.from_stage.value if step.from_stage else None,
            to_stage=step.to_stage.value,
            note=step.note,
        )
    )


def _pipeline_row(p: Pipeline) -> dict[str, Any]:
    return {
        "stage": p.stage.value,
        "stage_ms": p.stage_ms,
        "owner": p.owner,
        "barrier": p.barrier.value if p.barrier else None,
        "legal_status": p.legal_status,
        "notes": p.notes,
        "reason": p.reason,
        "projection": dataclasses.asdict(p.projection) if p.projection else None,
        "frozen": p.frozen,
    }


def _metering_json(m: Metering) -> dict[str, Any]:
    return {
        "method": m.method.value,
        "meter": m.meter,
        "share": None if m.share is None else str(m.share),
        "baseline_per_hour": m.baseline_per_hour,
        "check_meter": m.check_meter,
        "check_side": m.check_side.value,
        "tolerance": m.tolerance,
    }


def _metering(data: dict[str, Any]) -> Metering:
    return Metering(
        method=Method(data["method"]),
        meter=data["meter"],
        share=None if data["share"] is None else Decimal(data["share"]),
        baseline_per_hour=data["baseline_per_hour"],
        check_meter=data["check_meter"],
        check_side=Side(data["check_side"]),
        tolerance=data["tolerance"],
    )


def _entry(row: RowMapping) -> Entry:
    proj = row["projection"]
    pipe = Pipeline(
        stage=Stage(row["stage"]),
        owner=row["owner"],
        barrier=Barrier(row["barrier"]) if row["barrier"] else None,
        legal_status=row["legal_status"],
        notes=row["notes"],
        reason=row["reason"],
        projection=Projection(**proj) if proj else None,
        frozen=bool(row["frozen"]),
        stage_ms=row["stage_ms"],
    )
    registration = None
    if row["metering"] is not None:
        registration = Registration(
            supplier=row["supplier"],
            receiver=row["receiver"],
            resource=row["resource"],
            unit=row["unit"],
            benefit=Benefit(row["benefit"]),
            from_meter=row["from_meter"],
            to_meter=row["to_meter"],
            metering=_metering(row["metering"]),
            start=row["start_day"],
            end=row["end_day"],
        )
    return Entry(
        row["id"], row["park"], pipe, row["opportunity_id"], registration, row["created_ms"]
    )


def _prices(conn: Connection, exchange_id: str) -> list[Price]:
    return [p for _, p in _prices_of(conn, [exchange_id])]


def _prices_of(conn: Connection, exchange_ids: Sequence[str]) -> list[tuple[str, Price]]:
    """The exchanges' prices, each exchange's in the order they were entered."""
    rows = conn.execute(
        sa.select(exchange_prices)
        .where(exchange_prices.c.exchange_id.in_(exchange_ids))
        .order_by(exchange_prices.c.id)
    ).mappings()
    return [
        (
            r["exchange_id"],
            Price(
                Item(r["item"]),
                r["effective"],
                Decimal(r["vnd_per_unit"]),
                Side(r["paid_by"]) if r["paid_by"] else None,
                tuple(r["hours"]),
                r["source"],
            ),
        )
        for r in rows
    ]


def _factors(conn: Connection, exchange_id: str) -> list[Factor]:
    return [f for _, f in _factors_of(conn, [exchange_id])]


def _factors_of(conn: Connection, exchange_ids: Sequence[str]) -> list[tuple[str, Factor]]:
    rows = conn.execute(
        sa.select(exchange_factors)
        .where(exchange_factors.c.exchange_id.in_(exchange_ids))
        .order_by(exchange_factors.c.exchange_id, exchange_factors.c.year)
    ).mappings()
    return [
        (r["exchange_id"], Factor(r["year"], Decimal(r["t_per_unit"]), r["source"])) for r in rows
    ]


def _exchange(entry: Entry, prices: Sequence[Price], factors: Sequence[Factor]) -> Exchange:
    r = entry.registration
    if r is None:
        raise InputError(f"exchange {entry.id} is not registered yet (parties, metering)")
    return Exchange(
        id=entry.id,
        park=entry.park,
        supplier=r.supplier,
        receiver=r.receiver,
        resource=r.resource,
        unit=r.unit,
        benefit=r.benefit,
        metering=r.metering,
        start=r.start,
        end=r.end,
        from_meter=r.from_meter,
        to_meter=r.to_meter,
        opportunity_id=entry.opportunity_id,
        pipeline=entry.pipeline,
        prices=tuple(prices),
        factors=tuple(factors),
    )


_COLUMN = {"exchange": "exchange_id"}  # a DaySavings field's column, where the name differs
_COLUMNS = [(f, _COLUMN.get(f, f)) for f in DAY_FIELDS]


def _savings_row(r: DaySavings, at: int) -> dict[str, Any]:
    # the fields read one by one: ``dataclasses.asdict`` deep-copies, a tenth of a year's write
    row = {column: getattr(r, f) for f, column in _COLUMNS}
    row["computed_ms"] = at
    return row
