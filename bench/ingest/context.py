"""What every phase works with: the servers, the databases and sessions to clean up, the probe
that proves the ingestors are subscribed, the lost/duplicated check and the profiler."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.ingest.children import Children, log
from bench.ingest.ingestors import IngestorGroup
from bench.ingest.publishers import Publishers, PublishRun, publish_one
from bench.ingest.readings import DAY_MS, PROBE_SEQ, Layout, low, park_meters
from bench.ingest.subscriber import purge_session
from tests.support.checker import MeterTarget
from tests.support.influx import InfluxClient
from tests.support.procs import die_with_parent


@dataclass
class Config:
    host: str
    port: int
    influx_url: str
    publishers: int
    window: int
    poll_interval: float
    timeout: float
    keep: bool
    workdir: Path
    profile: Path | None
    server_pids: dict[str, int]  # the broker and InfluxDB when the bench started them
    ingestors: int = 1
    profile_mode: str = "wall"


class Bench:
    def __init__(self, cfg: Config, children: Children) -> None:
        self.cfg = cfg
        self.children = children
        self.influx = InfluxClient(cfg.influx_url)
        self.meters = park_meters()
        self.run_id = uuid.uuid4().hex[:8]
        self.runs = 0
        self.databases: list[str] = []
        self.sessions: list[str] = []
        now_ms = int(time.time() * 1000)
        self.t0 = (now_ms - 2 * DAY_MS) // 1000 * 1000

    def layout(self, n: int, msg_size: int) -> Layout:
        return Layout(n, msg_size, self.t0, self.meters)

    def tag(self, phase: str) -> str:
        """A name for one run of a phase: its database and sessions."""
        self.runs += 1
        return f"{phase}-{self.run_id}-{self.runs}"

    def database(self, phase: str) -> str:
        db = f"bench_{self.tag(phase).replace('-', '_')}"
        self.databases.append(db)
        return db

    def session(self, tag: str) -> str:
        """A client id for a bare subscriber, its session deleted at the end."""
        client_id = f"bench-{tag}"
        self.sessions.append(client_id)
        return client_id

    def publishers(self, layout: Layout, pace: float = 0.0) -> Publishers:
        cfg = self.cfg
        return Publishers(
            self.children, cfg.host, cfg.port, layout, cfg.publishers, cfg.window, pace
        )

    def ingestors(self, db: str) -> IngestorGroup:
        """``--ingestors`` processes on a database of their own (not started yet)."""
        cfg = self.cfg
        group = IngestorGroup(
            self.children,
            cfg.workdir,
            host=cfg.host,
            port=cfg.port,
            influx_url=cfg.influx_url,
            db=db,
            tag=db.removeprefix("bench_"),
            count=cfg.ingestors,
        )
        self.sessions += [c for c in group.client_ids if c not in self.sessions]
        return group

    def cleanup(self, purge_sessions: bool = True) -> None:
        """Delete the bench's sessions from the broker and drop its databases."""
        for client_id in self.sessions if purge_sessions else ():
            purge_session(self.cfg.host, self.cfg.port, client_id)
        self.sessions.clear()
        if not self.cfg.keep:
            for db in self.databases:
                with contextlib.suppress(httpx.HTTPError, RuntimeError):
                    self.influx.query(f'DROP DATABASE "{db}"', post=True)
        self.databases.clear()
        self.influx.close()

    def probe(self, db: str, group: IngestorGroup) -> None:
        """Proof that every ingestor is subscribed (and the database exists): a probe reading
        per tenant (each goes to the ingestor that takes that tenant), with a ts before T0,
        outside every measured range, must be stored."""
        cfg = self.cfg
        first: dict[str, MeterTarget] = {}
        for m in self.meters:
            first.setdefault(m.tenant, m)
        for probe in first.values():
            publish_one(
                cfg.host,
                cfg.port,
                probe.topic,
                json.dumps({"ts": self.t0 - 1000, "value": low(probe), "seq": PROBE_SEQ}).encode(),
            )
        deadline = time.monotonic() + 30
        while self.influx.count(db, f"WHERE time < {self.t0 * 1_000_000}") < len(first):
            if time.monotonic() > deadline:
                raise TimeoutError(f"a probe reading was never stored:\n{group.log_tail()}")
            time.sleep(0.05)

    def verify(self, db: str, layout: Layout, run: PublishRun) -> dict[str, Any]:
        """Compare every stored (meter, ts, seq) with what the broker acknowledged."""
        n = layout.n
        seen = bytearray(n)
        duplicated = unexpected = 0
        q = (
            f"SELECT seq, value FROM reading WHERE time >= {layout.t0 * 1_000_000} "
            f"AND time < {(layout.t0 + n) * 1_000_000} GROUP BY meter"
        )
        for tags, (ts, seq, value) in self.influx.rows(q, db):
            k = int(ts) - layout.t0
            meter = layout.meter_of(k)
            expected = layout.value(k) * meter.to_canonical
            if (
                seq is None
                or int(seq) != k
                or tags.get("meter") != meter.meter
                or abs(float(value) - expected) > 1e-9 * max(1.0, abs(expected))
            ):
                unexpected += 1
                continue
            if seen[k]:
                duplicated += 1
            else:
                seen[k] = 1
        lost = not_acked = 0
        for (start, _), acked in zip(run.blocks, run.acked, strict=True):
            for j, a in enumerate(acked):
                first = start + j * layout.msg_size
                stored = sum(seen[first : first + layout.msg_size])
                if a:
                    lost += layout.msg_size - stored
                else:
                    not_acked += layout.msg_size
        total = self.influx.count(db, f"WHERE time >= {layout.t0 * 1_000_000}")
        return {
            "stored": sum(seen),
            "count_value": total,
            "acked": run.acked_readings,
            "not_acked_by_broker": not_acked,
            "lost": lost,
            "duplicated": duplicated,
            "unexpected": unexpected,
        }

    # profiling

    def start_profiler(self, phase: str, pid: int) -> subprocess.Popen[bytes] | None:
        cfg = self.cfg
        if cfg.profile is None:
            return None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            log("  (py-spy not found: pip install py-spy; profiling skipped)")
            return None
        cfg.profile.mkdir(parents=True, exist_ok=True)
        out = cfg.profile / f"ingest-{phase}-{self.runs}-{cfg.profile_mode}.speedscope.json"
        # wall: every thread, waiting included; gil: only the thread holding the GIL, i.e.
        # where the process's Python CPU time goes
        mode = ["--idle"] if cfg.profile_mode == "wall" else ["--gil"]
        with open(cfg.workdir / "py-spy.log", "ab") as spy_log:
            proc = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--threads",
                    *mode,
                    "--rate",
                    "200",
                    "--format",
                    "speedscope",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=spy_log,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        self.children.popen.append(proc)
        log(f"  profiling the ingestor (pid {pid}) into {out}")
        return proc

    def stop_profiler(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
