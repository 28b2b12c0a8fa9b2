"""``parkflow simulate`` scored against its own ground truth.

Pure and fast: a scenario's readings (noise, shifts, planted faults) go through the ingest
path's validator as the MQTT messages a gateway would send, then pure rollups, surplus
detection and matching; what is proposed is scored against the planted opportunities and
non-opportunities. End to end, once: 60 days backfilled through a real Mosquitto into a real
ingestor process, nothing lost, the bad readings quarantined with their reasons, and detection
on the stored data finds what was planted.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.validate import Validator
from parkflow.cli import main
from parkflow.model import MeterKind, Reading
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry, parse_registry
from parkflow.registry.schema import RegistryFile
from parkflow.store import SqliteStore
from parkflow.timeunits import DAY_MS, HOUR_MS, now_ms
from service.knowledge import Knowledge, load_knowledge
from service.match import Opportunity
from service.results import ResultsDb
from service.rollups import RollupWorker
from service.rollups.compute import MeterMaths, hour_quantities, standard_offset_ms
from service.runs import run_detection
from service.simulate import (
    MATCHED_TOLERANCE,
    STEP_MS,
    Simulation,
    build_truth,
    default_scenario,
    generate,
    prepare,
    score,
    to_json,
)
from service.simulate.messages import Plan
from service.simulate.scenario import unclear
from service.simulate.truth import Key, keys_from_json
from service.state import upgrade
from tests.support.ingestor_proc import IngestorPool, wait_receiving
from tests.support.mosquitto import MosquittoServer, wait_until
from tests.support.rollups import day_rollup_frame, detect, detect_and_plan

TZ = "Asia/Ho_Chi_Minh"
NOW = pd.Timestamp("2026-11-28 10:30", tz=TZ)
NOW_MS = int(NOW.value // 1_000_000)
PURE_DAYS = 30  # the 28-day window plus the day before it and today's morning
SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


@pytest.fixture(scope="module")
def base() -> RegistryFile:
    return load_registry(SAMPLE_REGISTRY).model


# --- the pure path: messages -> validator -> rollups -> detect -> match ----------------------


def day_rollups(registry: Registry, readings: Iterable[Reading]) -> pd.DataFrame:
    """The day rollups a store would return for stored-like readings: each meter's hours by
    the service's rollup maths, split into local days as the rollup worker does."""
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in readings:
        points[r.meter].append((r.ts_ms, r.value))
    quantities: dict[str, dict[int, float]] = {}
    for rm in registry.meters():
        series = sorted(dict(points.get(rm.meter.id, [])).items())
        if series:
            offset = standard_offset_ms(rm.park.timezone)
            lo, hi = series[0][0] - DAY_MS, series[-1][0] + DAY_MS
            maths = MeterMaths.of(rm.meter)
            quantities[rm.meter.id] = hour_quantities(maths, None, series, None, lo, hi, offset)
    return day_rollup_frame(registry, quantities)


def validate_messages(
    registry: Registry, plan: Plan, received_ms: int
) -> tuple[list[Reading], Counter[str]]:
    """Each message through the ingestor's validator, as it arrives over MQTT."""
    v = Validator(registry)
    readings: list[Reading] = []
    reasons: Counter[str] = Counter()
    for m in plan.messages:
        good, bad, _ = v.validate(m.topic, m.payload, received_ms)
        readings += good
        reasons.update(r.reason for r in bad)
    return readings, reasons


def simulate_pure(
    base: RegistryFile, seed: int | None, knowledge: Knowledge, days: int = PURE_DAYS
) -> tuple[Simulation, list[Opportunity], Counter[str], int]:
    sim = prepare(base, seed, knowledge, NOW_MS, days)
    registry = Registry(sim.scenario.registry)
    readings, reasons = validate_messages(registry, sim.plan, NOW_MS)
    stored = len({(r.meter, r.ts_ms) for r in readings})
    _, opps = detect(registry, day_rollups(registry, readings), knowledge, NOW)
    return sim, opps, reasons, stored


def proposed(opps: Iterable[Opportunity]) -> dict[Key, float]:
    """What detection proposes: each link with the matched quantity per day it reports."""
    return {(o.from_meter, o.to_meter, o.rule): o.matched_per_day for o in opps}


