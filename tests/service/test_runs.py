"""The service's detection run over stored data: rollups -> detect -> match -> events -> the
operational database (SQLite and PostgreSQL), and the command-line views of its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from ingest.validate import Validator
from parkflow.model import WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import SqliteStore
from parkflow.timeunits import now_ms
from service.alerts.kinds import OPPORTUNITY, SURPLUS
from service.alerts.repository import AlertRepository
from service.detect import build_panels_from_days
from service.events import OPPORTUNITY_NEW, SURPLUS_NEW
from service.knowledge import load_knowledge
from service.results import ResultsDb
from service.rollups import RollupWorker
from service.runs import run_detection, window_ms
from service.simulate import default_scenario, prepare
from service.state import Database, current_revision, head_revision, upgrade
from tests.support.ports import free_port

NOW = pd.Timestamp("2026-11-20T05:00:00Z")
NOW_MS = int(NOW.value // 1_000_000)
DAYS = 30


@pytest.fixture(scope="module")
def park_db(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Registry, list[tuple[str, str, str]]]:
    """The default simulated park's 30 days, validated as the ingestor does, in SQLite."""
    sim = prepare(load_registry(SAMPLE_REGISTRY).model, None, load_knowledge(), NOW_MS, DAYS)
    registry = Registry(sim.scenario.registry)
    plan, truth = sim.plan, sim.truth
    path = tmp_path_factory.mktemp("park") / "park.sqlite"
    store = SqliteStore(path)
    v = Validator(registry)
    for m in plan.messages:
        good, bad, message = v.validate(m.topic, m.payload, NOW_MS)
        store.write(WriteBatch(tuple(good), tuple(bad), (message,) if message else ()))
    RollupWorker(store, registry, margin_ms=0).run_once(now_ms())
    store.close()
    planted = [(p.from_meter, p.to_meter, p.rule) for p in truth.opportunities]
    return path, registry, planted


def test_panels_from_the_stored_day_rollups_are_mostly_filled(
    park_db: tuple[Path, Registry, list[tuple[str, str, str]]],
) -> None:
    """The window's stored day rollups fill the panels ``run_detection`` detects on: days read
    in the wrong unit or at the wrong place would leave them empty."""
    path, registry, _planted = park_db
    store = SqliteStore(path)
    start, end = window_ms(NOW, 28)
    days = store.day_rollups(None, start, end)
    store.close()
    assert len(days) > 0
    panels = build_panels_from_days(days, registry, NOW, 28)
    assert panels.keys() == registry.parks.keys()
    for panel in panels.values():
        assert panel.n_days == 28
        assert np.isfinite(panel.values).sum() > 0.5 * panel.values.size


def test_runs_store_results_and_events(
    park_db: tuple[Path, Registry, list[tuple[str, str, str]]], database: Database
) -> None:
    path, registry, planted = park_db
    store = SqliteStore(path)
    state = ResultsDb(database)
    knowledge = load_knowledge()
    first = run_detection(store, registry, knowledge, state, now=NOW, trigger="schedule")
    found = {(o.from_meter, o.to_meter, o.rule) for o in first.opportunities}
    assert set(planted) <= found
    # the plan says how firm its totals are, from its links' own confidence
    plan = first.plan
    assert plan.assumption_share is not None and 0 < plan.assumption_share < 1
    assert plan.park_vnd_p10 is not None and plan.park_vnd_p90 is not None
    assert plan.park_vnd_p10 <= plan.park_vnd_per_year <= plan.park_vnd_p90
    # a planted link that displaces a registered in-park sale debits that seller
    from service.simulate.cases import planted_cases
    from service.simulate.variants import default_variants

    sellers = {
        c.key: c.displaces_sale_of for c in planted_cases(default_variants()) if c.reason is None
    }
    assert any(sellers.values())
    for o in first.opportunities:
        key = (o.from_meter, o.to_meter, o.rule)
        if key in sellers:
            assert o.value.seller == sellers[key], key
            assert (o.value.seller_vnd_per_year < 0) == (sellers[key] is not None), key
    kinds = {e.kind for e in first.events}
    assert kinds == {SURPLUS_NEW, OPPORTUNITY_NEW}  # the first run: everything is new
    assert sum(e.kind == OPPORTUNITY_NEW for e in first.events) == len(first.opportunities)
    second = run_detection(store, registry, knowledge, state, now=NOW)
    assert second.events == []  # same data, same findings: nothing to alert
    assert second.run_id == first.run_id + 1

    run = state.latest_run()
    assert run is not None and run.id == second.run_id and run.status == "ok"
    rows = state.opportunities(run.id)
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    json.dumps(rows, allow_nan=False)  # strict JSON, ready for the API
    tenant = rows[0]["to_tenant"]
    mine = state.opportunities(run.id, tenant=tenant)
    assert mine and all(tenant in (r["from_tenant"], r["to_tenant"]) for r in mine)
    events = state.events()
    assert len(events) == len(first.events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["run_id"] for e in events} == {first.run_id}
    assert all(isinstance(e["tenants"], list) and e["tenants"] for e in events)
    assert [e["id"] for e in state.events(since_id=events[9]["id"], limit=5)] == [
        e["id"] for e in events[10:15]
    ]
    surpluses = state.surpluses(run.id)
    assert len(surpluses) == len(second.surpluses) == run.n_surpluses
    sizes = [s["p50_per_day"] for s in surpluses]
    assert sizes == sorted(sizes, reverse=True)
    store.close()
    state.close()


