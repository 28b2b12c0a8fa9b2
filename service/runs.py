"""One detection run: rollups from the store -> surpluses -> matches -> events -> state.

Everything here but the reads and the final save is pure (detect/, match/, events.py).
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass

import numpy as np
import pandas as pd

from parkflow.registry import Registry
from parkflow.store import Store
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.detect import Surplus, build_panels_from_days, find_surpluses
from service.events import Event, diff, snapshots
from service.knowledge import Knowledge
from service.match import Opportunity, match
from service.results import State

log = logging.getLogger("parkflow.service")

HOUR_COLUMNS = [f"h{i:02d}" for i in range(24)]


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    surpluses: list[Surplus]
    opportunities: list[Opportunity]
    events: list[Event]
    seconds: float


def hourly_from_days(days: pd.DataFrame) -> pd.DataFrame:
    """Day rollups (one row per meter-day, h00..h23) to the long hourly frame detection takes."""
    meta = ["park", "tenant", "meter", "resource", "direction"]
    if days.empty:
        return pd.DataFrame(
            {
                **{c: pd.Series([], dtype=object) for c in meta},
                "hour": pd.Series([], dtype="datetime64[ms, UTC]"),
                "quantity": pd.Series([], dtype=float),
            }
        )
    values = days[HOUR_COLUMNS].to_numpy(dtype=float)
    has = ~np.isnan(values)
    rows, cols = np.nonzero(has)
    hour_ms = days["day"].to_numpy(dtype=np.int64)[rows] + cols.astype(np.int64) * HOUR_MS
    out: dict[str, object] = {}
    for c in meta:  # categoricals: millions of rows share a few thousand ids
        codes, uniques = pd.factorize(days[c], sort=False)
        out[c] = pd.Categorical.from_codes(codes[rows], categories=uniques)
    return pd.DataFrame(
        {
            **out,
            "hour": pd.to_datetime(hour_ms, unit="ms", utc=True),
            "quantity": values[rows, cols],
        }
    )


NO_ROWS = hourly_from_days(pd.DataFrame())


def window_ms(now: pd.Timestamp, window_days: int) -> tuple[int, int]:
    """Read a day extra on each side: detection cuts the window on the park's local days."""
    end = int(now.value // 1_000_000) + DAY_MS
    return end - (window_days + 2) * DAY_MS, end


def run_detection(
    store: Store,
    registry: Registry,
    knowledge: Knowledge,
    state: State,
    *,
    now: pd.Timestamp | None = None,
    window_days: int = 28,
    trigger: str = "manual",
    change_threshold: float = 0.25,
) -> RunResult:
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    started = time.perf_counter()
    run_id = state.start_run(int(time.time() * 1000), trigger, window_days)
    try:
        start_ms, end_ms = window_ms(now, window_days)
        days = store.day_rollups(None, start_ms, end_ms)
        panels = build_panels_from_days(days, registry, now, window_days)
        del days
        hourly = NO_ROWS  # the panels carry the data
        surpluses = find_surpluses(hourly, registry, knowledge, now, window_days, panels=panels)
        opportunities = match(
            surpluses, hourly, registry, knowledge, now, window_days, panels=panels
        )
        previous = state.latest_run()
        before_s, before_o = state.snapshots(previous.id if previous else None)
        events = diff(
            before_s, snapshots(surpluses), before_o, snapshots(opportunities), change_threshold
        )
        state.finish_run(run_id, int(time.time() * 1000), surpluses, opportunities, events)
    except Exception as exc:
        state.fail_run(run_id, int(time.time() * 1000), traceback.format_exc())
        log.exception("detection run failed", extra={"run_id": run_id})
        raise RuntimeError(f"detection run {run_id} failed: {exc}") from exc
    seconds = time.perf_counter() - started
    log.info(
        "detection run done",
        extra={
            "run_id": run_id,
            "surpluses": len(surpluses),
            "opportunities": len(opportunities),
            "events": len(events),
            "seconds": round(seconds, 3),
        },
    )
    return RunResult(run_id, surpluses, opportunities, events, seconds)