def test_default_scenario_is_the_sample_park(base: RegistryFile, knowledge: Knowledge) -> None:
    scenario = default_scenario(base)
    assert parse_registry(scenario.registry_yaml()).model == base
    assert len(scenario.park.tenants) >= 12
    assert unclear(scenario, knowledge) is None  # every case has a clear answer in every season
    truth = build_truth(scenario, knowledge, NOW_MS)
    reasons = {(v.from_meter, v.to_meter): v.reason for v in truth.non_opportunities}
    # the planted non-opportunities the sample registry describes, for their stated reasons
    assert reasons[("det-effluent", "hc-cooling")] == "quality_mismatch"  # column B
    assert reasons[("hc-steam-vent", "det-steam")] == "quality_mismatch"  # 6 bar < 8 bar
    assert reasons[("hc-steam-vent", "mf-steam")] == "no_temporal_overlap"  # night vs day shift
    assert reasons[("gs-boiler", "mf-steam")] == "no_temporal_overlap"
    assert reasons[("thep-heat", "det-steam")] == "too_far"
    assert reasons[("wwtp-effluent", "lv-water")] == "too_far"
    assert reasons[("cl-pallets", "bs-boiler-fuel")] == "too_small"
    assert reasons[("mf-pallets", "lv-boiler-fuel")] == "equipment_missing"  # an LPG heater
    assert reasons[("hc-steam-vent", "gs-steam")] == "own_generation"  # its boiler, at night
    assert reasons[("nd-steam", "gs-steam")] == "already_exchanged"  # sold whole
    assert reasons[("wwtp-effluent", "thep-water")] == "already_exchanged"
    assert reasons[("wwtp-effluent", "vt-water")] == "use_not_replaceable"
    assert {
        ("wwtp-effluent", "hc-cooling", "effluent_a_reuse"),
        ("gs-boiler", "det-steam", "steam_to_steam"),
        ("nd-flyash", "gx-cement", "ash_slag_to_cement"),
        ("mf-pallets", "bs-boiler-fuel", "pallets_to_biomass_fuel"),
        ("vt-plastic", "tcn-feedstock", "scrap_plastic_to_recycler"),
        ("cl-solar", "mf-elec", "solar_to_neighbour"),
    } <= truth.opportunity_keys


def test_flows_are_continuous_and_in_the_meters_units(base: RegistryFile) -> None:
    scenario = default_scenario(base)
    park = scenario.park
    start, mid, end = NOW_MS - 2 * DAY_MS, NOW_MS - DAY_MS, NOW_MS
    whole = generate(park, scenario.profiles, start, end, noise_seed=1)
    first = generate(park, scenario.profiles, start, mid, noise_seed=1)
    second = generate(park, scenario.profiles, mid, end, noise_seed=1, registers=first.registers)
    meters = {m.id: m for t in park.tenants for m in t.meters}
    for w, a, b in zip(whole.series, first.series, second.series, strict=True):
        # a live tick continues the backfill exactly: same noise, registers carried over
        np.testing.assert_allclose(w.values, np.r_[a.values, b.values], rtol=1e-12)
        assert len(w.ts) == 2 * 96 and (np.diff(w.ts) == STEP_MS).all()
        m = meters[w.meter]
        if m.kind is MeterKind.CUMULATIVE and m.rollover is None:
            assert (np.diff(w.values) >= 0).all(), m.id
    steel = next(s for s in whole.series if s.meter == "thep-scale")  # kg per 15 minutes
    assert steel.values.sum() / 1000 == pytest.approx(0.2 * 48, rel=0.15)
    water = next(s for s in whole.series if s.meter == "det-water")  # a register in litres
    assert 80_000 * 48 * 0.7 < water.values[-1] - water.values[0] < 80_000 * 48 * 1.1


