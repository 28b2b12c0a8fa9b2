"""The service's evaluation over a real store and a real operational database: readings and
quarantine go in through the ingestor's own validation, the service evaluates hour by hour,
and a counter reset, a spike or a park gone quiet opens one alert only after the condition
held for its kind's evaluations, and resolves it after it cleared for its kind's. A running
exchange below its projection tells the operators and both its parties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ingest.validate import OUT_OF_RANGE, Validator
from parkflow.model import WriteBatch
from parkflow.registry import Registry
from parkflow.store import SqliteStore
from parkflow.timeunits import HOUR_MS
from service.alerts.kinds import (
    COUNTER_RESET,
    EXCHANGE_UNDERPERFORMING,
    INGEST_LAG,
    METER_STALE,
    SPIKE,
)
from service.alerts.lifecycle import Status
from service.app import _AlertingService
from service.exchanges.model import Benefit, Metering, Method
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.savings import day_savings
from service.settings import ServiceSettings
from service.state import Database
from tests.support.registries import build, meter, park, tenant

T0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS  # an hour boundary
STEP = 15 * 60_000
REGISTRY = build(
    park(
        "p1",
        tenant("t1", meter("m1", "water.potable", "in", "m3", "cumulative", max_gap_s=900)),
        tenant(
            "t2",
            meter("m2", "water.potable", "in", "m3", "cumulative", max_gap_s=900, max=1e6),
        ),
    )
)


@dataclass
class Park:
    """A park publishing every 15 minutes through the ingestor's validation into a store,
    and the service evaluating alerts when told."""

    service: _AlertingService
    store: SqliteStore
    registry: Registry
    values: dict[str, float]
    written_to: int = T0

    def publish(self, meter_id: str, ts: int, value: float) -> None:
        rm = next(m for m in self.registry.meters() if m.meter.id == meter_id)
        topic = f"ip/{rm.park.id}/{rm.tenant.id}/{meter_id}/readings"
        payload = json.dumps({"ts": ts, "value": value}).encode()
        v = Validator(self.registry).validate(topic, payload, ts)
        messages = (v.message,) if v.message is not None else ()
        self.store.write(WriteBatch(tuple(v.readings), tuple(v.rejections), messages))

    def feed_until(self, end_ms: int) -> None:
        """Every meter's register grows by 1 m3 per reading, up to ``end_ms``."""
        for ts in range(self.written_to + STEP, end_ms + 1, STEP):
            for m in self.values:
                self.values[m] += 1.0
                self.publish(m, ts, self.values[m])
        self.written_to = max(self.written_to, end_ms)

    def evaluate_at(self, at_ms: int) -> None:
        now = datetime.fromtimestamp(at_ms / 1000, UTC)
        self.service.settings = self.service.settings.model_copy(update={"now": now})
        self.service.evaluate(None)


@pytest.fixture
def live(db_url: str, database: Database, tmp_path: Path) -> Iterator[Park]:
    settings = ServiceSettings(
        sqlite_path=tmp_path / "store.sqlite",
        database_url=db_url,
        alert_data_window_s=3 * 3600,
    )
    service = _AlertingService(settings, REGISTRY, Database(db_url))
    assert isinstance(service.store, SqliteStore)
    p = Park(service, service.store, REGISTRY, {"m1": 1000.0, "m2": 500.0})
    try:
        p.feed_until(T0)
        yield p
    finally:
        service.close()


def statuses(p: Park, kind: str, subject: str) -> Status | None:
    alert = p.service.alerts.get(kind, subject)
    return None if alert is None else alert.status


def hourly(p: Park, hours: range, kind: str, subject: str) -> list[Status | None]:
    """Evaluate at each hour (readings kept flowing up to it), noting the alert's status."""
    out = []
    for h in hours:
        p.feed_until(T0 + h * HOUR_MS)
        p.evaluate_at(T0 + h * HOUR_MS + 60_000)
        out.append(statuses(p, kind, subject))
    return out


def told(p: Park, kind: str, subject: str) -> list[tuple[str, str]]:
    alert = p.service.alerts.get(kind, subject)
    assert alert is not None
    return [
        (n["payload"]["event"], n["recipient"]) for n in p.service.alerts.notifications(alert.id)
    ]


def test_a_counter_reset_opens_one_alert_after_three_evaluations_and_resolves(live: Park) -> None:
    hourly(live, range(1, 2), COUNTER_RESET.name, "p1/t1/m1")
    live.publish("m1", T0 + HOUR_MS + 5 * 60_000, 3.0)  # the register restarts near zero
    live.values["m1"] = 3.0
    seen = hourly(live, range(2, 8), COUNTER_RESET.name, "p1/t1/m1")
    # held at 2, 3, 4 (in the 3 h window): opens at the third; clear at 5, 6: resolves at 6
    assert seen == [None, None, Status.OPEN, Status.OPEN, Status.RESOLVED, Status.RESOLVED]
    alert = live.service.alerts.get(COUNTER_RESET.name, "p1/t1/m1")
    assert alert is not None and "1 reset of its register" in alert.summary
    assert [h["event"] for h in live.service.alerts.history(alert.id)] == ["opened", "resolved"]
    assert told(live, COUNTER_RESET.name, "p1/t1/m1") == [
        ("opened", "p1/operator/operators"),
        ("resolved", "p1/operator/operators"),
    ]
    assert live.service.alerts.get(COUNTER_RESET.name, "p1/t2/m2") is None


