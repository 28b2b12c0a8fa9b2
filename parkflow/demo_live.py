"""``parkflow demo``: the whole product on embedded defaults, served, with nothing installed.

An in-process MQTT broker; the simulated sample park backfilling a month of readings (with the
faults real gateways produce) and then publishing live; the ingestor validating them into an
SQLite file; and ``parkflow serve`` itself over that file: rollups, detection and the plan,
alerts, realised savings of the park's registered exchange, and the API with its pages. It
prints the URL and a demo operator key and tenant key (kept in the data directory, which is a
demo's only: a real park makes its keys with ``parkflow keys create``).

Running it again resumes from its data directory: the history stays, and the gateways carry
on from the registers they had stored (the time it was stopped is a gap, as a gateway that
was off would leave). ``parkflow demo --once`` prints today's one-shot report instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO

from ingest.pipeline import Ingestor
from ingest.settings import IngestSettings
from parkflow.errors import InputError
from parkflow.model import MeterKey
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import SqliteStore
from parkflow.timeunits import DAY_MS, now_ms
from parkflow.units import convert
from service.exchanges.model import Benefit, Item, Metering, Method, Price
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import Entry, ExchangeRepository, Registration
from service.knowledge import Knowledge, load_knowledge
from service.rollups import RollupWorker
from service.settings import ServiceSettings
from service.simulate.flows import STEP_MS
from service.simulate.messages import Message
from service.simulate.scenario import Scenario, build_scenario
from service.state import Database, upgrade
from service.state.db import sqlite_url

log = logging.getLogger("parkflow.demo")

DEFAULT_DIR = Path("parkflow-demo")
KEYS_FILE = "demo-keys.json"
EXCHANGE_ID = "demo-effluent-cooling"
BACKFILL_CHUNK = 20  # messages per progress step


def serve_demo(
    days: int = 30,
    workdir: Path = DEFAULT_DIR,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    live_interval_s: float = 60.0,
    detect_interval_s: float = 300.0,
    stop: threading.Event | None = None,
) -> int:
    """Run until Ctrl-C (or ``stop``, for tests)."""
    from ingest.mqtt.embedded import EmbeddedBroker
    from service.app import serve

    workdir.mkdir(parents=True, exist_ok=True)
    lock = _lock(workdir)  # one demo per data directory
    _port_free(host, port)  # before a backfill, not after it
    _logging(workdir / "parkflow-demo.log")
    store_path = workdir / "parkflow.sqlite"
    registry_path = workdir / "registry.yaml"
    database_url = sqlite_url(workdir / "parkflow-operations.sqlite")
    knowledge = load_knowledge()
    base = load_registry(SAMPLE_REGISTRY).model
    scenario = build_scenario(base, None, knowledge)
    registry = Registry(scenario.registry)
    registry_path.write_text(scenario.registry_yaml(), encoding="utf-8")

    database = Database(database_url)
    upgrade(database)  # the demo's own database: created at this release's revision
    database.close()

    broker = EmbeddedBroker().start()
    print(f"embedded MQTT broker on 127.0.0.1:{broker.port}; data in {workdir}")
    store = SqliteStore(store_path)
    ingestor = Ingestor(
        IngestSettings(
            mqtt_port=broker.port,
            mqtt_version="3.1.1",
            # the embedded broker starts empty each run, the gateways with it: nothing was
            # queued while the demo was stopped, so no session is claimed across runs
            client_id=f"parkflow-demo-ingest-{os.getpid()}",
            sqlite_path=store_path,
            http_port=None,
        ),
        registry,
        store,
    )
    ingest_thread = threading.Thread(target=ingestor.run, name="ingestor", daemon=True)
    ingest_thread.start()
    live_stop = threading.Event()
    live_thread: threading.Thread | None = None
    try:
        _wait(lambda: ingestor.connected, 20, "the ingestor did not connect")
        resumed = _resume_point(store, registry)
        if resumed is None:
            start_ms, registers = _backfill(scenario, knowledge, days, broker.port, ingestor)
            # the backfill's days rolled up now: the service's cycle leaves the last seconds'
            # arrivals to the next one, and the first detection should see the whole history
            RollupWorker(store, registry, margin_ms=0).run_once(now_ms())
        else:
            # the gateways carry on from their stored registers, from now: the time the demo
            # was stopped is a gap, as a gateway that was off would leave
            _newest, registers = resumed
            start_ms = now_ms() - now_ms() % STEP_MS
            print(f"resuming: history kept in {store_path}, live from the stored registers")
        settings = ServiceSettings(
            registry=registry_path,
            sqlite_path=store_path,
            database_url=database_url,
            http_host=host,
            http_port=port,
            api_key_pepper_file=workdir / "api-key-pepper",
            window_days=min(28, days - 1),
            detect_interval_s=detect_interval_s,
            rollup_interval_s=30.0,
            demo_mode=True,
            web_secure_cookie=False,  # the pages over plain HTTP on loopback
        )
        _register_exchange(settings, registry, knowledge, start_ms - days * DAY_MS)
        keys = _demo_keys(settings, workdir / KEYS_FILE)
        live_thread = threading.Thread(
            target=_live,
            args=(scenario, broker.port, start_ms, registers, live_interval_s, live_stop),
            name="gateways",
            daemon=True,
        )
        live_thread.start()

        def ready(url: str) -> None:
            print(
                f"\nparkflow is serving the demo park at {url}/web (the API at {url}/v1,"
                f" described at {url}/openapi.json)\n"
                f"  operator key: {keys['operator']}\n"
                f"  tenant key ({keys['tenant_id']}): {keys['tenant']}\n"
                "The first detection runs now; the gateways publish live every"
                f" {live_interval_s:g} s. Ctrl-C stops; run it again to resume.\n"
                f"The commands read the same data with PARKFLOW_SQLITE_PATH={store_path}"
                f" PARKFLOW_DATABASE_URL={database_url} PARKFLOW_REGISTRY={registry_path}"
                " (e.g. parkflow plan, parkflow alerts list).",
                flush=True,
            )

        return serve(settings, ready=ready, stop=stop)
    finally:
        live_stop.set()
        if live_thread is not None:
            live_thread.join(timeout=10)
        ingestor.stop()
        ingest_thread.join(timeout=30)
        broker.stop()
        store.close()
        lock.close()


def _backfill(
    scenario: Scenario, knowledge: Knowledge, days: int, port: int, ingestor: Ingestor
) -> tuple[int, Mapping[str, float]]:
    """Publish ``days`` of history with a progress bar; wait until all are stored."""
    from paho.mqtt.enums import MQTTProtocolVersion
    from tqdm import tqdm

    from service.simulate.publish import Publisher
    from service.simulate.run import prepare_scenario

    sim = prepare_scenario(scenario, knowledge, now_ms(), days)
    messages: Sequence[Message] = sim.plan.messages
    with (
        Publisher("127.0.0.1", port, protocol=MQTTProtocolVersion.MQTTv311) as publisher,
        tqdm(total=len(messages), unit="msg", desc=f"backfilling {days} days") as bar,
    ):
        for i in range(0, len(messages), BACKFILL_CHUNK):
            chunk = messages[i : i + BACKFILL_CHUNK]
            publisher.send(chunk)
            bar.update(len(chunk))
    _wait(
        lambda: ingestor.acked_messages >= len(messages),
        300,
        "the ingestor did not store the backfill",
    )
    return sim.end_ms, sim.generated.registers


def _resume_point(store: SqliteStore, registry: Registry) -> tuple[int, dict[str, float]] | None:
    """Where live publishing carries on from a previous run: the newest stored reading's time,
    and each cumulative meter's last register (in the meter's own unit, as gateways send it).
    None: nothing stored yet."""
    newest, registers = 0, {}
    for park in registry.parks.values():
        for tenant in park.tenants:
            for meter in tenant.meters:
                key = MeterKey(park.id, tenant.id, meter.id)
                last, _ = store.neighbours(key, now_ms() + DAY_MS, now_ms() + 2 * DAY_MS)
                if last is None:
                    continue
                newest = max(newest, last.ts_ms)
                if meter.kind == "cumulative":
                    registers[meter.id] = convert(last.value, meter.canonical_unit, meter.unit)
    return None if newest == 0 else (newest, registers)


def _live(
    scenario: Scenario,
    port: int,
    start_ms: int,
    registers: Mapping[str, float],
    interval_s: float,
    stop: threading.Event,
) -> None:
    from paho.mqtt.enums import MQTTProtocolVersion

    from service.simulate.publish import Publisher, live

    try:
        with Publisher("127.0.0.1", port, protocol=MQTTProtocolVersion.MQTTv311) as publisher:
            live(
                scenario,
                publisher,
                start_ms,
                registers,
                interval_s=interval_s,
                stop=stop,
                report=lambda line: log.info("gateways: %s", line),
            )
    except Exception:  # the demo's gateways stopping is worth a line, not a crash
        log.exception("the simulated gateways stopped")


def _register_exchange(
    settings: ServiceSettings, registry: Registry, knowledge: Knowledge, since_ms: int
) -> None:
    """The park's declared reuse of treated effluent for cooling as an exchange in the
    operational database, operating since the history began, so its realised savings are
    measured from the meters: metered as the registry's declared share of the WWTP's effluent
    meter, valued at the province's production water price, the net benefit split in half."""
    park = next(iter(registry.parks.values()))
    declared = next(
        (e for e in park.exchanges if e.from_meter == "wwtp-effluent" and e.quantity_per_day),
        None,
    )
    if declared is None:
        return
    price = knowledge.price("water.potable", park.province)
    displaced = Decimal(str(price.vnd)) if price else Decimal(0)
    transfer = (displaced / 2).quantize(Decimal(1))
    prices = (
        (Item.DISPLACED, displaced, price.source if price else ""),
        (Item.TRANSFER, transfer, "demo: the net benefit split in half"),
    )
    db = Database(settings.resolved_database_url())
    try:
        repo = ExchangeRepository(db)
        found = next((e for e in repo.entries(park.id) if e.id == EXCHANGE_ID), None)
        if found is not None:
            if found.pipeline.stage not in _DEMO_PATH:  # verified, ended: the operator's now
                return
            if found.registration is not None and found.pipeline.stage is not Stage.IDENTIFIED:
                # an earlier run stopped part-way
                _price(repo, found.registration.start, prices)
                _finish(repo, found, since_ms)
                return
        supplier = next(t.id for t in park.tenants for m in t.meters if m.id == declared.from_meter)
        receiver = next(t.id for t in park.tenants for m in t.meters if m.id == declared.to_meter)
        effluent = _mean_per_day(settings, park.id, declared.from_meter)
        per_day = float(declared.quantity_per_day or 0.0)
        if effluent <= per_day:
            return
        yearly = Decimal(str(per_day)) * 365
        projection = Projection(
            per_day,
            int(yearly * displaced),
            int(yearly * transfer),
            int(yearly * (displaced - transfer)),
            water_m3_per_year=float(yearly),
        )
        at = since_ms
        first_day = dt.datetime.fromtimestamp(at / 1000, dt.UTC).date()
        if found is None:
            repo.create(
                EXCHANGE_ID,
                park.id,
                "park environment office",
                "demo",
                projection=projection,
                legal_status="allowed_with_conditions",
                notes="treated effluent for the mill's cooling towers (declared in the registry)",
                now_ms=at,
            )
        share = (Decimal(str(per_day)) / Decimal(str(effluent))).quantize(Decimal("0.0001"))
        # registered and priced while still identified: a run stopped in here starts these
        # again (a registration replaces the earlier one; the prices are read back first)
        repo.register(
            EXCHANGE_ID,
            Registration(
                supplier,
                receiver,
                "water.treated_effluent",
                "m3",
                Benefit.WATER,
                declared.from_meter,
                declared.to_meter,
                Metering(Method.SUPPLIER_SHARE, declared.from_meter, share=share),
                first_day,
            ),
        )
        _price(repo, first_day, prices)
        _finish(repo, repo.get(EXCHANGE_ID), at)
    finally:
        db.close()