def test_declared_figures_are_arithmetic_a_reader_can_check(
    base: RegistryFile, knowledge: Knowledge
) -> None:
    """The truth's figures follow from the designed levels by hand, not from matching."""
    scenario = default_scenario(base)
    truth = build_truth(scenario, knowledge, NOW_MS)
    v = {x.key: x for x in truth.opportunities}
    # the season scales both sides of these by about the same factor: compare before it
    vent = next(
        x
        for x in truth.non_opportunities
        if x.key == ("hc-steam-vent", "gs-steam", "steam_to_steam")
    )
    season = vent.supply_per_day / (800 * 6)  # 800 kW vented 23:00-05:00
    assert 0.9 < season < 1.1
    # vented at night, when the paper mill's own boiler (2,000 kW) outruns its use (1,200 kW)
    assert vent.reason == "own_generation" and vent.matched_per_day == 0.0
    # the boiler's spare steam: 2,000 kW made at night, 1,200 used, for 8 hours; the dye house
    # takes 1,500 kW, 450 on Sundays, so 6 days of 800 x 8 and a Sunday of 450 x 8 a week
    boiler = v[("gs-boiler", "det-steam", "steam_to_steam")]
    assert boiler.matched_per_day == pytest.approx((6 * 6400 + 3600) / 7, rel=0.1)
    # fly ash: 12 t/day, cement 16 t/day on 5.5 days a week, of which 30% may be ash
    ash = v[("nd-flyash", "gx-cement", "ash_slag_to_cement")]
    assert ash.matched_per_day == pytest.approx(0.3 * 16 * 5.5 / 7, rel=0.1)
    # effluent: 40 m3/h less 300 m3/day to the mill; the chemical plant's cooling make-up
    eff = v[("wwtp-effluent", "hc-cooling", "effluent_a_reuse")]
    assert eff.supply_per_day == pytest.approx(40 * 24 - 300, rel=0.1)
    assert eff.matched_per_day == pytest.approx(eff.demand_per_day, rel=1e-9)  # 8 m3/h x 24
    assert eff.matched_per_day == pytest.approx(8 * 24, rel=0.1)
    # a declared share is the receiver's use share in the registry the scenario wrote
    meters = {m.id: m for t in scenario.park.tenants for m in t.meters}
    for o in truth.opportunities:
        uses = meters[o.to_meter].use_shares()
        assert not uses or o.share in uses.values(), o.id


def test_the_truth_does_not_use_detection_or_matching() -> None:
    code = (
        "import sys, service.simulate, service.simulate.run;"
        " print(sorted(m for m in sys.modules if m.startswith(('service.detect', 'service.match'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_default_scenario_detection_finds_every_planted_opportunity(
    base: RegistryFile, knowledge: Knowledge
) -> None:
    sim, opps, reasons, stored = simulate_pure(base, None, knowledge)
    truth, plan = sim.truth, sim.plan
    s = score(truth.planted, truth.non_opportunity_keys, proposed(opps))
    print(f"\ndefault scenario: {s.line()}")
    assert s.missed == () and s.non_opportunities_proposed == () and s.false == ()
    # and the quantities the design declares, within the scoring's stated tolerance
    assert s.off == (), s.off
    # every planted bad reading is refused for its reason, every good one kept once
    assert reasons == Counter(plan.quarantined) and stored == plan.unique_good
    assert plan.duplicates > 0 and {"out_of_range", "not_finite", "future_ts"} <= set(reasons)
    kinds = {f.kind for f in truth.faults}
    assert {"reset", "rollover", "gap", "spike", "duplicate", "out_of_order", "resend"} <= kinds


def test_the_plan_gives_no_surplus_planted_with_competing_receivers_more_than_it_holds(
    base: RegistryFile, knowledge: Knowledge
) -> None:
    """The truth declares which surpluses have more receivers than they can serve; detection
    ranks each receiver alone (the alternatives take more than the surplus), the plan never
    gives them more than the declared surplus."""
    sim = prepare(base, None, knowledge, NOW_MS, PURE_DAYS)
    registry = Registry(sim.scenario.registry)
    readings, _ = validate_messages(registry, sim.plan, NOW_MS)
    _, opps, plan = detect_and_plan(registry, day_rollups(registry, readings), knowledge, NOW)
    competitions = sim.truth.competitions
    assert {"cl-solar", "wwtp-effluent"} <= {c.from_meter for c in competitions}
    by_id = {o.id: o for o in opps}
    assert plan.status == "optimal"
    for c in competitions:
        assert c.alternatives_per_day > c.supply_per_day
        ranked = [o for o in opps if o.from_meter == c.from_meter]
        assert sum(o.supply_used_per_day for o in ranked) > c.supply_per_day
        planned = [pl for pl in plan.links if by_id[pl.opportunity_id].from_meter == c.from_meter]
        taken = sum(pl.supply_used_per_day for pl in planned)
        assert 0 < taken <= c.supply_per_day * (1 + MATCHED_TOLERANCE), c
    doc = json.loads(to_json(sim.truth))
    assert {c["from_meter"] for c in doc["competing_receivers"]} == {
        c.from_meter for c in competitions
    }


