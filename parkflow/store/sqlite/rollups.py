"""Day rollups and checkpoints in SQLite (the rollup worker's and the ingestors' state)."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from parkflow.model import Direction, MeterKey
from parkflow.store.rollup_rows import DayRollup, build_rollup_frame, no_hours
from parkflow.store.sqlite.connection import Connection, read_error
from parkflow.timeunits import DAY_MS, HOURS_PER_DAY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


_DIRECTIONS = {d.value: d for d in Direction}  # an enum call per row was a tenth of a read
_KEYS_PER_STATEMENT = 300  # 900 parameters and the day: under SQLite's oldest limit (999)


class RollupTables(Connection):
    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        values = [
            (
                r.day_ms,
                r.park,
                r.tenant,
                r.meter,
                r.resource,
                str(r.direction),
                r.total,
                r.coverage,
                _pack_hours(r.hours),
            )
            for r in rows
        ]
        self._transaction(
            lambda conn: conn.executemany(
                "INSERT OR REPLACE INTO rollups (day_ms, park, tenant, meter, resource,"
                " direction, total, coverage, hours) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        )

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        """One statement per day and chunk of meters (a row-value IN list, on the primary
        key's day first), not one per row: a year of 1,000 exchanges' meters was 365,000."""
        by_day: dict[int, list[MeterKey]] = {}
        for key, day in dict.fromkeys(wanted):
            by_day.setdefault(day, []).append(key)
        out: list[DayRollup] = []
        with self._lock:
            try:
                for day, keys in sorted(by_day.items()):
                    for i in range(0, len(keys), _KEYS_PER_STATEMENT):
                        chunk = keys[i : i + _KEYS_PER_STATEMENT]
                        sql = (
                            "SELECT park, tenant, meter, resource, direction, total, coverage,"
                            " hours FROM rollups WHERE day_ms = ? AND (park, tenant, meter) IN"
                            f" (VALUES {', '.join(['(?, ?, ?)'] * len(chunk))})"
                        )
                        params: list[Any] = [day]
                        for k in chunk:
                            params += (k.park, k.tenant, k.meter)
                        for row in self._conn.execute(sql, params):
                            out.append(
                                DayRollup(
                                    row[0],
                                    row[1],
                                    row[2],
                                    row[3],
                                    _DIRECTIONS[row[4]],
                                    day,
                                    _unpack_hours(row[7]),
                                    row[5],
                                    row[6],
                                )
                            )
            except sqlite3.Error as exc:
                raise read_error(exc) from exc
        return out

    def rollup_hours(self, keys: Sequence[MeterKey], start_ms: int, days: int) -> np.ndarray:
        """One statement per chunk of meters for all the days: the days and the meters as two
        constant tables, crossed in that order (``CROSS JOIN`` keeps it), each pair one primary
        key look-up; a row comes back as (meter's position, day's position, packed hours), its
        positions the tables' own integer literals, so no row is matched up in Python."""
        import numpy as np

        out = no_hours(len(keys), days)
        if not keys or days <= 0:
            return out
        day_table = ", ".join(f"({d}, {int(start_ms) + d * DAY_MS})" for d in range(days))
        found: list[tuple[int, int, bytes]] = []
        with self._lock:
            try:
                for first in range(0, len(keys), _KEYS_PER_STATEMENT):
                    chunk = keys[first : first + _KEYS_PER_STATEMENT]
                    meter_table = ", ".join(f"({first + i}, ?, ?, ?)" for i in range(len(chunk)))
                    sql = (
                        f"WITH d(j, day_ms) AS (VALUES {day_table}),"
                        f" m(i, park, tenant, meter) AS (VALUES {meter_table})"
                        " SELECT m.i, d.j, r.hours FROM d CROSS JOIN m JOIN rollups r"
                        " ON r.day_ms = d.day_ms AND r.park = m.park AND r.tenant = m.tenant"
                        " AND r.meter = m.meter"
                    )
                    params = [v for k in chunk for v in (k.park, k.tenant, k.meter)]
                    found += self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise read_error(exc) from exc
        if found:
            meter, day, packed = zip(*found, strict=True)
            hours = np.frombuffer(b"".join(packed), dtype="<f8")
            out[np.array(meter), np.array(day)] = hours.reshape(len(found), HOURS_PER_DAY)
        return out

    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        import numpy as np

        sql = (
            "SELECT park, tenant, meter, resource, direction, day_ms, total, coverage, hours"
            " FROM rollups WHERE day_ms >= ? AND day_ms < ?"
        )
        params: list[Any] = [start_ms, end_ms]
        if park is not None:
            sql += " AND park = ?"
            params.append(park)
        rows = self._fetch(sql, params)
        if not rows:
            return build_rollup_frame(
                park=[], tenant=[], meter=[], resource=[], direction=[],
                day=[], total=[], coverage=[], hours=np.zeros((0, HOURS_PER_DAY)),
            )  # fmt: skip
        cols = list(zip(*rows, strict=True))
        hours = np.frombuffer(b"".join(cols[8]), dtype="<f8").reshape(len(rows), HOURS_PER_DAY)
        return build_rollup_frame(
            park=cols[0],
            tenant=cols[1],
            meter=cols[2],
            resource=cols[3],
            direction=cols[4],
            day=cols[5],
            total=cols[6],
            coverage=cols[7],
            hours=hours,
        )

    def get_checkpoint(self, name: str) -> int | None:
        rows = self._fetch("SELECT value FROM checkpoints WHERE name = ?", [name])
        return int(rows[0][0]) if rows else None

    def set_checkpoint(self, name: str, value: int) -> None:
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO checkpoints (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        )


def _pack_hours(hours: Sequence[float]) -> bytes:
    """24 little-endian float64 (NaN kept as NaN: SQLite would turn a NaN REAL into NULL)."""
    return struct.pack(f"<{HOURS_PER_DAY}d", *hours)


def _unpack_hours(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{HOURS_PER_DAY}d", blob)
