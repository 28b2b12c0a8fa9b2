"""A real InfluxDB 1.x server for tests, plus the pytest fixtures that use it.

Tests talk to the Debian ``influxd`` (1.6.x) rather than a fake because the risky parts of the
Influx store are exactly the server's parsing of line protocol and InfluxQL. Each server gets a
temp directory and free loopback ports, so runs never touch a system installation and several
can run side by side. Load the fixtures with ``pytest_plugins = ["tests.support.influx"]`` in
the top-level ``tests/conftest.py``. ``InfluxClient`` talks to any 1.x server (one of these or
an operator's) for set-up, raw writes and reading back what was stored.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parkflow.store.influx import InfluxStore
from tests.support.ports import free_port, require_binary
from tests.support.procs import die_with_parent

INFLUXD = os.environ.get("PARKFLOW_INFLUXD", "/usr/bin/influxd")

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth_enabled}
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  max-row-limit = 0
  max-body-size = {max_body_size}

[logging]
  level = "warn"

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
"""

# Servers still running when the interpreter exits (a crashed or interrupted session).
_LIVE: set[InfluxServer] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.close()


class InfluxServer:
    """One ``influxd`` process with its own data directory, restartable on the same port."""

    def __init__(
        self, *, auth_enabled: bool = False, binary: str = INFLUXD, max_body_size: int = 25_000_000
    ) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="parkflow-influxd-"))
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.config_path = self.root / "influxdb.conf"
        self.config_path.write_text(
            _CONFIG.format(
                root=self.root,
                rpc_port=self.rpc_port,
                http_port=self.http_port,
                auth_enabled="true" if auth_enabled else "false",
                max_body_size=max_body_size,
            )
        )
        self.log_path = self.root / "influxd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart) on the same data directory and ports; return once /ping answers."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("influxd is already running")
        require_binary(self.binary, "influxd", "influxdb")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "run", "-config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, "HOME": str(self.root)},
                start_new_session=True,  # a terminal Ctrl-C goes to pytest, which cleans up
                preexec_fn=die_with_parent(signal.SIGKILL),  # pytest SIGKILLed: influxd too
            )
        self._paused = False
        _LIVE.add(self)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"influxd exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"influxd did not answer /ping within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful shutdown (SIGTERM); falls back to SIGKILL if it does not exit in time."""
        if self._proc is None:
            return
        if self._paused:
            self.resume()  # a stopped process would never act on SIGTERM
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._proc = None
        _LIVE.discard(self)

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a power cut or OOM kill looks like to clients."""
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        self._proc.wait()
        self._proc = None
        self._paused = False
        _LIVE.discard(self)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted by the kernel, never answered."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self._paused = False

    def query(self, q: str, **params: str) -> httpx.Response:
        """Run an InfluxQL statement as-is (test setup and inspection)."""
        return httpx.post(f"{self.url}/query", data={"q": q, **params}, timeout=10.0)

    def http_stats(self) -> dict[str, int]:
        """The server's own HTTP counters (writeReq, pointsWrittenOK, ...) from /debug/vars."""
        stats = httpx.get(f"{self.url}/debug/vars", timeout=10.0).json()
        return next(v["values"] for k, v in stats.items() if k.startswith("httpd"))

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InfluxClient:
    """An InfluxDB 1.x HTTP API client on one kept-alive connection pool."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=httpx.Timeout(timeout))

    def query(self, q: str, db: str | None = None, post: bool = False) -> list[dict[str, Any]]:
        """The ``results`` of an InfluxQL request (``post`` for statements that change
        something); ``RuntimeError`` when a statement failed."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        r = (
            self.http.post("/query", data=params)
            if post
            else self.http.get("/query", params=params)
        )
        r.raise_for_status()
        results: list[dict[str, Any]] = r.json().get("results", [])
        for res in results:
            if "error" in res:
                raise RuntimeError(f"InfluxDB: {res['error']} in {q[:200]!r}")
        return results

    def count(self, db: str, where: str = "", measurement: str = "reading") -> int:
        """``count(value)`` of a measurement; 0 while the database does not exist yet."""
        try:
            res = self.query(f"SELECT count(value) FROM {measurement} {where}", db)
        except RuntimeError as exc:
            if "database not found" in str(exc):  # the ingestor creates it at its first write
                return 0
            raise
        series = res[0].get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    def rows(self, q: str, db: str) -> Iterator[tuple[dict[str, str], list[Any]]]:
        """Every row of a SELECT with its series' tags, streamed in chunks so that a big result
        is never truncated."""
        params = {"q": q, "db": db, "epoch": "ms", "chunked": "true", "chunk_size": "50000"}
        with self.http.stream("GET", "/query", params=params) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.strip():
                    continue
                for res in json.loads(line).get("results", []):
                    if "error" in res:
                        raise RuntimeError(f"InfluxDB: {res['error']}")
                    for s in res.get("series", []):
                        for row in s["values"]:
                            yield s.get("tags", {}), row

    def write(self, db: str, body: bytes, precision: str = "ms") -> None:
        """POST line protocol as it is; ``RuntimeError`` unless InfluxDB answers 204."""
        r = self.http.post("/write", params={"db": db, "precision": precision}, content=body)
        if r.status_code != 204:
            raise RuntimeError(f"raw write answered {r.status_code}: {r.text[:300]}")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def influx_server() -> Iterator[InfluxServer]:
    """One shared server for the session; tests that stop or freeze a server use their own."""
    with InfluxServer() as server:
        yield server


@pytest.fixture
def own_influx_server() -> Iterator[InfluxServer]:
    """A private server the test may stop, kill or pause."""
    with InfluxServer() as server:
        yield server


@pytest.fixture
def influx_store(influx_server: InfluxServer) -> Iterator[InfluxStore]:
    """An InfluxStore on a fresh database of the shared server, dropped afterwards."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, database, create_database=True, timeout=10.0)
    try:
        yield store
    finally:
        store.close()
        influx_server.query(f'DROP DATABASE "{database}"')
