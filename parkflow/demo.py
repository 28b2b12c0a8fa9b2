"""``parkflow demo``: the whole pipeline on embedded defaults, with nothing installed.

An in-process MQTT broker; the simulated sample park (12 tenants, 36 meters) publishing a month
of readings with the faults real gateways produce (counter resets, gaps, duplicates, late and
out-of-order batches, spikes); the ingestor validating them into an SQLite file; then the
service's rollups and a detection run, and what it found: surpluses, ranked and explained
exchange opportunities (alternatives), and the park's plan among them with its totals.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from ingest.pipeline import Ingestor
from ingest.settings import IngestSettings
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import ReadingQuery, SqliteStore
from parkflow.tables import (
    ALTERNATIVES_NOTE,
    opportunities_table,
    plan_table,
    plan_totals,
    with_plan,
)
from parkflow.timeunits import now_ms
from service.knowledge import load_knowledge
from service.results import ResultsDb
from service.rollups import RollupWorker
from service.runs import run_detection
from service.simulate.run import prepare, publish
from service.state import Database, upgrade
from service.state.db import sqlite_url


def run_demo(days: int = 30, workdir: Path | None = None, top: int = 5) -> int:
    from ingest.mqtt.embedded import EmbeddedBroker

    workdir = workdir or Path(tempfile.mkdtemp(prefix="parkflow-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db, operations = workdir / "parkflow.sqlite", workdir / "parkflow-operations.sqlite"
    knowledge = load_knowledge()
    sim = prepare(load_registry(SAMPLE_REGISTRY).model, None, knowledge, now_ms(), days)
    scenario, plan, end = sim.scenario, sim.plan, sim.end_ms
    registry = Registry(scenario.registry)

    broker = EmbeddedBroker().start()
    print(f"embedded MQTT broker on 127.0.0.1:{broker.port}; data in {workdir}")
    settings = IngestSettings(
        mqtt_port=broker.port,
        mqtt_version="3.1.1",
        client_id="parkflow-demo-ingest",
        sqlite_path=db,
        http_port=None,
    )
    store = SqliteStore(db)
    ingestor = Ingestor(settings, registry, store)
    worker = threading.Thread(target=ingestor.run, name="ingestor")
    worker.start()
    started = time.monotonic()
    try:
        _wait(lambda: ingestor.connected, 20, "the ingestor did not connect")
        report = publish(sim, port=broker.port, mqtt_version="3.1.1", report=lambda _: None)
        print(
            f"{len(scenario.park.tenants)} tenants' gateways published {days} days: {report.line()}"
        )
        _wait(
            lambda: ingestor.acked_messages >= len(plan.messages),
            120,
            "the ingestor did not acknowledge everything",
        )
    finally:
        ingestor.stop()
        worker.join(timeout=30)
        broker.stop()
    print(f"ingested in {time.monotonic() - started:.1f} s")
    _report_ingest(store)

    RollupWorker(store, registry, margin_ms=0).run_once(now_ms())
    # the demo's own operational database, created at this release's revision
    database = Database(sqlite_url(operations))
    upgrade(database)
    state = ResultsDb(database)
    try:
        result = run_detection(
            store,
            registry,
            knowledge,
            state,
            now=pd.Timestamp(end, unit="ms", tz="UTC"),
            window_days=min(28, days - 1),
        )
        print(
            f"\ndetection: {len(result.surpluses)} surpluses,"
            f" {len(result.opportunities)} exchange opportunities ({result.seconds:.1f} s)\n"
        )
        planned = state.plan_links(result.run_id)
        every = state.opportunities(result.run_id)
        rows = with_plan(every[:top], planned)
        print(f"{ALTERNATIVES_NOTE}\n")
        if len(every) > top:
            print(f"the first {top} of {len(every)} (parkflow opportunities --explain: all)\n")
        print(opportunities_table(rows, explain=True))
        print(f"\n{plan_totals(state.plan(result.run_id))}:\n")
        print(plan_table(planned))
    finally:
        database.close()
        store.close()
    print(
        f"\nexplore: PARKFLOW_SQLITE_PATH={db} PARKFLOW_DATABASE_URL={sqlite_url(operations)}"
        " parkflow plan   (or: parkflow opportunities --explain, parkflow surpluses)"
    )
    return 0


def _report_ingest(store: SqliteStore) -> None:
    counts = store.quarantine_counts()
    stored = len(store.readings(ReadingQuery()))
    print(f"stored {stored} readings; quarantined {sum(counts.values())}:")
    for reason, n in sorted(counts.items()):
        example = store.quarantined(reason=reason, limit=1)[0]
        print(f"  {reason}: {n}  e.g. {example.topic}: {example.detail}")


def _wait(cond: object, timeout: float, what: str) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.05)
