"""Runs of single parks (leased replicas) beside runs over every park: a reader's view is each
park's latest run, a run id the view as of it; events are diffed per park; a fenced save
writes nothing; the plan's totals of several parks' runs are added up; a replica's alerts
are its parks' only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from parkflow.errors import StoreError
from parkflow.registry import Registry, parse_registry
from parkflow.store import InfluxStore, MemoryStore, SqliteStore
from service.alerts.evaluate import evaluate_alerts
from service.alerts.kinds import METER_STALE, STORE_UNREACHABLE
from service.alerts.repository import AlertRepository
from service.alerts.sources import ALL_PARKS
from service.knowledge import load_knowledge
from service.results import ResultsDb, combined_totals
from service.runs import run_detection
from service.state import Database, Fence
from tests.support.parks import NOW, PARKS, fill, registry_yaml
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def four_parks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry]:
    path = tmp_path_factory.mktemp("parks") / "store.sqlite"
    text = registry_yaml()
    fill(path, text)
    return path, parse_registry(text)


def parks_of(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str(r["park"]) for r in rows)


def test_each_park_is_shown_from_its_latest_run(
    four_parks: tuple[Path, Registry], database: Database
) -> None:
    path, registry = four_parks
    store = SqliteStore(path)
    state = ResultsDb(database)
    knowledge = load_knowledge()

    def detect(park: str | None, fence: Fence | None = None) -> int:
        return run_detection(
            store, registry, knowledge, state, now=NOW, park=park, replica="r", fence=fence
        ).run_id

    try:
        p1 = detect("p1")
        first = run_detection(store, registry, knowledge, state, now=NOW, park="p2")
        assert {s.park for s in first.surpluses} == {"p2"}  # that park's alone
        latest = state.latest_run()
        assert latest is not None and (latest.park, latest.id) == ("p2", first.run_id)
        # the view: both parks, each from its own run; as of the first run, p1's only
        assert parks_of(state.surpluses(latest.id)) == ["p1", "p2"]
        assert parks_of(state.surpluses(p1)) == ["p1"]
        assert parks_of(state.plan_links(latest.id)) == ["p1", "p2"]
        one = state.plan(p1)
        both = state.plan(latest.id)
        assert one is not None and both is not None and both["n_links"] == 2 * one["n_links"]
        assert both["park_vnd_per_year"] == 2 * one["park_vnd_per_year"]
        # a run over every park stands for all of them
        whole = detect(None)
        assert parks_of(state.surpluses(whole)) == PARKS
        totals = state.plan(whole)
        assert totals is not None and totals["n_links"] == 4 * one["n_links"]
        # a park's next run is diffed against what the whole run found for it: no news
        p3 = run_detection(store, registry, knowledge, state, now=NOW, park="p3")
        assert p3.events == []
        assert parks_of(state.surpluses(p3.run_id)) == PARKS  # p3 from its run, no twice
        assert parks_of(state.opportunities(p3.run_id, tenant="cool")) == PARKS

        # a save refused by its fence (the lease lost): the run failed, the view unchanged
        def lost(conn: Connection) -> None:
            raise StoreError("lease lost")

        with pytest.raises(StoreError):
            detect("p4", fence=lost)
        failed = state.runs(1)[0]
        assert (failed.park, failed.status, failed.replica) == ("p4", "failed", "r")
        last = state.latest_run("p4")
        assert last is not None and last.id == whole
        again = state.latest_run("p3")
        assert again is not None and again.id == p3.run_id
    finally:
        store.close()


def test_the_plans_of_several_parks_add_up() -> None:
    a = {
        "park_vnd_per_year": 300,
        "co2e_avoided_t_per_year": 1.5,
        "water_saved_m3_per_year": 10.0,
        "landfill_diverted_t_per_year": 0.0,
        "capex_vnd": 0,
        "components": 1,
        "solver_calls": 1,
        "seconds": 0.1,
        "n_links": 2,
        "status": "optimal",
        "assumption_share": 0.5,
        "park_vnd_p10": 200,
        "park_vnd_p90": 400,
    }
    b = {
        **a,
        "park_vnd_per_year": 100,
        "status": "time limit",
        "assumption_share": 1.0,
        "park_vnd_p10": None,
        "park_vnd_p90": None,
    }
    c = combined_totals([a, b])
    assert (c["park_vnd_per_year"], c["n_links"], c["water_saved_m3_per_year"]) == (400, 4, 20.0)
    assert c["status"] == "time limit"
    assert c["assumption_share"] == pytest.approx((0.5 * 300 + 1.0 * 100) / 400)
    assert (c["park_vnd_p10"], c["park_vnd_p90"]) == (200, 400)
    assert combined_totals([a]) == a


def test_a_replica_observes_and_clears_only_its_own_parks_alerts(
    four_parks: tuple[Path, Registry], database: Database
) -> None:
    """A replica holding p1 evaluates p1's meters: p2's stale meters, tracked by another
    replica, stay as they are (not seen as gone), and the store's own alert is observed only
    by the replica that is given it (``ALL_PARKS``)."""
    _, registry = four_parks
    repo = AlertRepository(database)
    store = MemoryStore()  # no reading at all: every meter is stale
    at = int(NOW.value // 1_000_000)
    evaluate_alerts(repo, store, registry.only(["p2"]), None, at, parks={"p2"})
    before = repo.tracked([METER_STALE.name, STORE_UNREACHABLE.name])
    assert {park for park, _ in before[METER_STALE.name].values()} == {"p2"}
    for _ in range(3):
        evaluate_alerts(repo, store, registry.only(["p1"]), None, at, parks={"p1", ALL_PARKS})
    after = repo.tracked([METER_STALE.name])[METER_STALE.name]
    assert before[METER_STALE.name].items() <= after.items()  # p2's kept, not cleared
    assert {park for park, _ in after.values()} == {"p1", "p2"}
    # the store down: observed by the replica given the system's alerts, not by another
    down = InfluxStore(f"http://127.0.0.1:{free_port()}", database="parkflow", timeout=0.5)
    try:
        evaluate_alerts(repo, down, registry.only(["p2"]), None, at, parks={"p2"})
        assert STORE_UNREACHABLE.name not in repo.tracked([STORE_UNREACHABLE.name])
        evaluate_alerts(repo, down, registry.only(["p1"]), None, at, parks={"p1", ALL_PARKS})
        assert STORE_UNREACHABLE.name in repo.tracked([STORE_UNREACHABLE.name])
    finally:
        down.close()


def test_a_run_finishing_after_a_later_one_changes_the_views_key(database: Database) -> None:
    """Answers kept in memory are keyed by the view: a park's run that started before
    another park's and finished after it joins the view under the same latest id, and the
    key says so (else the API would serve the park's previous results until a later run)."""
    from service.plan import make_plan

    state = ResultsDb(database)
    empty, _ = make_plan([])
    early = state.start_run(1_000, "schedule", 28, park="p1", replica="a")
    late = state.start_run(2_000, "schedule", 28, park="p2", replica="b")
    state.finish_run(late, 3_000, [], [], [], empty)
    latest = state.latest_run()
    assert latest is not None and latest.id == late
    before = state.view_key(latest)
    state.finish_run(early, 4_000, [], [], [], empty)
    latest = state.latest_run()
    assert latest is not None and latest.id == late  # the latest id is unchanged ...
    assert state.view(late).scoped == {"p1": early, "p2": late}
    assert state.view_key(latest) != before  # ... the view, and its key, are not
    whole = state.start_run(5_000, "schedule", 28)
    state.finish_run(whole, 6_000, [], [], [], empty)
    latest = state.latest_run()
    assert latest is not None and state.view_key(latest) == (whole,)  # no query needed
