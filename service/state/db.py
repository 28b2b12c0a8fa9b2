"""The one place that meets SQLAlchemy and its drivers (sqlite3, psycopg): engines from a URL,
transactions, and the mapping of their errors to parkflow's.

``StoreUnavailable`` when the database is down, locked or unreachable (a retry may succeed),
``StoreRejected`` when it refuses the data (a constraint), ``StoreError`` for the rest. A
conflict on a unique key or a serialisation failure inside ``Database.retrying`` is not an
error but a lost race: the work runs again on what the winner committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable

T = TypeVar("T")

# A check run first in a writer's transaction that may refuse the write by raising (a
# replica's lease on the park it writes for, ``service/leases.py``).
Fence = Callable[[Connection], None]
log = logging.getLogger("parkflow.state")

# PostgreSQL SQLSTATEs of a lost race: serialization_failure, deadlock_detected.
_RACE_SQLSTATES = {"40001", "40P01"}


def redacted(url: str | URL) -> str:
    """The URL as it may be shown and logged: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def map_error(error: Exception, url: str) -> StoreError:
    """A driver or SQLAlchemy error as parkflow's: what the caller can do about it."""
    where = f"database at {url}"
    if isinstance(error, exc.IntegrityError | exc.DataError):
        return StoreRejected(f"{where} refused the data: {_orig(error)}")
    if isinstance(
        error,
        exc.OperationalError | exc.InterfaceError | exc.DisconnectionError | exc.TimeoutError,
    ):
        return StoreUnavailable(f"{where} unavailable, may succeed later: {_orig(error)}")
    return StoreError(f"{where} failed: {_orig(error)}")


def _orig(error: Exception) -> str:
    orig = getattr(error, "orig", None)
    return str(orig if orig is not None else error).strip().splitlines()[0]


def _lost_race(error: Exception) -> bool:
    if isinstance(error, exc.IntegrityError):
        return True
    code = getattr(getattr(error, "orig", None), "sqlstate", None)
    return isinstance(error, exc.DBAPIError) and code in _RACE_SQLSTATES


class Database:
    """An engine for one URL. SQLite gets one IMMEDIATE transaction per unit of work (writers
    queue on the file lock instead of failing half-way), WAL and fsync on commit; PostgreSQL
    its default READ COMMITTED, with rows locked by the repositories that update them."""

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0) -> None:
        self.url = url
        self.shown = redacted(url)
        try:
            parsed = make_url(url)
        except exc.ArgumentError as error:
            raise StoreError(f"not a database URL: {redacted_text(url)}: {error}") from error
        self.backend = parsed.get_backend_name()
        try:
            if self.backend == "sqlite":
                self.engine = self._sqlite(parsed, busy_timeout_s)
            elif self.backend == "postgresql":
                if parsed.drivername == "postgresql":
                    parsed = parsed.set(drivername="postgresql+psycopg")
                self.engine = sa.create_engine(parsed, pool_pre_ping=True)
            else:
                raise StoreError(
                    f"database at {self.shown}: only sqlite and postgresql URLs are supported"
                )
        except exc.SQLAlchemyError as error:  # a driver that is not installed, a bad option
            raise map_error(error, self.shown) from error

    @staticmethod
    def _sqlite(url: URL, busy_timeout_s: float) -> Engine:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # BEGIN is ours, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (and Alembic), errors mapped."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            raise map_error(error, self.shown) from error

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            raise map_error(error, self.shown) from error

    def retrying(self, work: Callable[[Connection], T], attempts: int = 5) -> T:
        """Run ``work`` in a transaction; when it loses a race to a concurrent writer (a
        unique key taken, a serialisation failure) run it again on what the other committed."""
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except exc.SQLAlchemyError as error:
                if attempt < attempts and _lost_race(error):
                    log.info("lost a race to a concurrent writer, retrying: %s", _orig(error))
                    time.sleep(0.01 * attempt)
                    continue
                raise map_error(error, self.shown) from error
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


def redacted_text(url: str) -> str:
    """A string that did not parse as a URL, shown without what may be a password."""
    head, sep, tail = url.partition("@")
    if not sep:
        return url
    scheme, _, creds = head.rpartition("//")
    user = creds.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"
