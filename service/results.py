"""The detection results: runs, their surpluses, opportunities and plan, and the events
between runs, in the operational SQL database (``service/state``) beside the alerts they feed.

Each finding keeps its full record as JSON text (what the commands and the API show) beside
the columns the queries filter and sort on; a run's results, plan and events land in one
transaction. The tables come with the Alembic revision that added them (``parkflow db
upgrade``): this class assumes the database is at its code's revision.

A run covers every park of the registry (one replica, ``parkflow detect``) or one park (a
replica that holds the park's lease, ``service/leases.py``). What a reader is shown is a
view: each park's latest successful run. A run id handed to the readers below names the view
as of that run, each park's latest successful run up to it, so ``latest_run()``'s id shows
every park as last detected whichever replica detected it; with runs over every park that is
exactly the run itself, as before replicas. Ids are given as runs start: a park's run that
finishes after another park's later-started one joins the view of that later id when it
lands, so a reader keeping answers by the latest run's id sees it with the next run.
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
from service.state import Database, Fence
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
    park: str | None = None  # the one park it covers; None: every park
    replica: str | None = None  # the leased replica that ran it


@dataclass(frozen=True, slots=True)
class View:
    """The runs a reader's view is made of: the latest run over every park (``whole``), and
    the newer runs of single parks that stand in for it on their park (``scoped``)."""

    whole: int | None
    scoped: dict[str, int]

    def where(self, run_id: sa.ColumnElement[Any], park: sa.ColumnElement[Any]) -> Any:
        """The rows of a results table (its run id and park columns) in this view."""
        parts: list[Any] = []
        if self.whole is not None:
            parts.append(
                run_id == self.whole
                if not self.scoped
                else sa.and_(run_id == self.whole, park.not_in(list(self.scoped)))
            )
        if self.scoped:
            parts.append(run_id.in_(list(self.scoped.values())))
        return sa.or_(*parts) if parts else sa.false()


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

    def start_run(
        self,
        started_ms: int,
        trigger: str,
        window_days: int,
        park: str | None = None,
        replica: str | None = None,
    ) -> int:
        with self.db.transaction() as conn:
            result = conn.execute(
                t.runs.insert().values(
                    started_ms=started_ms,
                    trigger=trigger,
                    window_days=window_days,
                    park=park,
                    replica=replica,
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
        fence: Fence | None = None,
    ) -> None:
        """Results, the plan and events of a run land together or not at all; ``fence``, run
        first in the same transaction, may refuse them (a replica whose lease was lost)."""
        with self.db.transaction() as conn:
            if fence is not None:
                fence(conn)
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

    def latest_run(self, park: str | None = None) -> Run | None:
        """The latest successful run (its id: the view of every park as last detected); of
        ``park``: the latest that covered it (its own or one over every park)."""
        c = t.runs.c
        query = sa.select(*_RUN).where(c.status == "ok")
        if park is not None:
            query = query.where(sa.or_(c.park == park, c.park.is_(None)))
        with self.db.connect() as conn:
            row = conn.execute(query.order_by(c.id.desc()).limit(1)).first()
        return Run(*row) if row else None

    def view_key(self, run: Run) -> tuple[object, ...]:
        """What names the view as of ``run`` for an answer kept in memory. A run over every
        park names it by its id; a park's own run does not: another park's run, started
        before it and finished after, joins the view under the same latest id."""
        if run.park is None:
            return (run.id,)
        v = self.view(run.id)
        return (run.id, v.whole, tuple(sorted(v.scoped.items())))

    def view(self, run_id: int) -> View:
        """The view as of ``run_id``: the latest run over every park up to it, and each park's
        later runs of its own up to it (two small reads of ``runs``, on its index)."""
        c = t.runs.c
        ok = sa.and_(c.status == "ok", c.id <= run_id)
        with self.db.connect() as conn:
            whole = conn.execute(sa.select(sa.func.max(c.id)).where(ok, c.park.is_(None))).scalar()
            newer = (
                c.park.is_not(None) if whole is None else sa.and_(c.park.is_not(None), c.id > whole)
            )
            scoped = {
                park: int(rid)
                for park, rid in conn.execute(
                    sa.select(c.park, sa.func.max(c.id)).where(ok, newer).group_by(c.park)
                )
            }
        return View(int(whole) if whole is not None else None, scoped)

    def runs(self, limit: int = 20) -> list[Run]:
        query = sa.select(*_RUN).order_by(t.runs.c.id.desc()).limit(limit)
        with self.db.connect() as conn:
            return [Run(*r) for r in conn.execute(query)]

    def snapshots(
        self, run_id: int | None, park: str | None = None
    ) -> tuple[dict[str, Snapshot], dict[str, Snapshot]]:
        """The view as of ``run_id`` (of ``park`` only, when given) as the events diff it."""
        if run_id is None:
            return {}, {}
        view = self.view(run_id)
        s, o = t.surpluses.c, t.opportunities.c
        in_s, in_o = view.where(s.run_id, s.park), view.where(o.run_id, o.park)
        if park is not None:
            in_s, in_o = sa.and_(in_s, s.park == park), sa.and_(in_o, o.park == park)
        with self.db.connect() as conn:
            sur = {
                sid: Snapshot(park, (tenant,), size, unit)
                for sid, park, tenant, size, unit in conn.execute(
                    sa.select(s.id, s.park, s.tenant, s.size, s.unit).where(in_s)
                )
            }
            opp = {
                oid: Snapshot(park, (a, b), size, unit)
                for oid, park, a, b, size, unit in conn.execute(
                    sa.select(o.id, o.park, o.from_tenant, o.to_tenant, o.size, o.unit).where(in_o)
                )
            }
        return sur, opp

    def surpluses(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        c = t.surpluses.c
        query = sa.select(c.data).where(self.view(run_id).where(c.run_id, c.park))
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        return self._records(query.order_by(c.size.desc(), c.id))

    def opportunities(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        c = t.opportunities.c
        query = sa.select(c.data).where(self.view(run_id).where(c.run_id, c.park))
        if tenant is not None:
            query = query.where(sa.or_(c.from_tenant == tenant, c.to_tenant == tenant))
        return self._records(query.order_by(c.rank, c.id))

    def _records(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return [json.loads(data) for data in conn.execute(query).scalars()]

    def plan(self, run_id: int) -> dict[str, Any] | None:
        """The plan's totals of the view (None for a run saved before plans were), without
        links. Parks' plans are independent (no exchange crosses a park), so the view's
        totals are its park runs' added up (``combined_totals``). While a database moves from
        runs over every park to runs per park, the parks not yet run on their own show their
        rows but are left out of the totals until they are, rather than counted twice."""
        view = self.view(run_id)
        ids = list(view.scoped.values()) if view.scoped else [view.whole]
        query = sa.select(t.plans.c.data, t.plans.c.n_links).where(t.plans.c.run_id.in_(ids))
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(t.plans.c.run_id)).all()
        parts = []
        for data, n_links in rows:
            totals: dict[str, Any] = json.loads(data)
            del totals["links"]
            totals["n_links"] = n_links
            parts.append(totals)
        return combined_totals(parts) if parts else None

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
            .where(self.view(run_id).where(p.run_id, p.park))
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


_SUMMED = (
    "park_vnd_per_year",
    "co2e_avoided_t_per_year",
    "water_saved_m3_per_year",
    "landfill_diverted_t_per_year",
    "capex_vnd",
    "components",
    "solver_calls",
    "seconds",
    "n_links",
)


def combined_totals(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Independent parks' plan totals as one: amounts added, P10 and P90 added as each plan
    adds its links', the assumption share weighted by value as each plan weighs its links,
    the status optimal only when every part's is (else the first part's that is not)."""
    if len(parts) == 1:
        return dict(parts[0])
    out: dict[str, Any] = dict(parts[0])
    for key in _SUMMED:
        if all(key in p for p in parts):
            out[key] = sum(p[key] for p in parts)
    for key in ("park_vnd_p10", "park_vnd_p90"):
        values = [p.get(key) for p in parts]
        known = [v for v in values if v is not None]
        out[key] = sum(known) if known else None
    weighted = [(p.get("assumption_share"), abs(p.get("park_vnd_per_year", 0))) for p in parts]
    shares = [(s, w) for s, w in weighted if s is not None]
    weight = sum(w for _, w in shares)
    out["assumption_share"] = sum(s * w for s, w in shares) / weight if shares and weight else None
    out["status"] = next((p["status"] for p in parts if p["status"] != "optimal"), "optimal")
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
