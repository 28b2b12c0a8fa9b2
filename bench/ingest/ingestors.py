"""The parkflow ingestors under test: real ``parkflow ingest`` processes, through the test
suite's harness (``tests.support.ingestor_proc``) with production settings."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.ingest.children import Children, stop_ingestors
from parkflow.registry import SAMPLE_REGISTRY
from tests.support.ingestor_proc import IngestorProcess

METRIC_PREFIX = "parkflow_ingest_"
READY_TIMEOUT_S = 60.0


def counters(proc: IngestorProcess) -> dict[str, float]:
    """The ingestor's /metrics without the parkflow_ingest_ prefix, _total, _created and
    histogram buckets; {} when it does not answer."""
    try:
        samples = proc.metrics()
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for name, value in samples.items():
        if not name.startswith(METRIC_PREFIX) or "_created" in name or "_bucket" in name:
            continue
        key = name[len(METRIC_PREFIX) :].replace("_total", "")
        out[key] = out.get(key, 0.0) + value
    return {k: (int(v) if v.is_integer() else round(v, 4)) for k, v in out.items()}


class IngestorGroup:
    """``count`` parkflow ingestor processes splitting the tenants (PARKFLOW_PARTITION), each with
    its own client id (session) and status port, kept across restarts; PARKFLOW_* tunables
    come from the bench's environment; stopped with SIGTERM like a service."""

    def __init__(
        self,
        children: Children,
        workdir: Path,
        *,
        host: str,
        port: int,
        influx_url: str,
        db: str,
        tag: str,
        count: int,
    ) -> None:
        self.procs = [
            IngestorProcess(
                workdir,
                name=f"ingest-{tag}-{i}",
                mqtt_host=host,
                mqtt_port=port,
                client_id=f"bench-ingest-{tag}-{i}",
                influx_url=influx_url,
                influx_database=db,
                registry=SAMPLE_REGISTRY,
                partition=f"{i + 1}/{count}",
                env={"PARKFLOW_MQTT_VERSION": "5", "PARKFLOW_INFLUX_CREATE_DATABASE": "true"},
                settings_from_environment=True,
                die_with_parent=True,
            )
            for i in range(count)
        ]
        children.ingestors.extend(self.procs)

    @property
    def client_ids(self) -> list[str]:
        """Their sessions on the broker."""
        return [p.client_id for p in self.procs]

    def start(self) -> IngestorGroup:
        """Start every process and return once all of them answer /readyz."""
        for p in self.procs:
            p.start(wait=False)
        for p in self.procs:
            p.wait_ready(READY_TIMEOUT_S)
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {f"ingestor-{i}": p.pid for i, p in enumerate(self.procs) if p.pid is not None}

    @property
    def first_pid(self) -> int:
        pid = self.procs[0].pid
        assert pid is not None, "not started"
        return pid

    def check_alive(self) -> None:
        for p in self.procs:
            if not p.alive:
                raise RuntimeError(f"ingestor died with {p.returncode}:\n{p.log_tail(20)}")

    def metrics(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for p in self.procs:
            for k, v in counters(p).items():
                if k.endswith(("_seconds", "connected", "ready", "pending_messages")):
                    total[k] = max(total.get(k, v), v)  # gauges: the worst process
                else:
                    total[k] = total.get(k, 0) + v
        return total

    def stop(self) -> None:
        stop_ingestors(self.procs)

    def log_tail(self) -> str:
        return "\n".join(p.log_tail(10) for p in self.procs)