def test_the_sample_parks_plan_allocates_what_the_ranked_list_offers_twice(
    park_db: tuple[Path, Registry, list[tuple[str, str, str]]], database: Database
) -> None:
    """The sample park offers one solar surplus to four receivers and one effluent surplus to
    five: the plan's totals are below the ranked list's sum, never below its best row, and
    what the plan gives a link is never more than the link alone."""
    path, registry, _planted = park_db
    store = SqliteStore(path)
    state = ResultsDb(database)
    result = run_detection(store, registry, load_knowledge(), state, now=NOW)
    store.close()
    plan, opps = result.plan, result.opportunities
    assert plan.status == "optimal" and plan.links
    ranked = sum(o.value.park_vnd_per_year for o in opps)
    assert plan.park_vnd_per_year < 0.8 * ranked  # competing receivers: well below
    assert plan.park_vnd_per_year >= max(o.value.park_vnd_per_year for o in opps) * 0.999
    assert plan.co2e_avoided_t_per_year < sum(o.value.co2e_avoided_t_per_year for o in opps)
    by_id = {o.id: o for o in opps}
    for pl in plan.links:
        o = by_id[pl.opportunity_id]
        assert pl.matched_per_day <= o.matched_per_day * (1 + 1e-9)
        assert pl.alone_per_day == pytest.approx(o.matched_per_day)
    solar = [pl for pl in plan.links if pl.opportunity_id.startswith("songlam:cl-solar>")]
    offered = next(o for o in opps if o.from_meter == "cl-solar")
    assert sum(pl.supply_used_per_day for pl in solar) <= offered.supply_p50_per_day * 1.2
    totals = state.plan(result.run_id)
    assert totals is not None and totals["n_links"] == len(plan.links)
    assert totals["park_vnd_per_year"] == plan.park_vnd_per_year  # integer dong, as booked
    rows = state.plan_links(result.run_id)
    assert [r["opportunity_id"] for r in rows] == [pl.opportunity_id for pl in plan.links]
    json.dumps(rows, allow_nan=False)
    tenant = rows[0]["to_tenant"]
    assert all(
        tenant in (r["from_tenant"], r["to_tenant"])
        for r in state.plan_links(result.run_id, tenant=tenant)
    )
    state.close()


def test_a_failed_run_is_recorded_and_is_never_the_latest(database: Database) -> None:
    state = ResultsDb(database)
    run_id = state.start_run(1000, "schedule", 28)
    state.fail_run(run_id, 2000, "Traceback ...\nStoreUnavailable: " + "x" * 5000)
    (run,) = state.runs()
    assert (run.id, run.status, run.finished_ms, run.trigger) == (
        run_id,
        "failed",
        2000,
        "schedule",
    )
    assert run.error is not None and len(run.error) == 4000
    assert state.latest_run() is None
    assert state.start_run(3000, "manual", 28) > run_id  # ids only grow


