"""Run ``parkflow ingest`` as a real subprocess, to kill it, restart it and watch it from outside.

Each ``IngestorProcess`` keeps its client id, status port and log file across restarts, the way a
supervisor restarts a crashed service: same session on the broker, same place to scrape. Its
settings are environment variables (``PARKFLOW_*``, see ``ingest.settings``); any inherited from
the caller's environment are dropped so a developer's shell cannot change what a test runs, and
the batching and retry tunables are set small for fast tests. A benchmark passes
``settings_from_environment=True`` instead: production defaults, overridden only by the
``PARKFLOW_*`` of its own environment (and ``env``).

Use the ``ingestors`` fixture (a factory) so every process is killed after the test, pass or fail.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from parkflow.registry import SAMPLE_REGISTRY
from tests.support.ports import free_port
from tests.support.procs import die_with_parent

REPO = Path(__file__).resolve().parents[2]

# A topic that matches the ingestor's subscription but no registered park: the ingestor
# quarantines these probes as unknown_park and stores no reading.
PROBE_TOPIC = "ip/zz-probe/zz-probe/zz-probe/readings"

# fast enough for tests, same code paths as production
TEST_TUNABLES = {
    "PARKFLOW_FLUSH_INTERVAL_S": "0.05",
    "PARKFLOW_BATCH_SIZE": "500",
    "PARKFLOW_RETRY_INITIAL_S": "0.1",
    "PARKFLOW_RETRY_MAX_S": "1",
    "PARKFLOW_INFLUX_TIMEOUT_S": "2",
    "PARKFLOW_CHECKPOINT_INTERVAL_S": "1",
}

_LIVE: set[IngestorProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        p.kill()


class IngestorProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        mqtt_port: int,
        client_id: str | None = None,
        influx_url: str | None = None,
        influx_database: str | None = None,
        sqlite_path: Path | None = None,
        failpoints: str | None = None,
        registry: Path | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        partition: str | None = None,
        mqtt_host: str = "127.0.0.1",
        settings_from_environment: bool = False,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name or client_id or f"ingest-{uuid.uuid4().hex[:6]}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.client_id = client_id or username or f"parkflow-test-{uuid.uuid4().hex[:8]}"
        self.http_port = free_port()  # fixed across restarts
        self.log_path = self.workdir / f"{self.name}.stderr.log"
        self.failpoints = failpoints
        self.settings_from_environment = settings_from_environment
        self.die_with_parent = die_with_parent  # SIGTERM when the starting thread ends
        self.env: dict[str, str] = {
            "PARKFLOW_MQTT_HOST": mqtt_host,
            "PARKFLOW_MQTT_PORT": str(mqtt_port),
            "PARKFLOW_CLIENT_ID": self.client_id,
            "PARKFLOW_HTTP_HOST": "127.0.0.1",
            "PARKFLOW_HTTP_PORT": str(self.http_port),
            "PARKFLOW_LOG_FORMAT": "json",
        }
        if not settings_from_environment:
            self.env.update(TEST_TUNABLES)
        if influx_url is not None:
            self.env["PARKFLOW_INFLUX_URL"] = influx_url
            self.env["PARKFLOW_INFLUX_DATABASE"] = influx_database or "parkflow"
        self.sqlite_path = sqlite_path or self.workdir / f"{self.name}.sqlite"
        self.env["PARKFLOW_SQLITE_PATH"] = str(self.sqlite_path)
        self.env["PARKFLOW_REGISTRY"] = str(registry or SAMPLE_REGISTRY)
        if username is not None:
            self.env["PARKFLOW_MQTT_USERNAME"] = username
            self.env["PARKFLOW_MQTT_PASSWORD"] = password or ""
        if partition is not None:
            self.env["PARKFLOW_PARTITION"] = partition
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.starts = 0

    # lifecycle

    def start(
        self, *, wait: bool = True, failpoints: str | None = None, timeout: float = 30.0
    ) -> None:
        """Start (again). ``failpoints`` overrides the constructor's for this run only; pass
        ``""`` to run without any."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        env = {
            k: v
            for k, v in os.environ.items()
            if self.settings_from_environment or not k.startswith("PARKFLOW_")
        }
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        fp = self.failpoints if failpoints is None else failpoints
        if fp:
            env["PARKFLOW_FAILPOINTS"] = fp
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "parkflow.cli", "ingest"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
                preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_parent else None,
            )
        self.starts += 1
        _LIVE.add(self)
        if wait:
            self.wait_ready(timeout)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL: a crash, an OOM kill, a power cut of the ingestor's host."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        _LIVE.discard(self)

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` waits): to stop several at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the clean shutdown a supervisor does. Returns the exit code."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.log_tail()}"
            ) from None
        _LIVE.discard(self)
        return rc

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end by itself (a failpoint's SIGKILL); returns the exit code."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s\n{self.log_tail()}"
            ) from None
        _LIVE.discard(self)
        return rc

    # watching

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.http_port}{path}", timeout=2.0)

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """(status code, body) of /readyz; (0, {}) when the endpoint does not answer."""
        try:
            r = self._get("/readyz")
        except httpx.HTTPError:
            return 0, {}
        return r.status_code, r.json()

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by name with labels, e.g.
        ``parkflow_ingest_quarantined_total{reason="not_utf8"}``."""
        text = self._get("/metrics").text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def metric(self, name: str, default: float = 0.0) -> float:
        return self.metrics().get(name, default)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz answers 200: connected to the broker and the store not failing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(
                    f"{self.name} exited with {self.returncode}\n{self.log_tail()}"
                )
            if self.readyz()[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready within {timeout}s\n{self.log_tail()}")

    def wait_readyz(self, code: int, timeout: float = 30.0) -> float:
        """Until /readyz answers ``code``; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.readyz()[0] == code:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: /readyz never answered {code} within {timeout}s "
            f"(last: {self.readyz()})\n{self.log_tail()}"
        )

    def logs(self, since_start: bool = False) -> list[dict[str, Any]]:
        """The JSON log records (of the latest run only with ``since_start``)."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as f:
            if since_start:
                f.seek(self._log_offset)
            data = f.read().decode("utf-8", "replace")
        out = []
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def wait_log(self, msg: str, timeout: float = 30.0) -> dict[str, Any]:
        """Until the current run logs a record whose ``msg`` is ``msg``; returns that record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.logs(since_start=True):
                if rec.get("msg") == msg:
                    return rec
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never logged {msg!r}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def wait_subscribed(ingestors: list[IngestorProcess], timeout: float = 30.0) -> None:
    """Until the broker has granted every ingestor's subscriptions (for brokers whose ACL
    lets no probe through; ``wait_receiving`` proves more where it can)."""
    wait_for = time.monotonic() + timeout
    while time.monotonic() < wait_for:
        if all(p.metric("parkflow_ingest_subscribed") == 1 for p in ingestors):
            return
        time.sleep(0.05)
    raise AssertionError(f"ingestors not subscribed within {timeout}s")


def wait_receiving(ingestors: list[IngestorProcess], mqtt_port: int, timeout: float = 30.0) -> int:
    """Publish probes on ``PROBE_TOPIC`` until every ingestor has received at least one.

    Proves each one's subscription (its share of a shared one, too) is in place before a test
    publishes data, which Mosquitto would otherwise drop for lack of a subscriber. The probes
    are quarantined as unknown_park. Returns how many probes were sent.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    sent = 0
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.metric("parkflow_ingest_messages_received_total") > 0 for p in ingestors):
                return sent
            client.publish(PROBE_TOPIC, b"probe", qos=1).wait_for_publish(5)
            sent += 1
            time.sleep(0.05)
        raise AssertionError(f"ingestors did not receive a probe within {timeout}s")
    finally:
        client.disconnect()
        client.loop_stop()


class IngestorPool:
    """Makes ``IngestorProcess`` objects under one directory and kills them all on ``close``.

    In a test module::

        @pytest.fixture
        def ingestors(tmp_path):
            with IngestorPool(tmp_path) as pool:
                yield pool.make
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir) / "ingest"
        self.made: list[IngestorProcess] = []

    def make(self, **kwargs: Any) -> IngestorProcess:
        p = IngestorProcess(self.workdir, **kwargs)
        self.made.append(p)
        return p

    def close(self) -> None:
        for p in self.made:
            p.kill()

    def __enter__(self) -> IngestorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