def test_random_seeds_find_every_planted_opportunity(
    base: RegistryFile, knowledge: Knowledge
) -> None:
    lines = []
    planted_as: dict[Key, set[str]] = defaultdict(set)
    for seed in SEEDS:
        sim, opps, reasons, stored = simulate_pure(base, seed, knowledge)
        truth = sim.truth
        s = score(truth.planted, truth.non_opportunity_keys, proposed(opps))
        lines.append(f"seed {seed}: {s.line()}")
        for v in truth.opportunities + truth.non_opportunities:
            planted_as[v.key].add(v.reason or "opportunity")
        assert s.missed == () and s.non_opportunities_proposed == () and s.false == (), (seed, s)
        assert s.off == (), (seed, s.off)
        assert reasons == Counter(sim.plan.quarantined) and stored == sim.plan.unique_good
    print("\n" + "\n".join(lines))
    # seeds really vary what is planted as what
    assert sum(len(v) > 1 for v in planted_as.values()) >= 5


def test_score_allows_the_stated_tolerance() -> None:
    k = ("a", "b", "r")
    inside = score({k: 100.0}, (), {k: 100.0 * (1 - MATCHED_TOLERANCE) + 0.01})
    outside = score({k: 100.0}, (), {k: 100.0 * (1 + MATCHED_TOLERANCE) + 0.01})
    assert inside.found == (k,) and inside.off == ()
    assert outside.found == (k,)
    ((key, declared, reported),) = outside.off
    assert (key, declared) == (k, 100.0) and reported == pytest.approx(115.01)


def test_cli_writes_registry_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", "--seed", "3", "--days", "2", "--out", str(out), "--no-publish"]) == 0
    assert main(["registry", "check", str(out / "registry.yaml")]) == 0
    doc = json.loads((out / "truth.json").read_text())
    assert doc["seed"] == 3 and doc["opportunities"] and doc["non_opportunities"]
    assert {"from_meter", "to_meter", "rule", "matched_per_day"} <= set(doc["opportunities"][0])
    assert {"from_meter", "to_meter", "rule", "reason"} <= set(doc["non_opportunities"][0])
    assert doc["delivery"]["readings_stored"] > 0
    assert "planted" in capsys.readouterr().out


