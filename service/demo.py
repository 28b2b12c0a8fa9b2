"""``parkflow demo``: see readings flow with nothing installed.

An in-process broker, the sample park's meters publishing a few hours of readings (with a
counter reset, a duplicate, late readings and some bad messages), the ingestor writing to an
SQLite file, and a summary of what was stored and what was quarantined.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.counters import intervals
from ingest.model import MeterKind
from ingest.pipeline import Ingestor
from ingest.registry import SAMPLE_REGISTRY, Registry, ResolvedMeter, load_registry
from ingest.settings import IngestSettings
from ingest.store import ReadingQuery, SqliteStore
from ingest.validate import topic_for

STEP_MS = 5 * 60 * 1000


def sample_messages(registry: Registry, minutes: int, now_ms: int) -> list[tuple[str, bytes]]:
    """A few hours of plausible readings for every meter, plus faults a real park produces."""
    rnd = random.Random(7)
    start = now_ms - minutes * 60_000
    start -= start % STEP_MS
    out: list[tuple[str, bytes]] = []
    for rm in registry.meters():
        m = rm.meter
        topic = topic_for(rm.park.id, rm.tenant.id, m.id)
        level = _level(rm)
        register = 1000.0 * level
        batch = []
        for i, ts in enumerate(range(start, now_ms, STEP_MS)):
            hour = (ts // 3_600_000 + 7) % 24  # local time in Viet Nam
            shape = 0.6 + 0.4 * math.sin((hour - 6) / 24 * 2 * math.pi)
            qty = max(0.0, level * shape * rnd.uniform(0.85, 1.15))
            if m.kind is MeterKind.CUMULATIVE:
                register += qty
                if m.id == "mf-water" and i == 10:
                    register = qty  # the meter was replaced: its register restarts near zero
                value = register
            elif m.kind is MeterKind.DELTA:
                value = qty
            else:
                value = qty * 12  # a rate per hour, readings every 5 minutes
            if m.max is not None:
                value = min(value, m.max)
            batch.append({"ts": ts, "value": round(value, 3), "seq": i})
        # gateways batch: one message per hour of readings, the last hour sent twice, and
        # one hour arriving after the next (late readings)
        chunks = [batch[k : k + 12] for k in range(0, len(batch), 12)]
        if len(chunks) > 2:
            chunks[-2], chunks[-3] = chunks[-3], chunks[-2]
            chunks.append(chunks[-1])
        out += [(topic, json.dumps(c).encode()) for c in chunks]
    park = registry.model.parks[0].id
    out += [
        (f"ip/{park}/nobody/x1/readings", b'{"ts": 0, "value": 1}'),
        (topic_for(park, "thep-an", "thep-elec"), b'{"ts": "yesterday", "value": 1}'),
        (
            topic_for(park, "thep-an", "thep-elec"),
            json.dumps({"ts": now_ms, "value": 1e9}).encode(),
        ),
        (topic_for(park, "det-phuoc", "det-water"), b'{"ts": 1, "value": NaN}'),
        (
            topic_for(park, "det-phuoc", "thep-water"),
            json.dumps({"ts": now_ms, "value": 3}).encode(),
        ),
        (topic_for(park, "wwtp", "wwtp-effluent"), b"\xff\xfe"),
    ]
    return out


def _level(rm: ResolvedMeter) -> float:
    """A plausible quantity per 5 minutes, in the meter's own unit."""
    per_canonical = {"m3": 4.0, "kWh": 150.0, "t": 0.05}[rm.meter.canonical_unit.split("/")[0]]
    return per_canonical / rm.to_canonical


def run_demo(minutes: int = 180, db: Path | None = None) -> int:
    from ingest.mqtt.embedded import EmbeddedBroker

    db = db or Path(tempfile.mkdtemp(prefix="parkflow-demo-")) / "parkflow.sqlite"
    registry = load_registry(SAMPLE_REGISTRY)
    broker = EmbeddedBroker().start()
    print(f"embedded MQTT broker on 127.0.0.1:{broker.port}; store: {db}")
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
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="parkflow-demo-gateway")
    try:
        _wait(lambda: ingestor.connected, 20, "the ingestor did not connect")
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        messages = sample_messages(registry, minutes, int(time.time() * 1000))
        infos = [publisher.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
        print(f"published {len(messages)} messages from {len(registry.meters())} meters")
        _wait(
            lambda: ingestor.metrics.acked._value.get() >= len(messages),
            60,
            "not everything was acked",
        )
        _report(store, registry)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        ingestor.stop()
        worker.join(timeout=30)
        broker.stop()
        store.close()
    return 0


def _report(store: SqliteStore, registry: Registry) -> None:
    rows = store.readings(ReadingQuery())
    by_meter: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        by_meter.setdefault(r.meter, []).append((r.ts_ms, r.value))
    print(f"\nstored {len(rows)} readings")
    print(
        f"{'tenant':<15} {'meter':<15} {'resource':<26} {'dir':<4} {'kind':<11} {'n':>4} {'quantity':>12}"
    )
    for rm in registry.meters():
        m = rm.meter
        points = by_meter.get(m.id, [])
        total = sum(
            iv.quantity
            for iv in intervals(m.kind, points, rollover=m.rollover, integration=m.integration_rule)
        )
        unit = m.canonical_unit.split("/")[0]
        print(
            f"{rm.tenant.id:<15} {m.id:<15} {m.resource:<26} {m.direction.value:<4} "
            f"{m.kind.value:<11} {len(points):>4} {total:>10.2f} {unit}"
        )
    print("\nquarantined (reason: count):")
    for reason, n in sorted(store.quarantine_counts().items()):
        example = store.quarantined(reason=reason, limit=1)[0]
        print(f"  {reason}: {n}  e.g. {example.topic}: {example.detail}")


def _wait(cond: object, timeout: float, what: str) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.05)