def _price(
    repo: ExchangeRepository, since: dt.date, prices: tuple[tuple[Item, Decimal, str], ...]
) -> None:
    """The demo exchange's prices it does not have yet (a run stopped before them)."""
    priced = {p.item for p in repo.exchange(EXCHANGE_ID).prices}
    for item, vnd, source in prices:
        if item not in priced:
            repo.add_price(EXCHANGE_ID, Price(item, since, vnd, source=source), "demo")


# the demo exchange's way from identified to operating, one move each
_DEMO_PATH = (Stage.IDENTIFIED, Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING)


def _finish(repo: ExchangeRepository, entry: Entry, at: int) -> None:
    """Move the demo exchange on from wherever it is to operating: every step is its own
    transaction, so a demo stopped between two resumes here instead of leaving it half-way."""
    notes = {Stage.AGREED: "contract signed"}
    here = _DEMO_PATH.index(entry.pipeline.stage)
    when = max(at + here, entry.pipeline.stage_ms)  # never dated before the stage it left
    for i, stage in enumerate(_DEMO_PATH[here + 1 :], start=1):
        repo.move(EXCHANGE_ID, stage, "demo", notes.get(stage, ""), now_ms=when + i)


def _mean_per_day(settings: ServiceSettings, park: str, meter: str) -> float:
    """The meter's median day over the history, from its day rollups (counter resets and
    rollovers already counted across)."""
    store = SqliteStore(settings.sqlite_path)
    try:
        days = store.day_rollups(park, now_ms() - 60 * DAY_MS, now_ms() + DAY_MS)
        totals = days.loc[(days["meter"] == meter) & (days["coverage"] >= 0.95), "total"]
        return float(totals.median()) if len(totals) else 0.0
    finally:
        store.close()


