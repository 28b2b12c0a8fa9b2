"""The detection results: runs, their surpluses, opportunities and plan, and the events
between runs, in the operational SQL database (``service/state``) beside the alerts they feed.

Each finding keeps its full record as JSON text (what the commands and the API show) beside
the columns the queries filter and sort on; a run's results, plan and events land in one
transaction. The tables come with the Alembic revision that added them (``parkflow db
upgrade``): this class assumes the database is at its code's revision.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from service.detect import Surplus
from service.events import Event, Snapshot
from service.match import Opportunity
from service.plan import Plan
from service.state import Database
from service.state import tables as t

_RUN = tuple(t.runs.c)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    started_ms: int
    finished_ms: int | None
    trigger: str
    window_days: int
    status: str
    error: str | None
    n_surpluses: int
    n_opportunities: int


class ResultsDb:
    """Runs, their surpluses and opportunities, and the events between runs.

    Given a ``Database`` it uses that engine and leaves closing it to its owner (the service
    shares one with the alerts); given a URL it opens its own and ``close`` disposes of it."""

    def __init__(self, db: Database | str) -> None:
        self._owned = isinstance(db, str)
        self.db = Database(db) if isinstance(db, str) else db

    def close(self) -> None:
        if self._owned:
            self.db.close()

    def start_run(self, started_ms: int, trigger: str, window_days: int) -> int:
        with self.db.transaction() as conn:
            result = conn.execute(
                t.runs.insert().values(
                    started_ms=started_ms,
                    trigger=trigger,
                    window_days=window_days,
                    status="running",
                    n_surpluses=0,
                    n_opportunities=0,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def fail_run(self, run_id: int, finished_ms: int, error: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(status="failed", finished_ms=finished_ms, error=error[:4000])
            )

    def finish_run(
        self,
        run_id: int,
        finished_ms: int,
        surpluses: Sequence[Surplus],
        opportunities: Sequence[Opportunity],
        events: Sequence[Event],
        plan: Plan,
    ) -> None:
        """Results, the plan and events of a run land together or not at all."""
        with self.db.transaction() as conn:
            if surpluses:
                conn.execute(
                    t.surpluses.insert(),
                    [
                        {
                            "run_id": run_id,
                            "id": s.id,
                            "park": s.park,
                            "tenant": s.tenant,
                            "size": s.p50_per_day,
                            "unit": s.unit,
                            "data": _json(s),
                        }
                        for s in surpluses
                    ],
                )
            if opportunities:
                conn.execute(
                    t.opportunities.insert(),
                    [
                        {
                            "run_id": run_id,
                            "id": o.id,
                            "park": o.park,
                            "rank": o.rank,
                            "from_tenant": o.from_tenant,
                            "to_tenant": o.to_tenant,
                            "size": o.matched_per_day,
                            "unit": o.demand_unit,
                            "data": _json(o),
                        }
                        for o in opportunities
                    ],
                )
            if events:
                conn.execute(
                    t.run_events.insert(),
                    [
                        {
                            "run_id": run_id,
                            "created_ms": finished_ms,
                            "kind": e.kind,
                            "subject_id": e.subject_id,
                            "park": e.park,
                            "tenants": json.dumps(list(e.tenants)),
                            "summary": e.summary,
                            "before": e.before,
                            "after": e.after,
                        }
                        for e in events
                    ],
                )
            conn.execute(
                t.plans.insert().values(
                    run_id=run_id,
                    park_vnd_per_year=int(plan.park_vnd_per_year),
                    co2e_avoided_t_per_year=plan.co2e_avoided_t_per_year,
                    water_saved_m3_per_year=plan.water_saved_m3_per_year,
                    landfill_diverted_t_per_year=plan.landfill_diverted_t_per_year,
                    capex_vnd=int(plan.capex_vnd),
                    status=plan.status,
                    n_links=len(plan.links),
                    data=_json(dataclasses.replace(plan, links=())),
                )
            )
            if plan.links:
                conn.execute(
                    t.plan_links.insert(),
                    [
                        {
                            "run_id": run_id,
                            "opportunity_id": pl.opportunity_id,
                            "park": pl.park,
                            "park_vnd_per_year": int(pl.park_vnd_per_year),
                            "data": _json(pl),
                        }
                        for pl in plan.links
                    ],
                )
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(
                    status="ok",
                    finished_ms=finished_ms,
                    n_surpluses=len(surpluses),
                    n_opportunities=len(opportunities),
                )
            )

    def latest_run(self) -> Run | None:
        query = (
            sa.select(*_RUN).where(t.runs.c.status == "ok").order_by(t.runs.c.id.desc()).limit(1)
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return Run(*row) if row else None

    def runs(self, limit: int = 20) -> list[Run]:
        query = sa.select(*_RUN).order_by(t.runs.c.id.desc()).limit(limit)
        with self.db.connect() as conn:
            return [Run(*r) for r in conn.execute(query)]

    def snapshots(self, run_id: int | None) -> tuple[dict[str, Snapshot], dict[str, Snapshot]]:
        if run_id is None:
            return {}, {}
        s, o = t.surpluses.c, t.opportunities.c
        with self.db.connect() as conn:
            sur = {
                sid: Snapshot(park, (tenant,), size, unit)
                for sid, park, tenant, size, unit in conn.execute(
                    sa.select(s.id, s.park, s.tenant, s.size, s.unit).where(s.run_id == run_id)
                )
            }
            opp = {
                oid: Snapshot(park, (a, b), size, unit)
                for oid, park, a, b, size, unit in conn.execute(
                    sa.select(o.id, o.park, o.from_tenant, o.to_tenant, o.size, o.unit).where(
                        o.run_id == run_id
                    )
                )
            }
        return sur, opp

    def surpluses(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        c = t.surpluses.c
        query = sa.select(c.data).where(c.run_id == run_id)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        return self._records(query.order_by(c.size.desc(), c.id))

    def opportunities(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        c = t.opportunities.c
        query = sa.select(c.data).where(c.run_id == run_id)
        if tenant is not None:
            query = query.where(sa.or_(c.from_tenant == tenant, c.to_tenant == tenant))
        return self._records(query.order_by(c.rank, c.id))

    def _records(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return [json.loads(data) for data in conn.execute(query).scalars()]

    def plan(self, run_id: int) -> dict[str, Any] | None:
        """The plan's totals of a run (None for a run saved before plans were), without links."""
        query = sa.select(t.plans.c.data, t.plans.c.n_links).where(t.plans.c.run_id == run_id)
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        totals: dict[str, Any] = json.loads(row[0])
        del totals["links"]
        totals["n_links"] = row[1]
        return totals

    def plan_links(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        """The plan's links, best first, each with its opportunity's tenants, rule and units."""
        p, o = t.plan_links.c, t.opportunities.c
        query = (
            sa.select(p.data, o.from_tenant, o.to_tenant, o.data)
            .join_from(
                t.plan_links,
                t.opportunities,
                sa.and_(o.run_id == p.run_id, o.id == p.opportunity_id),
            )
            .where(p.run_id == run_id)
        )
        if tenant is not None:
            query = query.where(sa.or_(o.from_tenant == tenant, o.to_tenant == tenant))
        query = query.order_by(p.park_vnd_per_year.desc(), p.opportunity_id)
        out = []
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        for data, a, b, opp in rows:
            item = json.loads(data)
            found = json.loads(opp)
            item.update(
                from_tenant=a,
                to_tenant=b,
                rule=found["rule"],
                rank=found["rank"],
                supply_unit=found["supply_unit"],
                demand_unit=found["demand_unit"],
            )
            out.append(item)
        return out

    def events(self, since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        e = t.run_events.c
        query = (
            sa.select(
                e.id,
                e.run_id,
                e.created_ms,
                e.kind,
                e.subject_id,
                e.park,
                e.tenants,
                e.summary,
                e.before,
                e.after,
            )
            .where(e.id > since_id)
            .order_by(e.id)
            .limit(limit)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for row in rows:
            item = dict(row)
            item["tenants"] = json.loads(item["tenants"])
            out.append(item)
        return out


def _json(obj: Any) -> str:
    """A result as strict JSON: NaN and infinities become null. orjson serialises the frozen
    dataclasses directly (``dataclasses.asdict`` deep-copied every opportunity first and was
    a third of a 5k-meter run)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _default(o: Any) -> Any:
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if hasattr(o, "value") and isinstance(o.value, str):  # enums
        return o.value
    raise TypeError(f"cannot store {type(o).__name__}")
