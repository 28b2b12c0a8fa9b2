"""SqliteStore: every port in one SQLite file, for single-host deployments.

Readings are keyed by (park, tenant, meter, ts_ms) and written with ``INSERT OR REPLACE``, so
redelivered readings are stored once and a rewrite replaces the old point (last write wins,
as in InfluxDB). The same transaction writes the batch's quarantine records (``INSERT OR
IGNORE`` by identity) and upserts its change markers, so a marker is durable exactly when its
readings are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from parkflow.model import Direction, MeterKey, QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.store.ports import MeterRange, RangeData, ReadingQuery, touched_hours
from parkflow.store.sqlite.connection import read_error
from parkflow.store.sqlite.rollups import RollupTables
from parkflow.store.sqlite.savings import SavingsTables


class SqliteStore(RollupTables, SavingsTables):
    def write(self, batch: WriteBatch) -> None:
        readings = [
            (
                r.park,
                r.tenant,
                r.meter,
                r.ts_ms,
                r.resource,
                str(r.direction),
                r.value,
                r.seq,
            )
            for r in batch.readings
        ]
        rejections = [
            (
                q.message_id,
                q.slot,
                q.reason,
                q.detail,
                q.topic,
                q.received_ms,
                q.index,
                q.park,
                q.tenant,
                q.meter,
            )
            for q in batch.rejections
        ]
        messages = [
            (m.message_id, m.topic, m.received_ms, m.payload, m.size, m.park, m.tenant, m.meter)
            for m in batch.messages
        ]
        hours = [
            (key.park, key.tenant, key.meter, hour)
            for key, touched in touched_hours(batch.readings).items()
            for hour in sorted(touched)
        ]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO readings (park, tenant, meter, ts_ms, resource,"
                " direction, value, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                readings,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO quarantine (message_id, slot, reason, detail, topic,"
                " received_ms, idx, park, tenant, meter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rejections,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO quarantine_message (message_id, topic, received_ms,"
                " payload, size, park, tenant, meter) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                messages,
            )
            # Stamped under the write lock, so markers are ordered like the commits.
            written = self._clock()
            conn.executemany(
                "INSERT INTO changes (park, tenant, meter, hour_ms, written_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (park, tenant, meter, hour_ms)"
                " DO UPDATE SET written_ms = excluded.written_ms",
                [(*h, written) for h in hours],
            )

        self._transaction(work)

    def readings(self, query: ReadingQuery) -> list[Reading]:
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("park", query.park),
            ("tenant", query.tenant),
            ("meter", query.meter),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if query.start_ms is not None:
            conditions.append("ts_ms >= ?")
            params.append(query.start_ms)
        if query.end_ms is not None:
            conditions.append("ts_ms < ?")
            params.append(query.end_ms)
        sql = "SELECT park, tenant, meter, resource, direction, ts_ms, value, seq FROM readings"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY park, tenant, meter, ts_ms"
        return [_reading(row) for row in self._fetch(sql, params)]

    def quarantined(
        self,
        reason: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
        *,
        until_ms: int | None = None,
        park: str | None = None,
        tenant: str | None = None,
        meter: str | None = None,
    ) -> list[Rejection]:
        conditions: list[str] = []
        params: list[Any] = []
        for condition, value in (
            ("reason = ?", reason),
            ("received_ms >= ?", since_ms),
            ("received_ms < ?", until_ms),
            ("park = ?", park),
            ("tenant = ?", tenant),
            ("meter = ?", meter),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        sql = (
            "SELECT reason, detail, topic, received_ms, message_id, idx, park, tenant, meter"
            " FROM quarantine"
        )
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY received_ms DESC, id DESC LIMIT ?"
        params.append(max(limit, 0))
        return [Rejection(*row) for row in self._fetch(sql, params)]

    def quarantined_messages(
        self, rejections: Sequence[Rejection]
    ) -> dict[str, QuarantinedMessage]:
        ids = sorted({r.message_id for r in rejections})
        out: dict[str, QuarantinedMessage] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self._fetch(
                "SELECT message_id, topic, received_ms, payload, size, park, tenant, meter"
                f" FROM quarantine_message WHERE message_id IN ({', '.join('?' * len(part))})",
                list(part),
            )
            for row in rows:
                out[row[0]] = QuarantinedMessage(row[0], row[1], row[2], bytes(row[3]), *row[4:])
        return out

    def quarantine_counts(self) -> dict[str, int]:
        rows = self._fetch("SELECT reason, count(*) FROM quarantine GROUP BY reason", [])
        return {reason: count for reason, count in rows}

    # -- change markers ------------------------------------------------------------------------

    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        rows = self._fetch(
            "SELECT park, tenant, meter, hour_ms FROM changes"
            " WHERE written_ms > ? AND written_ms <= ? ORDER BY park, tenant, meter, hour_ms",
            [after_ms, until_ms],
        )
        return [(MeterKey(p, t, m), h) for p, t, m, h in rows]

    def prune_changes(self, before_ms: int) -> None:
        self._transaction(
            lambda conn: conn.execute("DELETE FROM changes WHERE written_ms < ?", (before_ms,))
        )

    # -- reads for the rollup worker -----------------------------------------------------------

    _KEY = "FROM readings WHERE park = ? AND tenant = ? AND meter = ?"
    _BEFORE = f"SELECT ts_ms, value {_KEY} AND ts_ms < ? ORDER BY ts_ms DESC LIMIT 1"
    _AFTER = f"SELECT ts_ms, value {_KEY} AND ts_ms >= ? ORDER BY ts_ms LIMIT 1"
    _RANGE = f"SELECT ts_ms, value {_KEY} AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
    _ROW = "SELECT park, tenant, meter, resource, direction, ts_ms, value, seq"

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        k = [key.park, key.tenant, key.meter]
        before = self._fetch(
            f"{self._ROW} {self._KEY} AND ts_ms < ? ORDER BY ts_ms DESC LIMIT 1", [*k, start_ms]
        )
        after = self._fetch(
            f"{self._ROW} {self._KEY} AND ts_ms >= ? ORDER BY ts_ms LIMIT 1", [*k, end_ms]
        )
        return (
            _reading(before[0]) if before else None,
            _reading(after[0]) if after else None,
        )

    def read_ranges(self, ranges: Sequence[MeterRange]) -> list[RangeData]:
        """Three indexed look-ups per range under one lock (no round trips to batch)."""
        out: list[RangeData] = []
        with self._lock:
            try:
                for rng in ranges:
                    k = (rng.key.park, rng.key.tenant, rng.key.meter)
                    points = self._conn.execute(self._RANGE, (*k, rng.start_ms, rng.end_ms))
                    before = self._conn.execute(self._BEFORE, (*k, rng.start_ms)).fetchone()
                    after = self._conn.execute(self._AFTER, (*k, rng.end_ms)).fetchone()
                    out.append(
                        RangeData(
                            rng,
                            None if before is None else (before[0], before[1]),
                            tuple((ts, v) for ts, v in points.fetchall()),
                            None if after is None else (after[0], after[1]),
                        )
                    )
            except sqlite3.Error as exc:
                raise read_error(exc) from exc
        return out


def _reading(row: tuple[Any, ...]) -> Reading:
    """A row of (park, tenant, meter, resource, direction, ts_ms, value, seq)."""
    return Reading(
        park=row[0],
        tenant=row[1],
        meter=row[2],
        resource=row[3],
        direction=Direction(row[4]),
        ts_ms=row[5],
        value=row[6],
        seq=row[7],
    )
