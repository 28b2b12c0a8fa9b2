"""Four small parks with the same exchange in each (a WWTP's effluent, a neighbour's cooling
make-up), their day rollups written as the rollup worker writes them: enough for detection to
find one surplus, one opportunity and one planned link per park, quickly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from parkflow.registry import parse_registry
from parkflow.store import SqliteStore
from parkflow.timeunits import HOUR_MS
from service.rollups.compute import day_rows, standard_offset_ms

NOW = pd.Timestamp("2026-11-20T05:00:00Z")
PARKS = ["p1", "p2", "p3", "p4"]

PARK = """
  - id: {park}
    name: Park {park}
    timezone: Asia/Ho_Chi_Minh
    province: Ho Chi Minh City
    tenants:
      - id: wwtp
        name: Central WWTP {park}
        location: {{x_m: 0, y_m: 0}}
        meters:
          - {{id: eff, resource: water.treated_effluent, direction: out, unit: m3, kind: delta, quality: {{qcvn40_column: A}}, destination: discharged}}
      - id: cool
        name: Cool Co {park}
        location: {{x_m: 0, y_m: 260}}
        meters:
          - {{id: cool-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: cooling_makeup}}]}}
"""


def registry_yaml() -> str:
    return "version: 1\nparks:" + "".join(PARK.format(park=p) for p in PARKS)


def fill(store_path: Path, text: str) -> None:
    """Each park's effluent (180 m3/day) and cooling make-up (150 m3/day) over 32 days, as
    the rollup worker's day rows: detection finds the same exchange in every park."""
    registry = parse_registry(text, "registry.yaml")
    end = int(NOW.value // 1_000_000) // HOUR_MS * HOUR_MS
    hours = range(end - 32 * 24 * HOUR_MS, end, HOUR_MS)
    per_hour = {"eff": 7.5, "cool-water": 6.25}
    store = SqliteStore(store_path)
    try:
        for rm in registry.meters():
            quantities = {h: per_hour[rm.meter.id] for h in hours}
            offset = standard_offset_ms(rm.park.timezone)
            store.write_rollups(
                day_rows(rm.key, rm.meter.resource, rm.meter.direction, quantities, offset)
            )
    finally:
        store.close()
