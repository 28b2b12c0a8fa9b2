"""Time in epoch milliseconds, the unit every timestamp in parkflow is kept in.

Integers, not datetimes, because the hot paths (ingest, rollups) do arithmetic on millions of
them; the names say what a number of milliseconds is.
"""

from __future__ import annotations

import time

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
HOURS_PER_DAY = 24


def now_ms() -> int:
    """Wall time: several hosts compare these, so never a monotonic clock."""
    return time.time_ns() // 1_000_000


def days_ms(days: float) -> int:
    return int(days * DAY_MS)


def hours_ms(hours: float) -> int:
    return int(hours * HOUR_MS)
