"""Stores behind the ``Store`` seam, and the choice between them at start-up."""

from __future__ import annotations

from typing import Any

from ingest.store.base import ReadingQuery, Store
from ingest.store.influx import InfluxStore
from ingest.store.memory import MemoryStore
from ingest.store.sqlite import SqliteStore

__all__ = ["InfluxStore", "MemoryStore", "ReadingQuery", "SqliteStore", "Store", "open_store"]


def open_store(influx_url: str | None, sqlite_path: str, **influx_options: Any) -> Store:
    """InfluxDB when a URL is configured, else the local SQLite file.

    ``influx_options`` are ``InfluxStore`` keyword arguments and must include ``database``.
    """
    if influx_url:
        return InfluxStore(influx_url, **influx_options)
    return SqliteStore(sqlite_path)
