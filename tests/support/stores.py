"""A store that a command finds through the ``PARKFLOW_`` environment, as an operator's would:
SQLite in a temp folder or a fresh database on the shared InfluxDB. Load the fixture with
``pytest_plugins`` (tests/conftest.py does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parkflow.store import InfluxStore, SqliteStore, Store
from tests.support.influx import InfluxServer

STORE_VARIABLES = ("PARKFLOW_INFLUX_URL", "PARKFLOW_SQLITE_PATH", "PARKFLOW_INFLUX_DATABASE")


@pytest.fixture(params=["sqlite", "influx"])
def env_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        monkeypatch.setenv("PARKFLOW_SQLITE_PATH", str(path))
        store: Store = SqliteStore(path)
    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        influx: InfluxStore = request.getfixturevalue("influx_store")
        monkeypatch.setenv("PARKFLOW_INFLUX_URL", server.url)
        monkeypatch.setenv("PARKFLOW_INFLUX_DATABASE", influx.database)
        store = influx
    yield store
    store.close()
