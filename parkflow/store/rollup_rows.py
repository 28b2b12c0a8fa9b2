"""Day rollups: one meter's 24 hourly quantities over one park-local day, as rows and as the
frame detection reads. Every store keeps them; this is the one place their shape is defined."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parkflow.model import Direction, MeterKey
from parkflow.timeunits import HOURS_PER_DAY

if TYPE_CHECKING:  # numpy and pandas are imported lazily: the ingestor never needs them
    import numpy as np
    import pandas as pd

HOUR_COLUMNS = tuple(f"h{i:02d}" for i in range(HOURS_PER_DAY))
ROLLUP_COLUMNS = (
    "park",
    "tenant",
    "meter",
    "resource",
    "direction",
    "day",
    "total",
    "coverage",
    *HOUR_COLUMNS,
)


@dataclass(frozen=True, slots=True)
class DayRollup:
    """One meter's quantities over one park-local day.

    ``day_ms`` is the UTC instant of local midnight (the park's standard offset, see
    ``service.rollups.compute``); ``hours[i]`` is the quantity (canonical unit) that flowed in
    ``[day_ms + i h, day_ms + (i + 1) h)``, NaN when no data covers that hour. ``total`` is the
    sum of the hours with data and ``coverage`` the share of hours with data.
    """

    park: str
    tenant: str
    meter: str
    resource: str
    direction: Direction
    day_ms: int
    hours: tuple[float, ...]
    total: float
    coverage: float

    @classmethod
    def build(
        cls,
        key: MeterKey,
        resource: str,
        direction: Direction,
        day_ms: int,
        hours: Sequence[float],
    ) -> DayRollup:
        if len(hours) != HOURS_PER_DAY:
            raise ValueError(f"a day rollup has {HOURS_PER_DAY} hours, got {len(hours)}")
        values = tuple(float(h) for h in hours)
        present = [h for h in values if not math.isnan(h)]
        return cls(
            key.park,
            key.tenant,
            key.meter,
            resource,
            direction,
            day_ms,
            values,
            math.fsum(present),
            len(present) / HOURS_PER_DAY,
        )

    @property
    def key(self) -> MeterKey:
        return MeterKey(self.park, self.tenant, self.meter)

    def same_as(self, other: DayRollup) -> bool:
        """Equality that treats NaN hours as equal (dataclass ``==`` does not)."""
        return (
            self.key == other.key
            and (self.resource, self.direction, self.day_ms)
            == (other.resource, other.direction, other.day_ms)
            and all(
                a == b or (math.isnan(a) and math.isnan(b))
                for a, b in zip(self.hours, other.hours, strict=True)
            )
            and self.total == other.total
            and self.coverage == other.coverage
        )


def no_hours(meters: int, days: int) -> np.ndarray:
    """``rollup_hours``' answer before any row is found: every hour NaN."""
    import numpy as np

    return np.full((meters, days, HOURS_PER_DAY), np.nan, dtype=np.float64)


def rollup_frame(rows: Sequence[DayRollup]) -> pd.DataFrame:
    """``day_rollups``' frame from row objects (used by the stores that hold rows in memory)."""
    import numpy as np

    hours = np.array([r.hours for r in rows], dtype=np.float64).reshape(len(rows), HOURS_PER_DAY)
    return build_rollup_frame(
        park=[r.park for r in rows],
        tenant=[r.tenant for r in rows],
        meter=[r.meter for r in rows],
        resource=[r.resource for r in rows],
        direction=[str(r.direction) for r in rows],
        day=np.array([r.day_ms for r in rows], dtype=np.int64),
        total=np.array([r.total for r in rows], dtype=np.float64),
        coverage=np.array([r.coverage for r in rows], dtype=np.float64),
        hours=hours,
    )


def build_rollup_frame(
    *,
    park: object,
    tenant: object,
    meter: object,
    resource: object,
    direction: object,
    day: object,
    total: object,
    coverage: object,
    hours: object,
) -> pd.DataFrame:
    """The one place the ``day_rollups`` columns and dtypes are defined, sorted by key and day."""
    import numpy as np
    import pandas as pd

    matrix = np.asarray(hours, dtype=np.float64).reshape(-1, HOURS_PER_DAY)
    columns: dict[str, object] = {
        "park": np.asarray(park, dtype=object),
        "tenant": np.asarray(tenant, dtype=object),
        "meter": np.asarray(meter, dtype=object),
        "resource": np.asarray(resource, dtype=object),
        "direction": np.asarray(direction, dtype=object),
        "day": np.asarray(day, dtype=np.int64),
        "total": np.asarray(total, dtype=np.float64),
        "coverage": np.asarray(coverage, dtype=np.float64),
    }
    for i, name in enumerate(HOUR_COLUMNS):
        columns[name] = matrix[:, i]
    frame = pd.DataFrame(columns, columns=list(ROLLUP_COLUMNS))
    frame = frame.sort_values(["park", "tenant", "meter", "day"], kind="stable")
    return frame.reset_index(drop=True)