# --- end to end, once ------------------------------------------------------------------------


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_backfill_60_days_through_mqtt_end_to_end(
    mosquitto: MosquittoServer, tmp_path: Path, base: RegistryFile, knowledge: Knowledge
) -> None:
    """``parkflow simulate`` itself backfills; a real ingestor process stores into SQLite."""
    from service.simulate.publish import Publisher, live

    scenario = default_scenario(base)
    registry_path = tmp_path / "registry.yaml"
    registry_path.write_text(scenario.registry_yaml())
    registry = load_registry(registry_path)
    db, out = tmp_path / "parkflow.sqlite", tmp_path / "sim"
    with IngestorPool(tmp_path) as pool:
        ing = pool.make(
            mqtt_port=mosquitto.port,
            sqlite_path=db,
            registry=registry_path,
            # production batching, not the harness's small test batches
            env={"PARKFLOW_BATCH_SIZE": "5000", "PARKFLOW_FLUSH_INTERVAL_S": "0.2"},
        )
        ing.start()
        probes = wait_receiving([ing], mosquitto.port)
        t0 = time.perf_counter()
        args = ["simulate", "--days", "60", "--mqtt-port", str(mosquitto.port), "--out", str(out)]
        assert main(args) == 0
        published_s = time.perf_counter() - t0
        doc = json.loads((out / "truth.json").read_text())
        delivery = doc["delivery"]
        wait_until(
            lambda: (
                ing.metric("parkflow_ingest_messages_acked_total") >= probes + delivery["messages"]
            ),
            timeout=240,
            interval=0.25,
        )
        backfill_s = time.perf_counter() - t0
        write_s = ing.metric("parkflow_ingest_write_seconds_sum")
        assert (out / "registry.yaml").read_text() == registry_path.read_text()
        # nothing lost: every distinct good reading stored once, duplicates folded
        assert _count(db, "SELECT COUNT(*) FROM readings") == delivery["readings_stored"]
        assert delivery["readings_sent"] == (
            delivery["readings_stored"]
            + delivery["duplicates"]
            + sum(delivery["quarantined"].values())
        )
        print(
            f"\n60-day backfill: {delivery['readings_sent']} readings in"
            f" {delivery['messages']} messages; `parkflow simulate` generated and published"
            f" them (all PUBACKs) in {published_s:.1f} s, stored and acked after"
            f" {backfill_s:.1f} s ({delivery['readings_sent'] / backfill_s:,.0f} readings/s;"
            f" ingestor store writes took {write_s:.1f} s of it)"
        )
        # then live: simulated time runs on from the backfill's end, 30x faster (6 s per
        # tick) until it reaches the wall clock; registers carried over as the command does
        start, end = doc["simulated"]["start_ms"], doc["simulated"]["end_ms"]
        backfill = prepare(base, None, knowledge, end, (end - start) / DAY_MS)
        assert (backfill.start_ms, backfill.end_ms) == (start, end)
        registers = backfill.generated.registers
        stop = threading.Event()
        ticks: list[str] = []
        sent: list[int] = []
        with Publisher(port=mosquitto.port) as pub:
            worker = threading.Thread(
                target=lambda: sent.append(
                    live(scenario, pub, end, registers, interval_s=0.2, speed=30, stop=stop,
                         report=ticks.append)
                )
            )  # fmt: skip
            worker.start()
            try:
                wait_until(lambda: len(ticks) >= 2, timeout=30)
            finally:
                stop.set()
                worker.join(timeout=30)
        assert sent and sent[0] >= 2 * len(registry.meters()), ticks
        total = delivery["readings_stored"] + sent[0]
        wait_until(lambda: _count(db, "SELECT COUNT(*) FROM readings") == total, timeout=30)
        ing.stop()
    store = SqliteStore(db)
    try:
        counts = store.quarantine_counts()
        counts.pop("unknown_park", None)  # the harness's subscription probes
        assert counts == delivery["quarantined"]
        quarantined = {(q.meter, q.reason) for q in store.quarantined(limit=100)}
        for f in doc["faults"]:
            if f["expect"].startswith("quarantined: "):
                assert (f["meter"], f["expect"].removeprefix("quarantined: ")) in quarantined, f
        t0 = time.perf_counter()
        now = doc["window"]["end_ms"] + 10 * HOUR_MS  # the morning after the backfill's window
        opps, how = _detect_stored(store, registry, knowledge, now, tmp_path)
        detect_s = time.perf_counter() - t0
    finally:
        store.close()
    planted, non_opportunities = keys_from_json((out / "truth.json").read_text())
    s = score(planted, non_opportunities, proposed(opps))
    print(f"detection on the stored data ({how}, {detect_s:.1f} s): {s.line()}")
    assert s.missed == () and s.non_opportunities_proposed == () and s.off == (), s
    assert backfill_s < 180  # the target is about a minute; fail only when far off


def _detect_stored(
    store: SqliteStore, registry: Registry, knowledge: Knowledge, end_ms: int, tmp: Path
) -> tuple[list[Opportunity], str]:
    """The service's own path: the rollup worker, then a detection run."""
    now = pd.Timestamp(end_ms, unit="ms", tz="UTC")
    RollupWorker(store, registry, margin_ms=0).run_once(now_ms())
    state = ResultsDb(f"sqlite:///{tmp / 'operations.sqlite'}")
    try:
        upgrade(state.db)
        result = run_detection(store, registry, knowledge, state, now=now)
    finally:
        state.close()
    return result.opportunities, "rollup worker + run_detection"
