"""The service's own durable state: detection runs, their results, and the events between them.

Kept in SQLite whatever store holds the readings: results and events are small, relational,
and must survive restarts (events feed alerts). Schema 2 adds the park's plan (``plans``,
``plan_links``); a schema-1 file gains the two tables on opening, its runs without a plan.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from parkflow.errors import StoreError
from parkflow.store.sqlite.connection import read_error, write_error
from service.detect import Surplus
from service.events import Event, Snapshot
from service.match import Opportunity
from service.plan import Plan

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    trigger TEXT NOT NULL,
    window_days INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    n_surpluses INTEGER NOT NULL DEFAULT 0,
    n_opportunities INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS surpluses (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    id TEXT NOT NULL,
    park TEXT NOT NULL,
    tenant TEXT NOT NULL,
    size REAL NOT NULL,
    unit TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE TABLE IF NOT EXISTS opportunities (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    id TEXT NOT NULL,
    park TEXT NOT NULL,
    rank INTEGER NOT NULL,
    from_tenant TEXT NOT NULL,
    to_tenant TEXT NOT NULL,
    size REAL NOT NULL,
    unit TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    created_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    park TEXT NOT NULL,
    tenants TEXT NOT NULL,
    summary TEXT NOT NULL,
    before REAL,
    after REAL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events(created_ms);
CREATE TABLE IF NOT EXISTS plans (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    park_vnd_per_year REAL NOT NULL,
    co2e_avoided_t_per_year REAL NOT NULL,
    water_saved_m3_per_year REAL NOT NULL,
    landfill_diverted_t_per_year REAL NOT NULL,
    capex_vnd REAL NOT NULL,
    status TEXT NOT NULL,
    n_links INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_links (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    opportunity_id TEXT NOT NULL,
    park TEXT NOT NULL,
    park_vnd_per_year REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, opportunity_id)
);
"""


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
    """Runs, their surpluses and opportunities, and the events between runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema {version}, newer than this parkflow knows"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise read_error(exc) from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise write_error(exc) from exc

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise read_error(exc) from exc

    def start_run(self, started_ms: int, trigger: str, window_days: int) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs(started_ms, trigger, window_days, status) VALUES (?,?,?,'running')",
                (started_ms, trigger, window_days),
            )
            return int(cur.lastrowid or 0)

    def fail_run(self, run_id: int, finished_ms: int, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='failed', finished_ms=?, error=? WHERE id=?",
                (finished_ms, error[:4000], run_id),
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
        with self._tx() as db:
            db.executemany(
                "INSERT INTO surpluses VALUES (?,?,?,?,?,?,?)",
                [
                    (run_id, s.id, s.park, s.tenant, s.p50_per_day, s.unit, _json(s))
                    for s in surpluses
                ],
            )
            db.executemany(
                "INSERT INTO opportunities VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        o.id,
                        o.park,
                        o.rank,
                        o.from_tenant,
                        o.to_tenant,
                        o.matched_per_day,
                        o.demand_unit,
                        _json(o),
                    )
                    for o in opportunities
                ],
            )
            db.executemany(
                "INSERT INTO events(run_id, created_ms, kind, subject_id, park, tenants, summary,"
                " before, after) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        finished_ms,
                        e.kind,
                        e.subject_id,
                        e.park,
                        json.dumps(list(e.tenants)),
                        e.summary,
                        e.before,
                        e.after,
                    )
                    for e in events
                ],
            )
            db.execute(
                "INSERT INTO plans VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    plan.park_vnd_per_year,
                    plan.co2e_avoided_t_per_year,
                    plan.water_saved_m3_per_year,
                    plan.landfill_diverted_t_per_year,
                    plan.capex_vnd,
                    plan.status,
                    len(plan.links),
                    _json(dataclasses.replace(plan, links=())),
                ),
            )
            db.executemany(
                "INSERT INTO plan_links VALUES (?,?,?,?,?)",
                [
                    (run_id, pl.opportunity_id, pl.park, pl.park_vnd_per_year, _json(pl))
                    for pl in plan.links
                ],
            )
            db.execute(
                "UPDATE runs SET status='ok', finished_ms=?, n_surpluses=?, n_opportunities=?"
                " WHERE id=?",
                (finished_ms, len(surpluses), len(opportunities), run_id),
            )

    def latest_run(self) -> Run | None:
        row = self._read("SELECT * FROM runs WHERE status='ok' ORDER BY id DESC LIMIT 1").fetchone()
        return Run(*row) if row else None

    def runs(self, limit: int = 20) -> list[Run]:
        rows = self._read("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Run(*r) for r in rows]

    def snapshots(self, run_id: int | None) -> tuple[dict[str, Snapshot], dict[str, Snapshot]]:
        if run_id is None:
            return {}, {}
        sur = {
            sid: Snapshot(park, (tenant,), size, unit)
            for sid, park, tenant, size, unit in self._read(
                "SELECT id, park, tenant, size, unit FROM surpluses WHERE run_id=?", (run_id,)
            )
        }
        opp = {
            oid: Snapshot(park, (a, b), size, unit)
            for oid, park, a, b, size, unit in self._read(
                "SELECT id, park, from_tenant, to_tenant, size, unit FROM opportunities"
                " WHERE run_id=?",
                (run_id,),
            )
        }
        return sur, opp

    def surpluses(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT data FROM surpluses WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if tenant is not None:
            sql += " AND tenant=?"
            args += (tenant,)
        rows = self._read(sql + " ORDER BY size DESC", args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def opportunities(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT data FROM opportunities WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if tenant is not None:
            sql += " AND (from_tenant=? OR to_tenant=?)"
            args += (tenant, tenant)
        rows = self._read(sql + " ORDER BY rank", args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def plan(self, run_id: int) -> dict[str, Any] | None:
        """The plan's totals of a run (None for a run saved before plans were), without links."""
        row = self._read("SELECT data, n_links FROM plans WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        totals: dict[str, Any] = json.loads(row[0])
        del totals["links"]
        totals["n_links"] = row[1]
        return totals

    def plan_links(self, run_id: int, tenant: str | None = None) -> list[dict[str, Any]]:
        """The plan's links, best first, each with its opportunity's tenants, rule and units."""
        sql = (
            "SELECT p.data, o.from_tenant, o.to_tenant, o.data FROM plan_links p"
            " JOIN opportunities o ON o.run_id = p.run_id AND o.id = p.opportunity_id"
            " WHERE p.run_id=?"
        )
        args: tuple[Any, ...] = (run_id,)
        if tenant is not None:
            sql += " AND (o.from_tenant=? OR o.to_tenant=?)"
            args += (tenant, tenant)
        rows = self._read(sql + " ORDER BY p.park_vnd_per_year DESC", args).fetchall()
        out = []
        for data, a, b, opp in rows:
            item = json.loads(data)
            o = json.loads(opp)
            item.update(
                from_tenant=a,
                to_tenant=b,
                rule=o["rule"],
                rank=o["rank"],
                supply_unit=o["supply_unit"],
                demand_unit=o["demand_unit"],
            )
            out.append(item)
        return out

    def events(self, since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        cur = self._read(
            "SELECT id, run_id, created_ms, kind, subject_id, park, tenants, summary, before, after"
            " FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (since_id, limit),
        )
        cols = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            item = dict(zip(cols, row, strict=True))
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