def test_results_given_a_url_open_and_close_their_own_database(db_url: str) -> None:
    state = ResultsDb(db_url)
    run_id = state.start_run(1, "manual", 7)
    state.close()
    again = ResultsDb(db_url)
    assert [r.id for r in again.runs()] == [run_id]
    again.close()


def test_the_retired_state_path_setting_says_what_to_set_instead(tmp_path: Path) -> None:
    from parkflow.errors import ConfigError
    from service.settings import ServiceSettings

    with pytest.raises(ConfigError) as caught:
        ServiceSettings(state_path=tmp_path / "state.sqlite")
    text = str(caught.value)
    assert f"PARKFLOW_DATABASE_URL=sqlite:///{tmp_path / 'parkflow-operations.sqlite'}" in text
    env = {**os.environ, "PARKFLOW_STATE_PATH": str(tmp_path / "state.sqlite")}
    done = subprocess.run(
        [sys.executable, "-m", "parkflow.cli", "plan"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "PARKFLOW_STATE_PATH" in done.stderr
    assert "Traceback" not in done.stderr


def test_detect_refuses_a_named_database_never_migrated(blank_db_url: str, tmp_path: Path) -> None:
    """Only the embedded default is created on its own: a database someone named is upgraded
    by `parkflow db upgrade`, knowingly."""
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(default_scenario(load_registry(SAMPLE_REGISTRY).model).registry_yaml())
    env = {
        **os.environ,
        "PARKFLOW_SQLITE_PATH": str(tmp_path / "store.sqlite"),
        "PARKFLOW_DATABASE_URL": blank_db_url,
        "PARKFLOW_REGISTRY": str(registry_file),
    }
    done = subprocess.run(
        [sys.executable, "-m", "parkflow.cli", "detect"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "never migrated" in done.stderr and "run `parkflow db upgrade`" in done.stderr
    db = Database(blank_db_url)
    try:
        assert current_revision(db) is None  # nothing created
    finally:
        db.close()


def test_cli_detect_and_views(
    park_db: tuple[Path, Registry, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    path, _registry, planted = park_db
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(default_scenario(load_registry(SAMPLE_REGISTRY).model).registry_yaml())
    env = {
        **os.environ,
        "PARKFLOW_SQLITE_PATH": str(path),
        "PARKFLOW_REGISTRY": str(registry_file),
    }
    env.pop("PARKFLOW_DATABASE_URL", None)  # the embedded default, in the working directory
    embedded = tmp_path / "parkflow-operations.sqlite"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parkflow.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    before = cli("opportunities")
    assert before.returncode == 1 and "no detection run yet" in before.stdout
    assert not embedded.exists()  # a look creates nothing
    # the data ends on NOW; detection looks back from the wall clock, so pin the window
    env["PARKFLOW_NOW"] = NOW.isoformat()
    done = cli("detect")  # a fresh machine: the embedded database is created at its revision
    assert done.returncode == 0, done.stderr
    db = Database(f"sqlite:///{embedded}")
    try:
        assert current_revision(db) == head_revision()
    finally:
        db.close()
    opps = cli("opportunities", "--explain")
    assert opps.returncode == 0, opps.stderr
    lines = opps.stdout.splitlines()
    assert lines[0].startswith("alternatives: rows sharing a surplus or a receiver compete")
    assert lines[2].split()[:3] == ["#", "from", "to"]
    assert "the park's plan:" in opps.stdout and "planned/day" in lines[2]
    plan = cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("the park's plan:") and "solver: optimal" in plan.stdout
    assert "planned/day" in plan.stdout and "alone/day" in plan.stdout
    for from_meter, to_meter, _rule in planted:
        assert f"{from_meter}>{to_meter}" in opps.stdout
    assert "VND/yr" in opps.stdout and "m3/day" in opps.stdout
    rebuilt = cli("rebuild-rollups", "--days", "40")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt" in rebuilt.stdout and "from 0 readings" not in rebuilt.stdout
    # a park's knowledge override switches a rule off; the shipped rules stay
    override = tmp_path / "park-knowledge.yaml"
    override.write_text("version: 1\ndisable_rules: [solar_to_neighbour]\n")
    env["PARKFLOW_KNOWLEDGE"] = str(override)
    assert cli("detect").returncode == 0
    without_solar = cli("opportunities").stdout
    assert "solar_to_neighbour" not in without_solar and "ash_slag_to_cement" in without_solar
    override.write_text("version: 1\nrules: 3\n")  # a broken override: named, no traceback
    broken = cli("detect")
    assert broken.returncode == 2
    assert "park-knowledge.yaml: rules:" in broken.stderr and "Traceback" not in broken.stderr
    del env["PARKFLOW_KNOWLEDGE"]
    sur = cli("surpluses", "--tenant", "wwtp")
    assert sur.returncode == 0, sur.stderr
    body = sur.stdout.split("\n\n")[0].splitlines()[1:]
    assert body and all(line.split()[0] == "wwtp" for line in body)


def test_serve_runs_on_schedule_and_stops_on_sigterm(
    park_db: tuple[Path, Registry, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    import signal

    path, _registry, _planted = park_db
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(default_scenario(load_registry(SAMPLE_REGISTRY).model).registry_yaml())
    url = f"sqlite:///{tmp_path / 'operations.sqlite'}"
    env = {
        **os.environ,
        "PARKFLOW_SQLITE_PATH": str(path),
        "PARKFLOW_DATABASE_URL": url,
        "PARKFLOW_REGISTRY": str(registry_file),
        "PARKFLOW_NOW": NOW.isoformat(),
        "PARKFLOW_DETECT_INTERVAL_S": "1",
        "PARKFLOW_ROLLUP_INTERVAL_S": "0.5",
        "PARKFLOW_HTTP_PORT": str(free_port()),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parkflow.cli", *args], env=env, capture_output=True, text=True
        )

    assert cli("db", "current").returncode == 1
    refused = cli("serve")
    assert refused.returncode == 2 and "run `parkflow db upgrade`" in refused.stderr
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0
    assert f"upgraded from empty to {head_revision()}" in upgraded.stdout
    assert cli("db", "current").returncode == 0
    made = cli("keys", "create", "--name", "ops console", "--role", "operator")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]
    assert key.startswith("pfk_")
    proc = subprocess.Popen(
        [sys.executable, "-m", "parkflow.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        runs: list[object] = []
        while time.monotonic() < deadline and len(runs) < 2:
            time.sleep(0.3)
            state = ResultsDb(url)
            runs = [r for r in state.runs() if r.status == "ok" and r.trigger == "schedule"]
            state.close()
        assert len(runs) >= 2, "two scheduled runs within a minute"
        # the API answers beside the loop, with the key made at the console
        base = f"http://127.0.0.1:{env['PARKFLOW_HTTP_PORT']}"
        assert httpx.get(f"{base}/healthz").json() == {"alive": True}
        assert httpx.get(f"{base}/v1/me").status_code == 401
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["role"] == "operator"
        plan = httpx.get(f"{base}/v1/plan", headers={"Authorization": f"Bearer {key}"})
        assert plan.status_code == 200 and plan.json()["totals"]["n_links"] > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        # each run is followed by an evaluation: the planted surpluses opened alerts
        db = Database(url)
        try:
            opened = AlertRepository(db).alerts()
        finally:
            db.close()
        assert {a.kind for a in opened} >= {SURPLUS.name, OPPORTUNITY.name}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert '"level": "error"' not in err, err[-2000:]
    assert key not in err  # keys are never logged


def test_a_fuel_meter_without_a_heating_value_is_logged_as_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.registries import build, meter, park, tenant

    registry = build(
        park("p", tenant("a", meter("gas", "energy.natural_gas", "in", "m3", "delta")))
    )
    store = SqliteStore(tmp_path / "store.sqlite")
    state = ResultsDb(f"sqlite:///{tmp_path / 'operations.sqlite'}")
    upgrade(state.db)
    with caplog.at_level("WARNING", logger="parkflow.service"):
        run_detection(store, registry, load_knowledge(), state, now=NOW)
    store.close()
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "meter gas (p/a): energy.natural_gas metered in m3" in record.getMessage()