def _demo_keys(settings: ServiceSettings, path: Path) -> dict[str, str]:
    """An operator key and a tenant key, made once and kept in the data directory (mode
    0600): a demo's convenience, never a real park's."""
    if path.exists():
        keys: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return keys
    from service.api.context import pepper_of
    from service.auth import KeyRepository

    db = Database(settings.resolved_database_url())
    try:
        repo = KeyRepository(db, pepper_of(settings))
        registry = settings.load_registry()
        park = next(iter(registry.parks.values()))
        tenant = next(t.id for t in park.tenants if t.id == "det-phuoc")
        op = repo.create(name="demo operator", role="operator", park=None, tenant=None, by="demo")
        tk = repo.create(name="demo tenant", role="tenant", park=park.id, tenant=tenant, by="demo")
    finally:
        db.close()
    keys = {"operator": op.secret, "tenant": tk.secret, "tenant_id": tenant}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(keys, f)
    return keys


def _lock(workdir: Path) -> IO[str]:
    """An exclusive lock on the data directory for as long as the demo runs (released by the
    kernel when the process ends, however it ends)."""
    import fcntl

    handle = (workdir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InputError(
            f"another parkflow demo is running on {workdir}: stop it, or give --dir another one"
        ) from None
    return handle


def _port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise InputError(
                f"{host}:{port} is taken (another demo?): stop it, or give --port another one"
            ) from None


def _logging(path: Path) -> None:
    """Warnings on the console, everything in the data directory's log (JSON lines)."""
    from parkflow.logs import JsonFormatter, setup_logging

    setup_logging("text", logging.WARNING)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.handlers[0].setLevel(logging.WARNING)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.05)
