"""SqliteStore: readings and quarantine in one SQLite file, for single-host deployments.

Durability first: WAL journal with ``synchronous=FULL`` (every commit is fsynced before
``write`` returns) and one transaction per ``WriteBatch``. Readings are keyed by
(park, tenant, meter, ts_ms) and written with ``INSERT OR REPLACE``, so redelivered readings
are stored once and a rewrite replaces the old point (last write wins, as in InfluxDB).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from ingest.errors import PermanentWriteError, RetryableWriteError, StoreError, WriteError
from ingest.model import Direction, Reading, Rejection, WriteBatch
from ingest.store.base import ReadingQuery, Store

# MIGRATIONS[n] takes a database from schema version n to n + 1 (PRAGMA user_version).
# Never edit a released step: append a new one (e.g. rollup tables) and it runs on next open.
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


def _write_error(exc: Exception) -> WriteError:
    """Map what sqlite3 raised during a write to retryable or permanent."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        message = str(exc).lower()
        retryable = (code is not None and (code & 0xFF) in _RETRYABLE_CODES) or (
            code is None and any(m in message for m in _RETRYABLE_MESSAGES)
        )
        if retryable:
            return RetryableWriteError(f"SQLite write failed, may succeed later: {exc}")
    return PermanentWriteError(f"SQLite rejected the batch: {exc!r}")


class SqliteStore(Store):
    """One connection, serialised by a lock, so the store can be shared by several threads."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
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
                q.reason,
                q.detail,
                q.topic,
                q.payload,
                q.received_ms,
                q.index,
                q.park,
                q.tenant,
                q.meter,
            )
            for q in batch.rejections
        ]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO readings (park, tenant, meter, ts_ms, resource,"
                        " direction, value, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        readings,
                    )
                    self._conn.executemany(
                        "INSERT INTO quarantine (reason, detail, topic, payload, received_ms, idx,"
                        " park, tenant, meter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rejections,
                    )
                    self._conn.execute("COMMIT")
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
        return [
            Reading(
                park=row[0],
                tenant=row[1],
                meter=row[2],
                resource=row[3],
                direction=Direction(row[4]),
                ts_ms=row[5],
                value=row[6],
                seq=row[7],
            )
            for row in self._fetch(sql, params)
        ]

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
            "SELECT reason, detail, topic, payload, received_ms, idx, park, tenant, meter"
            " FROM quarantine"
        )
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY received_ms DESC, id DESC LIMIT ?"
        params.append(max(limit, 0))
        return [
            Rejection(
                reason=row[0],
                detail=row[1],
                topic=row[2],
                payload=bytes(row[3]),
                received_ms=row[4],
                index=row[5],
                park=row[6],
                tenant=row[7],
                meter=row[8],
            )
            for row in self._fetch(sql, params)
        ]

    def quarantine_counts(self) -> dict[str, int]:
        rows = self._fetch("SELECT reason, count(*) FROM quarantine GROUP BY reason", [])
        return {reason: count for reason, count in rows}

    def ping(self) -> None:
        with self._lock:
            try:
                self._conn.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise RetryableWriteError(f"SQLite store unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
