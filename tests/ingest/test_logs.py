"""What a running ``parkflow ingest`` says about itself: which broker, client id, store and
registry it uses, where its status endpoint listens, and each failed connection with its reason
and when the next attempt comes; never a password."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from parkflow.registry import SAMPLE_REGISTRY
from parkflow.store.sqlite import SCHEMA_VERSION
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import IngestorProcess
from tests.support.mosquitto import MosquittoServer
from tests.support.ports import free_port

SECRET = "s3cret-never-logged"


def _ts(rec: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp()


def _failures(proc: IngestorProcess, n: int, timeout: float = 40.0) -> list[dict[str, Any]]:
    """The first ``n`` failed-connect records of the current run, waiting for them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in proc.logs(since_start=True) if r.get("msg") == "mqtt connect failed"]
        if len(got) >= n:
            return got[:n]
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} failed connects logged\n{proc.log_tail()}")


def _assert_spacing_as_announced(failures: list[dict[str, Any]]) -> None:
    """Each record's ``retry_in_s`` is when the next attempt really came."""
    for this, following in pairwise(failures):
        gap = _ts(following) - _ts(this)
        assert abs(gap - this["retry_in_s"]) < 0.6, (this, following, gap)


def test_unreachable_broker_is_logged_at_each_attempt_with_reason_and_next_try(
    ingestors: Callable[..., IngestorProcess], tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there
    proc = ingestors(
        mqtt_port=closed,
        username="tenant-gw",
        password=SECRET,
        env={"PARKFLOW_HTTP_PORT": "0"},  # the system picks the port; the log says which
    )
    proc.start(wait=False)

    starting = proc.wait_log("ingest starting")
    assert starting["level"] == "info"
    assert starting["broker"] == f"127.0.0.1:{closed}"
    assert starting["client_id"] == proc.client_id
    assert starting["mqtt_username"] == "tenant-gw"
    assert starting["store"] == f"SQLite {proc.sqlite_path.resolve()}"
    assert starting["registry"] == str(Path(SAMPLE_REGISTRY).resolve())

    up = proc.wait_log("status endpoint up")
    assert up["host"] == "127.0.0.1" and up["port"] != 0
    assert up["address"] == f"http://127.0.0.1:{up['port']}"
    assert httpx.get(f"{up['address']}/healthz", timeout=5).json() == {"alive": True}
    ready = httpx.get(f"{up['address']}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["mqtt_connected"] is False

    failures = _failures(proc, 4)
    assert [f["attempt"] for f in failures] == [1, 2, 3, 4]
    for f in failures:
        assert f["level"] == "warning"
        assert f["broker"] == f"127.0.0.1:{closed}"
        assert "ConnectionRefusedError" in f["reason"]
    _assert_spacing_as_announced(failures)

    # The SQLite store exists with its schema from the start, before anything was written.
    with sqlite3.connect(proc.sqlite_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"readings", "quarantine", "changes", "rollups"} <= tables
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)

    assert proc.stop() == 0
    assert SECRET not in proc.log_path.read_text()


def test_lost_broker_is_logged_with_when_the_next_attempt_comes(
    ingestors: Callable[..., IngestorProcess], mosquitto: MosquittoServer
) -> None:
    proc = ingestors(mqtt_port=mosquitto.port)
    proc.start()
    connected = proc.wait_log("mqtt connected")
    assert connected["broker"] == f"127.0.0.1:{mosquitto.port}"

    mosquitto.stop()
    lost = proc.wait_log("mqtt disconnected")
    assert lost["level"] == "warning" and lost["retry_in_s"] == 1
    failures = _failures(proc, 3)
    assert abs(_ts(failures[0]) - _ts(lost) - lost["retry_in_s"]) < 0.6
    assert [f["retry_in_s"] for f in failures] == [2, 4, 8]
    _assert_spacing_as_announced(failures)
    assert proc.stop() == 0


def test_influx_store_is_named_without_credentials_and_its_database_made_at_start(
    ingestors: Callable[..., IngestorProcess], influx_server: InfluxServer
) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    host_port = influx_server.url.split("://", 1)[1]
    proc = ingestors(
        mqtt_port=free_port(),  # no broker: the store is reached all the same
        influx_url=f"http://admin:{SECRET}@{host_port}",
        influx_database=database,
    )
    proc.start(wait=False)
    try:
        starting = proc.wait_log("ingest starting")
        assert starting["store"] == f"InfluxDB http://{host_port}, database {database}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = influx_server.query("SHOW DATABASES").json()
            names = [
                v[0] for s in shown["results"][0].get("series", []) for v in s.get("values", [])
            ]
            if database in names:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"database {database} not created at start\n{proc.log_tail()}")
        assert proc.stop() == 0
        assert SECRET not in proc.log_path.read_text()
    finally:
        influx_server.query(f'DROP DATABASE "{database}"')
