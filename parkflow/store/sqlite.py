"""SqliteStore: readings and quarantine in one SQLite file, for single-host deployments.

Durability first: WAL journal with ``synchronous=FULL`` (every commit is fsynced before
``write`` returns) and one transaction per ``WriteBatch``. Readings are keyed by
(park, tenant, meter, ts_ms) and written with ``INSERT OR REPLACE``, so redelivered readings
are stored once and a rewrite replaces the old point (last write wins, as in InfluxDB).
The same transaction upserts the batch's change markers, so a marker is durable exactly when
its readings are.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.model import Direction, MeterKey, QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.store.base import (
    Clock,
    DayRollup,
    MeterRange,
    RangeData,
    ReadingQuery,
    Store,
    build_rollup_frame,
    touched_hours,
    wall_clock_ms,
)
from parkflow.timeunits import HOURS_PER_DAY

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

# MIGRATIONS[n] takes a database from schema version n to n + 1 (PRAGMA user_version).
# Never edit a released step: append a new one and it runs on next open.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE readings (
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            resource TEXT NOT NULL,
            direction TEXT NOT NULL,
            value REAL NOT NULL,
            seq INTEGER,
            PRIMARY KEY (park, tenant, meter, ts_ms)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            received_ms INTEGER NOT NULL,
            idx INTEGER,
            park TEXT,
            tenant TEXT,
            meter TEXT
        )
        """,
        "CREATE INDEX quarantine_reason_received ON quarantine (reason, received_ms)",
        "CREATE INDEX quarantine_received ON quarantine (received_ms)",
    ),
    (
        # Change markers: one row per meter and UTC hour, stamped by the latest write into it.
        """
        CREATE TABLE changes (
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            hour_ms INTEGER NOT NULL,
            written_ms INTEGER NOT NULL,
            PRIMARY KEY (park, tenant, meter, hour_ms)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX changes_written ON changes (written_ms)",
        # Readings stored before this version get markers too, so the first worker run rolls
        # them up. (floor division: SQLite's % keeps the sign of negative timestamps)
        """
        INSERT INTO changes (park, tenant, meter, hour_ms, written_ms)
        SELECT park, tenant, meter, ts_ms - ((ts_ms % 3600000) + 3600000) % 3600000, 0
        FROM readings GROUP BY 1, 2, 3, 4
        """,
        # Day first in the key: detection reads every meter over a window of days.
        """
        CREATE TABLE rollups (
            day_ms INTEGER NOT NULL,
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            resource TEXT NOT NULL,
            direction TEXT NOT NULL,
            total REAL NOT NULL,
            coverage REAL NOT NULL,
            hours BLOB NOT NULL,
            PRIMARY KEY (day_ms, park, tenant, meter)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE state (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    (
        # The raw message is kept once (capped) in a table of its own; rejections point to it
        # and are identified by (message_id, slot), slot -1 for the whole message, so writing
        # the same rejection twice (a redelivery, a retry) keeps one.
        """
        CREATE TABLE quarantine_message (
            message_id TEXT PRIMARY KEY,
            topic TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            payload BLOB NOT NULL,
            size INTEGER NOT NULL,
            park TEXT,
            tenant TEXT,
            meter TEXT
        ) WITHOUT ROWID
        """,
        """
        INSERT INTO quarantine_message
        SELECT 'legacy-' || id, topic, received_ms, substr(payload, 1, 16384), length(payload),
               park, tenant, meter
        FROM quarantine
        """,
        """
        CREATE TABLE quarantine_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            slot INTEGER NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            topic TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            idx INTEGER,
            park TEXT,
            tenant TEXT,
            meter TEXT,
            UNIQUE (message_id, slot)
        )
        """,
        """
        INSERT INTO quarantine_v3 (id, message_id, slot, reason, detail, topic, received_ms,
                                   idx, park, tenant, meter)
        SELECT id, 'legacy-' || id, coalesce(idx, -1), reason, detail, topic, received_ms, idx,
               park, tenant, meter
        FROM quarantine
        """,
        "DROP TABLE quarantine",
        "ALTER TABLE quarantine_v3 RENAME TO quarantine",
        "CREATE INDEX quarantine_reason_received ON quarantine (reason, received_ms)",
        "CREATE INDEX quarantine_received ON quarantine (received_ms)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Primary result codes that describe the environment, not the data: retrying can succeed.
_RETRYABLE_CODES = {
    5,  # SQLITE_BUSY
    6,  # SQLITE_LOCKED
    7,  # SQLITE_NOMEM
    8,  # SQLITE_READONLY (file or mount made read-only: an operator problem)
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL
}
_RETRYABLE_MESSAGES = ("locked", "busy", "disk i/o", "disk is full", "unable to open")


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to ``SCHEMA_VERSION``; each step commits together with its version."""
    while True:
        conn.execute("BEGIN IMMEDIATE")  # re-read the version under the write lock
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this code's "
                    f"{SCHEMA_VERSION}; refusing to touch it"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _write_error(exc: Exception) -> StoreError:
    """Map what sqlite3 raised during a write to retryable or permanent."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        message = str(exc).lower()
        retryable = (code is not None and (code & 0xFF) in _RETRYABLE_CODES) or (
            code is None and any(m in message for m in _RETRYABLE_MESSAGES)
        )
        if retryable:
            return StoreUnavailable(f"SQLite write failed, may succeed later: {exc}")
    return StoreRejected(f"SQLite rejected the batch: {exc!r}")


class SqliteStore(Store):
    """One connection, serialised by a lock, so the store can be shared by several threads."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 5000, clock: Clock = wall_clock_ms
    ) -> None:
        self.path = str(path)
        self._clock = clock
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            migrate(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

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

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one IMMEDIATE transaction; failures become write errors."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._conn)
                    self._conn.execute("COMMIT")
                    return result
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OverflowError, UnicodeError) as exc:
                raise _write_error(exc) from exc

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query failed: {exc}") from exc

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
        self, reason: str | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> list[Rejection]:
        conditions: list[str] = []
        params: list[Any] = []
        if reason is not None:
            conditions.append("reason = ?")
            params.append(reason)
        if since_ms is not None:
            conditions.append("received_ms >= ?")
            params.append(since_ms)
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
                raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    # -- rollups -------------------------------------------------------------------------------

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
        sql = (
            "SELECT resource, direction, total, coverage, hours FROM rollups"
            " WHERE day_ms = ? AND park = ? AND tenant = ? AND meter = ?"
        )
        out: list[DayRollup] = []
        with self._lock:
            try:
                for key, day in dict.fromkeys(wanted):
                    row = self._conn.execute(sql, (day, key.park, key.tenant, key.meter)).fetchone()
                    if row is not None:
                        out.append(
                            DayRollup(
                                key.park,
                                key.tenant,
                                key.meter,
                                row[0],
                                Direction(row[1]),
                                day,
                                _unpack_hours(row[4]),
                                row[2],
                                row[3],
                            )
                        )
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query failed: {exc}") from exc
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

    # -- state ---------------------------------------------------------------------------------

    def get_state(self, name: str) -> int | None:
        rows = self._fetch("SELECT value FROM state WHERE name = ?", [name])
        return int(rows[0][0]) if rows else None

    def set_state(self, name: str, value: int) -> None:
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO state (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        )

    def ping(self) -> None:
        with self._lock:
            try:
                self._conn.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


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


def _pack_hours(hours: Sequence[float]) -> bytes:
    """24 little-endian float64 (NaN kept as NaN: SQLite would turn a NaN REAL into NULL)."""
    return struct.pack(f"<{HOURS_PER_DAY}d", *hours)


def _unpack_hours(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{HOURS_PER_DAY}d", blob)