def test_a_spike_the_ingestor_quarantined_opens_one_alert_and_resolves(live: Park) -> None:
    hourly(live, range(1, 2), SPIKE.name, "p1/t2/m2")
    live.publish("m2", T0 + HOUR_MS + 5 * 60_000, 5e6)  # above the meter's max
    (rejected,) = live.store.quarantined(OUT_OF_RANGE)
    assert rejected.meter == "m2"
    seen = hourly(live, range(2, 8), SPIKE.name, "p1/t2/m2")
    assert seen == [None, None, Status.OPEN, Status.OPEN, Status.RESOLVED, Status.RESOLVED]
    alert = live.service.alerts.get(SPIKE.name, "p1/t2/m2")
    assert alert is not None
    assert [h["event"] for h in live.service.alerts.history(alert.id)] == ["opened", "resolved"]
    body = live.service.alerts.notifications(alert.id)[0]["payload"]["notification"]
    assert body["subject"] == "Implausible spike: p1/t2/m2"
    assert "1 value outside its plausible range (max 1e+06 m3)" in body["text"]


def test_a_park_gone_quiet_opens_one_ingest_lag_alert_and_its_return_resolves(
    live: Park,
) -> None:
    assert hourly(live, range(1, 3), INGEST_LAG.name, "p1") == [None, None]
    for h in (3, 4, 5):  # nothing stored after 2 h: lagging at 3 (one) and 4 (two: opens)
        live.evaluate_at(T0 + h * HOUR_MS + 60_000)
    assert statuses(live, INGEST_LAG.name, "p1") is Status.OPEN
    # the shared path lags, not each gateway: no meter_stale alert per meter beside it
    for rm in live.registry.meters():
        k = rm.key
        assert live.service.alerts.get(METER_STALE.name, f"{k.park}/{k.tenant}/{k.meter}") is None
    # the backlog arrives: fresh at 6 (one clear), 7 (two: resolved)
    seen = hourly(live, range(6, 8), INGEST_LAG.name, "p1")
    assert seen == [Status.OPEN, Status.RESOLVED]
    alert = live.service.alerts.get(INGEST_LAG.name, "p1")
    assert alert is not None
    assert [h["event"] for h in live.service.alerts.history(alert.id)] == ["opened", "resolved"]
    assert [e for e, _ in told(live, INGEST_LAG.name, "p1")] == ["opened", "resolved"]


REGISTRATION = Registration(
    supplier="t1",
    receiver="t2",
    resource="water.potable",
    unit="m3",
    benefit=Benefit.WATER,
    from_meter="m1",
    to_meter="m2",
    metering=Metering(Method.TRANSFER_METER, "m1"),
    start=date(2026, 9, 1),
)


def test_an_exchange_below_its_projection_tells_the_operators_and_both_parties(
    live: Park,
) -> None:
    repo = ExchangeRepository(live.service.db)
    repo.create("x1", "p1", "ops", "ops", projection=Projection(240.0, 1, 1, 1), now_ms=1_000)
    for i, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY)):
        repo.move("x1", stage, "ops", now_ms=2_000 + i)
    repo.register("x1", REGISTRATION)
    repo.move("x1", Stage.AGREED, "ops", "signed", now_ms=3_000)
    repo.move("x1", Stage.OPERATING, "ops", now_ms=4_000)
    (ex,) = repo.metered()
    today = datetime.fromtimestamp(T0 / 1000, UTC).date()
    low = [day_savings(ex, today - timedelta(days=d), [5.0] * 24) for d in (3, 2, 1)]
    repo.write_savings(low)  # 120 m3/day of 240 projected, three measured days in a row
    live.evaluate_at(T0 + 60_000)
    assert statuses(live, EXCHANGE_UNDERPERFORMING.name, "x1") is Status.OPEN
    recovered = day_savings(ex, today, [10.0] * 24)
    repo.write_savings([replace(recovered, day=today)])
    live.evaluate_at(T0 + 2 * 60_000)
    assert statuses(live, EXCHANGE_UNDERPERFORMING.name, "x1") is Status.RESOLVED
    got = told(live, EXCHANGE_UNDERPERFORMING.name, "x1")
    for event in ("opened", "resolved"):
        assert sorted(r for e, r in got if e == event) == [
            "p1/operator/operators",
            "p1/t1",
            "p1/t2",
        ]
