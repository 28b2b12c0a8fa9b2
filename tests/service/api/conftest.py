"""The API over real parts: the simulated sample park's readings validated into SQLite or a
real InfluxDB, a real detection run, alerts opened by the service's own evaluation in SQLite or
PostgreSQL, and keys made by the key repository. Parties: tenant A (det-phuoc) and tenant B
(wwtp), which have an exchange between them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ingest.validate import Validator
from parkflow.model import WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import InfluxStore, SqliteStore, Store
from parkflow.timeunits import now_ms
from service.alerts.evaluate import evaluate_alerts
from service.alerts.kinds import METER_STALE
from service.alerts.lifecycle import observe
from service.api.app import create_app
from service.api.context import ApiContext
from service.auth import Pepper
from service.knowledge import load_knowledge
from service.results import ResultsDb
from service.rollups import RollupWorker
from service.runs import run_detection
from service.settings import ServiceSettings
from service.simulate import prepare
from service.state import Database, upgrade
from tests.support.influx import InfluxServer

NOW = pd.Timestamp("2026-11-20T05:00:00Z")
NOW_MS = int(NOW.value // 1_000_000)
DAYS = 30
PARK = "songlam"
A, B = "det-phuoc", "wwtp"
PEPPER = Pepper(b"a test pepper of at least thirty-two characters")


@dataclass
class ParkData:
    registry: Registry
    batches: list[WriteBatch]
    results_path: Path
    store_path: Path


@pytest.fixture(scope="session")
def park_data(tmp_path_factory: pytest.TempPathFactory) -> ParkData:
    """30 days of the default simulated park, validated as the ingestor does, and one
    detection run on them (its results file is copied per test)."""
    sim = prepare(load_registry(SAMPLE_REGISTRY).model, None, load_knowledge(), NOW_MS, DAYS)
    registry = Registry(sim.scenario.registry)
    v = Validator(registry)
    batches = []
    for m in sim.plan.messages:
        good, bad, message = v.validate(m.topic, m.payload, NOW_MS)
        batches.append(WriteBatch(tuple(good), tuple(bad), (message,) if message else ()))
    # a record of each party in quarantine, whatever faults the simulator planted
    for tenant, meter in ((A, "det-water"), (B, "wwtp-effluent")):
        good, bad, message = v.validate(
            f"ip/{PARK}/{tenant}/{meter}/readings", b'{"value": 3}', NOW_MS
        )
        assert not good and bad
        batches.append(WriteBatch((), tuple(bad), (message,) if message else ()))
    root = tmp_path_factory.mktemp("api-park")
    store = SqliteStore(root / "park.sqlite")
    for batch in batches:
        store.write(batch)
    RollupWorker(store, registry, margin_ms=0).run_once(now_ms())  # markers: the wall clock
    results_url = f"sqlite:///{root / 'results.sqlite'}"
    migrated = Database(results_url)
    upgrade(migrated)
    migrated.close()
    results = ResultsDb(results_url)
    run_detection(store, registry, load_knowledge(), results, now=NOW, trigger="test")
    results.close()
    store.close()
    return ParkData(registry, batches, root / "results.sqlite", root / "park.sqlite")


@pytest.fixture(scope="session", params=["sqlite", "influx"])
def park_store(request: pytest.FixtureRequest, park_data: ParkData) -> Iterator[Store]:
    """The park's readings and quarantine in each store, written once: the API only reads
    them."""
    if request.param == "sqlite":
        store: Store = SqliteStore(park_data.store_path)
        yield store
        store.close()
        return
    server: InfluxServer = request.getfixturevalue("influx_server")
    database = f"t_{uuid.uuid4().hex[:12]}"
    influx = InfluxStore(server.url, database, create_database=True, timeout=10.0)
    for batch in park_data.batches:
        influx.write(batch)
    RollupWorker(influx, park_data.registry, margin_ms=0).run_once(now_ms())  # as in SQLite
    try:
        yield influx
    finally:
        influx.close()
        server.query(f'DROP DATABASE "{database}"')


@dataclass
class Api:
    client: TestClient
    ctx: ApiContext
    operator: dict[str, str]
    a: dict[str, str]  # tenant A's headers
    b: dict[str, str]
    b_key_id: str


def _headers(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_api(park: ParkData, store: Store, db: Database, tmp_path: Path) -> Iterator[Api]:
    results = ResultsDb(f"sqlite:///{park.results_path}")
    settings = ServiceSettings(registry=SAMPLE_REGISTRY, api_key_pepper_file=tmp_path / "pepper")
    ctx = ApiContext(settings, park.registry, store, results, db, PEPPER)
    # the service's own evaluation opens the detection alerts; meters silent three times in
    # a row open a stale alert each
    evaluate_alerts(ctx.alerts, store, park.registry, None, NOW_MS)
    _open_detection_alerts(ctx)
    for i in range(3):
        ctx.alerts.apply(
            [
                observe(METER_STALE, f"{PARK}/{A}/det-water", PARK, A, True, "no reading"),
                observe(METER_STALE, f"{PARK}/{B}/wwtp-effluent", PARK, B, True, "no reading"),
            ],
            NOW_MS + i,
        )
    op = ctx.keys.create(name="ops", role="operator", park=None, tenant=None, by="test")
    ka = ctx.keys.create(name="a", role="tenant", park=PARK, tenant=A, by="test")
    kb = ctx.keys.create(name="b", role="tenant", park=PARK, tenant=B, by="test")
    with TestClient(create_app(ctx)) as client:
        yield Api(
            client, ctx, _headers(op.secret), _headers(ka.secret), _headers(kb.secret), kb.key.id
        )
    results.close()


def _open_detection_alerts(ctx: ApiContext) -> None:
    """Surplus and opportunity alerts of the stored run, as ``detection_observations`` makes
    them from a run (here from its stored rows)."""
    from service.alerts.kinds import OPPORTUNITY, SURPLUS

    run = ctx.results.latest_run()
    assert run is not None
    obs = [
        observe(SURPLUS, s["id"], s["park"], s["tenant"], True, f"surplus at {s['meter']}")
        for s in ctx.results.surpluses(run.id)
    ]
    obs += [
        observe(
            OPPORTUNITY,
            o["id"],
            o["park"],
            o["to_tenant"],
            True,
            f"{o['from_tenant']} could supply {o['to_tenant']}",
        )
        for o in ctx.results.opportunities(run.id)
    ]
    ctx.alerts.apply(obs, NOW_MS)


@pytest.fixture
def api(park_data: ParkData, park_store: Store, tmp_path: Path) -> Iterator[Api]:
    """On each store (SQLite, InfluxDB), the operational database in SQLite."""
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(db)
    try:
        yield from make_api(park_data, park_store, db, tmp_path)
    finally:
        db.close()


@pytest.fixture
def api_sql(park_data: ParkData, database: Database, tmp_path: Path) -> Iterator[Api]:
    """On each operational database (SQLite, PostgreSQL), the store in SQLite."""
    store = SqliteStore(park_data.store_path)
    try:
        yield from make_api(park_data, store, database, tmp_path)
    finally:
        store.close()
