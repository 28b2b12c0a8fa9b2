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
    "store_label",
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


def store_label(s: Settings) -> str:
    """Which store the settings point at, for a start-up log line: the InfluxDB URL without
    any user name, password or query (a token may sit there), or the SQLite file's full path."""
    if s.influx_url:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(s.influx_url)
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        rp = f", retention policy {s.influx_retention_policy}" if s.influx_retention_policy else ""
        return f"InfluxDB {url}, database {s.influx_database}{rp}"
    return f"SQLite {s.sqlite_path.resolve()}"
