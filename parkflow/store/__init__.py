"""Stores behind the ``Store`` seam, and the choice between them at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parkflow.store.influx import InfluxStore
from parkflow.store.memory import MemoryStore
from parkflow.store.ports import ReadingQuery, Store
from parkflow.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from parkflow.settings import Settings

__all__ = [
    "InfluxStore",
    "MemoryStore",
    "ReadingQuery",
    "SqliteStore",
    "Store",
    "open_store",
    "store_from_settings",
]


def open_store(influx_url: str | None, sqlite_path: str, **influx_options: Any) -> Store:
    """InfluxDB when a URL is configured, else the local SQLite file.

    ``influx_options`` are ``InfluxStore`` keyword arguments and must include ``database``.
    """
    if influx_url:
        return InfluxStore(influx_url, **influx_options)
    return SqliteStore(sqlite_path)


def store_from_settings(s: Settings) -> Store:
    return open_store(
        s.influx_url,
        str(s.sqlite_path),
        database=s.influx_database,
        retention_policy=s.influx_retention_policy,
        username=s.influx_username,
        password=s.influx_password,
        token=s.influx_token,
        timeout=s.influx_timeout_s,
        create_database=s.influx_create_database,
    )
