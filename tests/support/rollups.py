"""Day rollups for tests, made the way the service makes them, and detection run on them.

Detection reads only the ``day_rollups`` frame a store returns. Tests state their data as
hourly quantities per meter; this turns them into that frame through the rollup worker's own
day split (``day_rows``) and a store's own read (``MemoryStore.day_rollups``), then detects
as ``run_detection`` does, so a test exercises exactly what production runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from parkflow.model import MeterKey
from parkflow.registry import Registry
from parkflow.store import MemoryStore
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.detect import Surplus
from service.knowledge import Knowledge
from service.match import Opportunity
from service.plan import Plan, make_plan
from service.rollups.compute import day_rows, standard_offset_ms
from service.runs import findings, findings_for_plan


def day_rollups(
    registry: Registry, series: Mapping[str, npt.ArrayLike], start: pd.Timestamp
) -> pd.DataFrame:
    """The day rollup frame of each meter's consecutive hourly quantities, the first in the
    hour starting at ``start``; NaN is an hour without data, which the worker leaves out."""
    first = int(start.value // 1_000_000)
    quantities: dict[str, dict[int, float]] = {}
    for meter, values in series.items():
        array = np.asarray(values, dtype=np.float64)
        hours = first + np.arange(len(array), dtype=np.int64) * HOUR_MS
        has = ~np.isnan(array)
        quantities[meter] = dict(zip(hours[has].tolist(), array[has].tolist(), strict=True))
    return day_rollup_frame(registry, quantities)


def day_rollup_frame(
    registry: Registry, quantities: Mapping[str, Mapping[int, float]]
) -> pd.DataFrame:
    """The day rollup frame a store returns for these quantities per meter id and hour
    (its start, UTC ms), split into the park's local days as the rollup worker does."""
    owner = {rm.meter.id: rm for rm in registry.meters()}
    store = MemoryStore()
    for meter, hours in quantities.items():
        rm = owner[meter]
        key = MeterKey(rm.park.id, rm.tenant.id, meter)
        offset = standard_offset_ms(rm.park.timezone)
        store.write_rollups(day_rows(key, rm.meter.resource, rm.meter.direction, hours, offset))
    hours_ms = [h for hours in quantities.values() for h in hours]
    if not hours_ms:
        return store.day_rollups(None, 0, 0)
    return store.day_rollups(None, min(hours_ms) - DAY_MS, max(hours_ms) + DAY_MS)


def detect(
    registry: Registry,
    days: pd.DataFrame,
    knowledge: Knowledge,
    now: pd.Timestamp,
    window_days: int = 28,
    *,
    limit: int | None = None,
) -> tuple[list[Surplus], list[Opportunity]]:
    """Surpluses and ranked opportunities in the day rollups, as ``run_detection`` finds them."""
    surpluses, opportunities, _ = findings(days, registry, knowledge, now, window_days, limit=limit)
    return surpluses, opportunities


def detect_and_plan(
    registry: Registry,
    days: pd.DataFrame,
    knowledge: Knowledge,
    now: pd.Timestamp,
    window_days: int = 28,
) -> tuple[list[Surplus], list[Opportunity], Plan]:
    """Surpluses, ranked opportunities and the park's plan, as ``run_detection`` makes them."""
    surpluses, matches, _ = findings_for_plan(days, registry, knowledge, now, window_days)
    plan, _ = make_plan(matches.problems)
    return surpluses, matches.opportunities, plan
