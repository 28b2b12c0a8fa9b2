"""The one place that meets sqlite3: a connection shared by threads, transactions, and the
mapping of sqlite3's errors to parkflow's (``StoreUnavailable`` when the environment is at
fault and a retry may succeed, ``StoreRejected`` when the data is)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.store.ports import Clock, wall_clock_ms
from parkflow.store.sqlite.schema import migrate

T = TypeVar("T")

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


def _retryable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    message = str(exc).lower()
    return (code is not None and (code & 0xFF) in _RETRYABLE_CODES) or (
        code is None and any(m in message for m in _RETRYABLE_MESSAGES)
    )


def write_error(exc: Exception) -> StoreError:
    """What sqlite3 raised during a write: retryable or permanent."""
    if isinstance(exc, sqlite3.Error) and _retryable(exc):
        return StoreUnavailable(f"SQLite write failed, may succeed later: {exc}")
    return StoreRejected(f"SQLite rejected the batch: {exc!r}")


def read_error(exc: sqlite3.Error) -> StoreError:
    if _retryable(exc):
        return StoreUnavailable(f"SQLite query failed, may succeed later: {exc}")
    return StoreError(f"SQLite query failed: {exc}")


class Connection:
    """One connection, serialised by a lock, so a store can be shared by several threads.

    Durability first: WAL journal with ``synchronous=FULL`` (every commit is fsynced before a
    write returns), one IMMEDIATE transaction per write."""

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
                raise write_error(exc) from exc

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise read_error(exc) from exc

    def _fetch_many(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Several reads under one lock (no round trips to batch)."""
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise read_error(exc) from exc

    def ping(self) -> None:
        with self._lock:
            try:
                self._conn.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
