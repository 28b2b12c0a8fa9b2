"""``parkflow serve``: keep rollups current and run detection on a schedule."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import pandas as pd

from parkflow.registry import Registry
from parkflow.store import store_from_settings
from parkflow.timeunits import DAY_MS, days_ms, now_ms
from service.alerts.evaluate import AlertPolicy, evaluate_alerts
from service.alerts.repository import AlertRepository
from service.exchanges.detection import with_registered
from service.exchanges.repository import ExchangeRepository
from service.knowledge import load_knowledge
from service.results import ResultsDb
from service.rollups.worker import RollupWorker, RunStats
from service.runs import RunResult, run_detection
from service.settings import ServiceSettings
from service.state import Database, require_current

log = logging.getLogger("parkflow.service")


class _Service:
    """What both entry points open and close: registry, knowledge, store, state, rollups."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.registry = settings.load_registry()
        knowledge = str(settings.knowledge) if settings.knowledge else None
        self.knowledge = load_knowledge(override=knowledge)
        self.store = store_from_settings(settings)
        self.state = ResultsDb(settings.state_path)
        self.rollups = RollupWorker(self.store, self.registry)

    def detection_registry(self) -> Registry:
        """The registry detection subtracts exchanges by (the long-running service adds the
        database's running exchanges)."""
        return self.registry

    def detect(self, trigger: str) -> RunResult:
        s = self.settings
        return run_detection(
            self.store,
            self.detection_registry(),
            self.knowledge,
            self.state,
            now=pd.Timestamp(s.now) if s.now else None,
            window_days=s.window_days,
            trigger=trigger,
            change_threshold=s.change_threshold,
        )

    def close(self) -> None:
        self.store.close()
        self.state.close()


class _AlertingService(_Service):
    """The long-running service also keeps alerts: it refuses to start on a database that is
    not at this code's revision rather than fail on a missing table mid-cycle."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.db = Database(settings.resolved_database_url())
        try:
            require_current(self.db)
            super().__init__(settings)
        except BaseException:
            self.db.close()
            raise
        self.alerts = AlertRepository(self.db)
        self.alert_policy = AlertPolicy(
            stale_factor=settings.stale_factor,
            quarantine_per_hour=settings.quarantine_alert_per_hour,
        )

    def detection_registry(self) -> Registry:
        return with_registered(self.registry, ExchangeRepository(self.db).metered())

    def evaluate(self, run: RunResult | None) -> None:
        s = self.settings
        at = int(pd.Timestamp(s.now).value // 1_000_000) if s.now else now_ms()
        evaluate_alerts(self.alerts, self.store, self.registry, run, at, self.alert_policy)

    def close(self) -> None:
        super().close()
        self.db.close()


def rebuild_rollups(settings: ServiceSettings, days: float) -> RunStats:
    """Recompute the rollups of the last ``days`` local days from the readings (after a
    registry change: rollups are derived data, rebuilding is safe)."""
    registry = settings.load_registry()
    store = store_from_settings(settings)
    try:
        end = now_ms() + DAY_MS
        return RollupWorker(store, registry).rebuild(end - days_ms(days + 1), end)
    finally:
        store.close()


def detect_now(settings: ServiceSettings, trigger: str = "manual") -> int:
    """Bring rollups up to date, run detection once; returns the run id."""
    service = _Service(settings)
    try:
        # Roll up everything written so far: the next cycle re-reads the margin anyway.
        service.rollups.run_once(now_ms() + service.rollups.margin_ms)
        return service.detect(trigger).run_id
    finally:
        service.close()


def serve(settings: ServiceSettings) -> int:
    service = _AlertingService(settings)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    next_rollup = next_detect = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_rollup:
                try:
                    service.rollups.run_once(now_ms())
                except Exception:  # the store may be down: try again next cycle
                    log.exception("rollup cycle failed")
                next_rollup = now + settings.rollup_interval_s
            if now >= next_detect:
                run: RunResult | None = None
                try:
                    run = service.detect("schedule")
                except Exception:
                    log.exception("scheduled detection failed")
                try:  # data quality is worth alerting on even when detection failed
                    service.evaluate(run)
                except Exception:
                    log.exception("alert evaluation failed")
                next_detect = now + settings.detect_interval_s
            stop.wait(max(0.0, min(next_rollup, next_detect) - time.monotonic()))
    finally:
        service.close()
    return 0
