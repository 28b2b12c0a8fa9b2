"""Exchanges' realised savings per day in SQLite (``savings``, docs/schema.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parkflow.store.savings_rows import SAVINGS_FIELDS, SavingsPoint
from parkflow.store.sqlite.connection import Connection

_COLUMNS = ("park", "exchange", "day_ms", *SAVINGS_FIELDS)


class SavingsTables(Connection):
    def write_savings(self, points: Sequence[SavingsPoint]) -> None:
        values = [tuple(_value(getattr(p, c)) for c in _COLUMNS) for p in points]
        marks = ", ".join("?" for _ in _COLUMNS)
        self._transaction(
            lambda conn: conn.executemany(
                f"INSERT OR REPLACE INTO savings ({', '.join(_COLUMNS)}) VALUES ({marks})",
                values,
            )
        )

    def savings_points(self, park: str | None, start_ms: int, end_ms: int) -> list[SavingsPoint]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM savings WHERE day_ms >= ? AND day_ms < ?"
        params: list[Any] = [start_ms, end_ms]
        if park is not None:
            sql += " AND park = ?"
            params.append(park)
        sql += " ORDER BY park, exchange, day_ms"
        return [_point(row) for row in self._fetch(sql, params)]


def _value(v: object) -> object:
    return int(v) if isinstance(v, bool) else v


def _point(row: tuple[Any, ...]) -> SavingsPoint:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["disagrees"] = bool(values["disagrees"])
    return SavingsPoint(**values)
