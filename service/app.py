"""``parkflow serve``: keep rollups current and run detection on a schedule."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import pandas as pd

from ingest.app import store_from_settings
from ingest.registry import load_registry
from service.detection import run_detection
from service.knowledge import load_knowledge
from service.rollups.worker import RollupWorker
from service.settings import ServiceSettings
from service.state import State

log = logging.getLogger("parkflow.service")


def detect_now(settings: ServiceSettings, trigger: str = "manual") -> int:
    """Bring rollups up to date, run detection once; returns the run id."""
    registry = load_registry(settings.registry)
    knowledge = load_knowledge(override=str(settings.knowledge) if settings.knowledge else None)
    store = store_from_settings(settings)
    state = State(settings.state_path)
    try:
        worker = RollupWorker(store, registry)
        # Roll up everything written so far: the next cycle re-reads the margin anyway.
        worker.run_once(int(time.time() * 1000) + worker.margin_ms)
        result = run_detection(
            store,
            registry,
            knowledge,
            state,
            now=pd.Timestamp(settings.now) if settings.now else None,
            window_days=settings.window_days,
            trigger=trigger,
            change_threshold=settings.change_threshold,
        )
        return result.run_id
    finally:
        store.close()
        state.close()


def serve(settings: ServiceSettings) -> int:
    registry = load_registry(settings.registry)
    knowledge = load_knowledge(override=str(settings.knowledge) if settings.knowledge else None)
    store = store_from_settings(settings)
    state = State(settings.state_path)
    worker = RollupWorker(store, registry)
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
                    worker.run_once(int(time.time() * 1000))
                except Exception:  # the store may be down: try again next cycle
                    log.exception("rollup cycle failed")
                next_rollup = now + settings.rollup_interval_s
            if now >= next_detect:
                try:
                    run_detection(
                        store,
                        registry,
                        knowledge,
                        state,
                        window_days=settings.window_days,
                        trigger="schedule",
                        change_threshold=settings.change_threshold,
                    )
                except Exception:
                    log.exception("scheduled detection failed")
                next_detect = now + settings.detect_interval_s
            stop.wait(max(0.0, min(next_rollup, next_detect) - time.monotonic()))
    finally:
        store.close()
        state.close()
    return 0
