"""Ingest throughput benchmark: parkflow against a real Mosquitto and a real InfluxDB.

Run from the repository root with the project's virtualenv::

    python bench/ingest.py --quick        # small N, under a minute with set-up
    python bench/ingest.py                # 100k single / 500k batch readings, about 1-2 min
    python bench/ingest.py --wait-quiet 60 --repeat 3     # on a shared machine, see below
    python bench/ingest.py --mqtt-port 1883 --influx-url http://127.0.0.1:8086   # your servers

Without ``--mqtt-port`` / ``--influx-url`` the bench starts its own ``mosquitto`` (the
data-safety settings of deploy/mosquitto/parkflow.conf) and ``influxd`` (1.x, fsync on every
write) on free loopback ports in temporary directories through tests/support, and removes them
at the end. Every phase writes to a database of its own, dropped at the end (``--keep`` keeps
them); MQTT sessions it leaves on an external broker are deleted. Child processes are stopped
on success, failure, Ctrl-C and SIGTERM (and the ingestor and publishers die with the bench).

Phases, in this order, each alone (``--phases`` picks a subset):

``raw`` (b): InfluxDB's raw write ceiling. The very lines parkflow writes
    (``parkflow.store.lineprotocol.reading_line``), formatted before the clock starts, POSTed by
    one httpx client in 5000-point bodies, one request at a time (like the ingestor's single
    writer). Points/s from the first request to the last answer.
``ceiling`` (a): a bare paho MQTT v5 subscriber process (persistent session, plain
    subscription, manual ack, the ingestor's Receive Maximum) that acks every message the moment
    it arrives and does nothing else. Readings/s from the first to the last message received.
``single`` and ``batch`` (c): parkflow end to end. ``--ingestors`` (default 1) real
    ``python -m parkflow.cli ingest`` processes (PARKFLOW_* tunables from this environment; the
    bench sets the broker, InfluxDB URL, a fresh database, client ids and partitions), ready
    (``/readyz``) and proven subscribed (a probe reading outside the measured range must be
    stored) before publishing starts. ``single``: one reading per message; ``batch``: JSON
    arrays of 100 readings. Readings/s from the first publish until all N readings are visible
    to ``SELECT count(value) FROM reading``.
``paced``: like ``single`` but published at ``--paced-rate`` messages/s (default half the
    single phase's rate), for latency below saturation.
``drain`` (optional, not in the default list): capacity without publishers competing for the
    CPU: N messages are queued for an offline session, then the bare subscriber, and in a second
    round the ingestor, reconnect and take them (steady-state rates and their ratio).

Publishers: ``--publishers`` processes (default 2), paho MQTT v5, QoS 1, asynchronous publishes
with up to ``--window`` unacknowledged messages each (paho's own in-flight limit is set to 0,
unlimited, because with a limit paho rescans every in-flight message on each PUBACK), each
waiting for all its PUBACKs. Readings use the sample registry (park "songlam"): reading k
(0..N-1) has ``seq = k`` and ``ts = T0 + k`` ms with T0 two days ago, so every reading is a
distinct point; messages go round-robin over the park's meters with values inside each meter's
min/max. Publisher p sends the contiguous block of readings p*N/P .. (p+1)*N/P-1 in order.

Latency, publish to stored: each publisher records the monotonic clock when it hands a message
to paho. During the phase the bench polls InfluxDB every ``--poll-interval`` s (default 0.05)
with, per publisher block, ``SELECT count(value) FROM reading WHERE time >= <first incomplete
100 ms bucket> AND time < <end of block> GROUP BY time(100ms)``. As ts encodes k, a 100 ms
bucket is exactly 100 consecutive readings of one publisher (100 single messages, or one
100-reading message), so the rise of a bucket's count between two polls tells how many of them
became visible, and when; they are matched to the bucket's not yet visible readings in publish
order and given the time the poll's answer arrived. Latencies are thus over-estimated by at most
one poll period (``poll_period_ms``, reported), never under-estimated, and blurred only by the
order within a bucket (100 consecutive messages, published within a few ms). In ``single`` and
``batch`` the publishers run at full speed, so the broker's backlog is part of the latency:
those are latencies at saturation and grow with N; ``paced`` gives the latency below it. The
polling costs InfluxDB some CPU (visible as ``influxd`` in ``cpu_s``).

Lost and duplicated: afterwards the bench reads back every stored (meter, ts, seq, value) and
compares with what the broker acknowledged (PUBACK below 0x80). ``lost``: acknowledged
readings not stored; ``duplicated``: stored points beyond one per seq (InfluxDB overwrites a
point with the same series and timestamp, so redelivery is idempotent by design; a duplicate
would be a reading stored under another key); ``unexpected``: stored points nobody sent, or
whose meter, seq or value differ from what was sent; ``redelivered``: the ingestors'
``messages_received`` beyond the messages published.

CPU: each phase reports ``cpu_s`` per process (publishers, subscriber or ingestors, mosquitto,
influxd, the bench itself) and ``others``: what the rest of the machine used meanwhile. The
rates only mean something when ``others`` is small; on a shared machine use ``--wait-quiet S``
(wait up to S s for an idle second before each phase) and ``--repeat R`` (each phase's median
round is reported, every round's rate in ``rounds``). ``cpu_us_per_reading`` (CPU of the
consumer per reading) is much less sensitive to neighbours than the rates.

The last line printed is one JSON object: ``single_ratio`` (parkflow single readings/s over the
ceiling), ``batch_ratio`` (parkflow batch readings/s over InfluxDB's raw points/s), ``lost``,
``duplicated``, ``unexpected`` (sums over every parkflow phase and round), the raw figures,
latencies, N per phase, ``targets_met`` and per-phase ``details``. Targets on 2 cores:
single_ratio >= 0.9, batch_ratio >= 0.5, lost = 0, duplicated = 0. The exit status is 0 unless
the bench itself failed (the targets do not affect it).

Profiling: ``--profile DIR`` runs ``py-spy record`` (``pip install py-spy``) against the first
ingestor of every parkflow phase and writes speedscope files there; ``--profile-mode wall``
samples every thread including waits, ``gil`` only the thread holding the GIL (where the
process's Python CPU goes).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ingest.mqtt.partition import CATCH_ALL  # noqa: E402
from ingest.settings import IngestSettings  # noqa: E402
from parkflow.model import Reading  # noqa: E402
from parkflow.registry import SAMPLE_REGISTRY, load_registry  # noqa: E402
from parkflow.store.lineprotocol import reading_line  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

PARK = "songlam"
BUCKET_MS = 100  # readings per latency bucket (ts step is 1 ms per reading)
BATCH_MESSAGE = 100  # readings per message in the batch phase
RAW_BODY_POINTS = 5000
DAY_MS = 86_400_000
PROBE_SEQ = 2**62  # the readiness probe's seq; its ts lies before T0, outside every count


def log(text: str) -> None:
    print(text, flush=True)


# -- the readings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterSpec:
    tenant: str
    meter: str
    resource: str
    direction: str
    topic: str
    lo: float
    span: float
    to_canonical: float


def meter_specs() -> list[MeterSpec]:
    registry = load_registry(SAMPLE_REGISTRY)
    specs = []
    for rm in registry.meters():
        if rm.park.id != PARK:
            continue
        m = rm.meter
        lo = m.min if m.min is not None else 0.0
        hi = m.max if m.max is not None else lo + 1000.0
        specs.append(
            MeterSpec(
                rm.tenant.id,
                m.id,
                str(m.resource),
                str(m.direction),
                f"ip/{PARK}/{rm.tenant.id}/{m.id}/readings",
                float(lo),
                float(hi - lo),
                float(rm.to_canonical),
            )
        )
    if not specs:
        raise SystemExit(f"no meters for park {PARK!r} in {SAMPLE_REGISTRY}")
    return specs


@dataclass(frozen=True)
class Layout:
    """Which reading goes where: reading k has seq k, ts t0 + k ms, and sits in message k // size."""

    n: int
    msg_size: int
    t0: int
    meters: list[MeterSpec]

    def meter_of(self, k: int) -> MeterSpec:
        return self.meters[(k // self.msg_size) % len(self.meters)]

    def value(self, k: int) -> float:
        m = self.meter_of(k)
        return round(m.lo + m.span * ((k * 7919) % 1000) / 1000, 3)

    def message(self, first: int) -> tuple[str, bytes]:
        """Topic and payload of the message whose first reading is ``first``."""
        topic = self.meter_of(first).topic
        items = [
            {"ts": self.t0 + k, "value": self.value(k), "seq": k}
            for k in range(first, first + self.msg_size)
        ]
        doc: object = items[0] if self.msg_size == 1 else items
        return topic, json.dumps(doc, separators=(",", ":")).encode()

    def blocks(self, publishers: int) -> list[tuple[int, int]]:
        per = self.n // publishers
        return [(p * per, (p + 1) * per) for p in range(publishers)]


def round_n(n: int, publishers: int) -> int:
    unit = publishers * BUCKET_MS * BATCH_MESSAGE // _gcd(BUCKET_MS, BATCH_MESSAGE)
    return max(unit, -(-n // unit) * unit)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


# -- child processes ---------------------------------------------------------------------------


def _child_setup() -> None:
    """In a child: die with the parent, leave Ctrl-C to the parent (it stops everything)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler came with the fork
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _connect(client: mqtt.Client, host: str, port: int, timeout: float = 10.0, **kw: Any) -> None:
    """Connect a client driven by manual ``loop()`` calls and wait for the CONNACK."""
    state: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state["reason"] = reason

    client.on_connect = on_connect
    client.connect(host, port, keepalive=60, **kw)
    deadline = time.monotonic() + timeout
    while "reason" not in state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no CONNACK from {host}:{port}")
        client.loop(0.05)
    if state["reason"].is_failure:
        raise RuntimeError(f"connection refused: {state['reason']}")


def _publisher(
    conn: Connection,
    host: str,
    port: int,
    layout: Layout,
    block: tuple[int, int],
    window: int,
    go: Any,
    client_id: str,
    rate: float,
) -> None:
    """Publish readings block[0]..block[1]-1 in order, as fast as the window allows or at
    ``rate`` messages/s; report publish times, PUBACKs and the CPU time used."""
    _child_setup()
    try:
        start, end = block
        size = layout.msg_size
        messages = [layout.message(k) for k in range(start, end, size)]
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(0)  # our window bounds it; see the module docstring
        client.max_queued_messages_set(0)
        acked = bytearray(len(messages))
        by_mid: dict[int, int] = {}
        counts = {"acked": 0, "failed": 0}

        def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
            j = by_mid.pop(mid, None)
            if j is None:
                return
            if reason.is_failure:
                counts["failed"] += 1
            else:
                acked[j] = 1
            counts["acked"] += 1

        client.on_publish = on_publish
        _connect(client, host, port, clean_start=True)
        conn.send(("ready", len(messages)))
        go.wait()
        cpu = time.process_time()
        times = array("d", bytes(8 * len(messages)))
        now = time.monotonic
        publish = client.publish
        loop = client.loop
        sent = 0
        began = now()
        for j, (topic, payload) in enumerate(messages):
            while sent - counts["acked"] >= window:
                loop(0.001)
            if rate:
                wait = began + j / rate - now()
                while wait > 0:
                    loop(min(wait, 0.005))
                    wait = began + j / rate - now()
            times[j] = now()
            info = publish(topic, payload, qos=1)
            by_mid[info.mid] = j
            sent += 1
            if sent & 63 == 0:
                loop(0)
        last_publish = now()
        deadline = last_publish + 120
        while counts["acked"] < sent and now() < deadline:
            loop(0.01)
        last_ack = now()
        cpu = time.process_time() - cpu
        client.disconnect()
        conn.send(
            (
                "done",
                {
                    "times": times.tobytes(),
                    "acked": bytes(acked),
                    "failed": counts["failed"],
                    "last_publish": last_publish,
                    "last_ack": last_ack,
                    "cpu": cpu,
                },
            )
        )
    except Exception as exc:  # reported to the parent, which fails the phase
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def _bare_subscriber(
    conn: Connection,
    host: str,
    port: int,
    client_id: str,
    subscription: str,
    expected: int,
    receive_maximum: int,
    timeout: float,
    drain: Any = None,
) -> None:
    """Ack every message the moment it arrives; report first and last arrival times.

    With ``drain`` (an Event) the subscriber goes offline once subscribed, leaving its session
    on the broker, and comes back when the event is set to take what was queued meanwhile."""
    _child_setup()
    try:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = receive_maximum
        state = {"count": 0, "first": 0.0, "last": 0.0, "dup": 0, "subscribed": False}
        now = time.monotonic

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            c.ack(msg.mid, msg.qos)
            t = now()
            if not state["count"]:
                state["first"] = t
            state["last"] = t
            state["count"] += 1
            if msg.dup:
                state["dup"] += 1

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, p: Any) -> None:
            state["subscribed"] = True

        client.on_message = on_message
        client.on_subscribe = on_subscribe
        _connect(client, host, port, clean_start=False, properties=props)
        client.subscribe(subscription, qos=1)
        while not state["subscribed"]:
            client.loop(0.05)
        if drain is not None:
            client.disconnect()  # the session (expiry 1 h) and its subscription stay
            client.loop(0.1)
            conn.send(("ready", 0))
            drain.wait()
            _connect(client, host, port, clean_start=False, properties=props)
        else:
            conn.send(("ready", 0))
        cpu = time.process_time()
        deadline = now() + timeout
        while state["count"] < expected and now() < deadline:
            client.loop(0.05)
        end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        end.SessionExpiryInterval = 0  # delete the session now
        client.disconnect(properties=end)
        client.loop(0.1)
        state["cpu"] = time.process_time() - cpu
        conn.send(("done", state))
    except Exception as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


# -- helpers in the parent ---------------------------------------------------------------------


@dataclass
class Children:
    """Every process the bench started itself, stopped in reverse order whatever happens."""

    procs: list[mp.process.BaseProcess] = field(default_factory=list)
    popen: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.procs.clear()
        for proc in reversed(self.popen):
            stop_process(proc)
        self.popen.clear()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def recv(conn: Connection, what: str, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"{what}: no answer within {timeout:.0f}s")
    kind, payload = conn.recv()
    if kind == "error":
        raise RuntimeError(f"{what} failed: {payload}")
    return payload


def purge_session(host: str, port: int, client_id: str) -> None:
    """Delete a (persistent) session from the broker: clean start, then expire at disconnect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    try:
        _connect(client, host, port, clean_start=True, properties=props)
        client.disconnect()
        client.loop(0.1)
    except (OSError, TimeoutError, RuntimeError) as exc:
        log(f"  (could not delete session {client_id}: {exc})")


def publish_one(host: str, port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-probe-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    done: list[bool] = []
    client.on_publish = lambda *a: done.append(True)
    _connect(client, host, port, clean_start=True)
    client.publish(topic, payload, qos=1)
    deadline = time.monotonic() + 10
    while not done and time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()
    if not done:
        raise TimeoutError("the probe reading was not acknowledged by the broker")


class Influx:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=httpx.Timeout(60.0))

    def query(self, q: str, db: str | None = None, post: bool = False) -> list[dict[str, Any]]:
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

    def count(self, db: str, where: str = "") -> int:
        try:
            res = self.query(f"SELECT count(value) FROM reading {where}", db)
        except RuntimeError as exc:
            if "database not found" in str(exc):  # the ingestor creates it at its first write
                return 0
            raise
        series = res[0].get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    def rows(self, q: str, db: str) -> Iterator[tuple[dict[str, str], list[Any]]]:
        """Every row of a SELECT, streamed in chunks so a big result is never truncated."""
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

    def close(self) -> None:
        self.http.close()


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


class CpuMeter:
    """CPU seconds (user + system) that processes used between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    @staticmethod
    def read(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def machine() -> float:
        """CPU seconds the whole machine has been busy (all processes, all cores)."""
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return 0.0
        # user nice system idle iowait irq softirq steal ...
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))
        return busy / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.before = {name: self.read(pid) for name, pid in self.pids.items()}
        self.before["bench"] = time.process_time()
        self.before["machine"] = self.machine()

    def stop(self) -> dict[str, float]:
        """Per process; ``others`` is what the rest of the machine used meanwhile (the
        publishers and subscriber report their own CPU and are added by the caller)."""
        out = {name: self.read(pid) - self.before[name] for name, pid in self.pids.items()}
        out["bench"] = time.process_time() - self.before["bench"]
        out["machine"] = self.machine() - self.before["machine"]
        return out


# -- publishers ----------------------------------------------------------------------------------


@dataclass
class PublishRun:
    layout: Layout
    blocks: list[tuple[int, int]]
    times: list[array[float]]  # per publisher, monotonic publish time per message
    acked: list[bytes]  # per publisher, 1 per message the broker acknowledged
    failed: int
    first_publish: float
    last_publish: float
    last_ack: float
    cpu: float  # CPU seconds the publishers used, all together

    def publish_time(self, k: int) -> float:
        for (start, end), times in zip(self.blocks, self.times, strict=True):
            if start <= k < end:
                return times[(k - start) // self.layout.msg_size]
        raise IndexError(k)

    @property
    def acked_readings(self) -> int:
        return sum(sum(a) for a in self.acked) * self.layout.msg_size

    @property
    def messages(self) -> int:
        return sum(len(a) for a in self.acked)


class Publishers:
    """Forked publisher processes, each connected and with its messages built, waiting for go."""

    def __init__(
        self,
        ctx: Any,
        children: Children,
        host: str,
        port: int,
        layout: Layout,
        publishers: int,
        window: int,
        rate: float = 0.0,
    ) -> None:
        self.layout = layout
        self.blocks = layout.blocks(publishers)
        self.go = ctx.Event()
        self.conns: list[Connection] = []
        tag = uuid.uuid4().hex[:8]
        for p, block in enumerate(self.blocks):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_publisher,
                args=(
                    child,
                    host,
                    port,
                    layout,
                    block,
                    window,
                    self.go,
                    f"bench-pub-{tag}-{p}",
                    rate / publishers,
                ),
                daemon=True,
                name=f"bench-publisher-{p}",
            )
            proc.start()
            child.close()
            children.procs.append(proc)
            self.conns.append(parent)

    def wait_ready(self) -> None:
        for c in self.conns:
            recv(c, "publisher start-up", 120)

    def start(self) -> None:
        self.go.set()

    def results(self, timeout: float) -> PublishRun:
        done = [recv(c, "publisher", timeout) for c in self.conns]
        times = [array("d", d["times"]) for d in done]
        return PublishRun(
            layout=self.layout,
            blocks=self.blocks,
            times=times,
            acked=[d["acked"] for d in done],
            failed=sum(d["failed"] for d in done),
            first_publish=min(t[0] for t in times),
            last_publish=max(d["last_publish"] for d in done),
            last_ack=max(d["last_ack"] for d in done),
            cpu=sum(d["cpu"] for d in done),
        )

    def poll_done(self) -> bool:
        return all(c.poll() for c in self.conns)


# -- visibility poller (latency) -----------------------------------------------------------------


class Visibility:
    """Tracks, per 100 ms bucket of ts (= 100 consecutive readings of one publisher), when its
    readings became visible in InfluxDB; see the module docstring."""

    def __init__(self, influx: Influx, db: str, layout: Layout, blocks: list[tuple[int, int]]):
        self.influx = influx
        self.db = db
        self.layout = layout
        self.blocks = blocks
        self.seen: dict[int, int] = {}
        self.events: dict[int, list[tuple[int, int, float]]] = {}
        self.frontier = [start // BUCKET_MS for start, _ in blocks]
        self.ends = [-(-end // BUCKET_MS) for _, end in blocks]
        self.visible = 0
        self.polls = 0
        self.poll_started: list[float] = []
        self.overfull = 0

    def expected(self, b: int) -> int:
        lo = max(b * BUCKET_MS, 0)
        hi = min((b + 1) * BUCKET_MS, self.layout.n)
        return max(0, hi - lo)

    @property
    def complete(self) -> bool:
        return all(f >= e for f, e in zip(self.frontier, self.ends, strict=True))

    def poll(self) -> bool:
        """One round of queries; True when something new became visible."""
        t0 = self.layout.t0
        statements, regions = [], []
        for i, (f, e) in enumerate(zip(self.frontier, self.ends, strict=True)):
            if f >= e:
                continue
            lo_ns = (t0 + f * BUCKET_MS) * 1_000_000
            hi_ns = (t0 + e * BUCKET_MS) * 1_000_000
            statements.append(
                f"SELECT count(value) FROM reading WHERE time >= {lo_ns} AND time < {hi_ns} "
                f"GROUP BY time({BUCKET_MS}ms) fill(none)"
            )
            regions.append(i)
        if not statements:
            return False
        self.poll_started.append(time.monotonic())
        results = self.influx.query(";".join(statements), self.db)
        answered = time.monotonic()
        self.polls += 1
        progress = False
        for res in results:
            for s in res.get("series", []):
                for ts, count in s["values"]:
                    b = (int(ts) - t0) // BUCKET_MS
                    old = self.seen.get(b, 0)
                    count = int(count)
                    if count > self.expected(b):
                        self.overfull += 1
                        count = self.expected(b)
                    if count > old:
                        self.events.setdefault(b, []).append((old, count, answered))
                        self.seen[b] = count
                        self.visible += count - old
                        progress = True
        for i in regions:
            f = self.frontier[i]
            while f < self.ends[i] and self.seen.get(f, 0) >= self.expected(f):
                f += 1
            self.frontier[i] = f
        return progress

    def latencies(self, run: PublishRun) -> list[float]:
        """Seconds from publish to visible, one per reading seen."""
        out: list[float] = []
        for b, events in self.events.items():
            first = b * BUCKET_MS
            for old, new, t in events:
                for k in range(first + old, first + new):
                    out.append(t - run.publish_time(k))
        out.sort()
        return out

    @property
    def poll_period_ms(self) -> float | None:
        p = self.poll_started
        if len(p) < 2:
            return None
        return round(1000 * (p[-1] - p[0]) / (len(p) - 1), 1)


# -- the bench -----------------------------------------------------------------------------------


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


class IngestorGroup:
    """``count`` parkflow ingestor processes splitting the tenants (PARKFLOW_PARTITION), each with
    its own client id (session) and status port; stopped with SIGTERM like a service."""

    def __init__(self, bench: Bench, tag: str, db: str, count: int) -> None:
        self.bench = bench
        self.tag = tag
        self.db = db
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.logs = [bench.cfg.workdir / f"ingest-{tag}-{i}.log" for i in range(count)]

    def start(self) -> IngestorGroup:
        """Start every process and return once all of them answer /readyz."""
        cfg, bench = self.bench.cfg, self.bench
        self.procs, self.ports = [], []
        for i in range(self.count):
            http_port = free_port()
            client_id = f"bench-ingest-{self.tag}-{i}"
            if client_id not in bench.sessions:
                bench.sessions.append(client_id)
            env = {
                **os.environ,
                "PARKFLOW_MQTT_HOST": cfg.host,
                "PARKFLOW_MQTT_PORT": str(cfg.port),
                "PARKFLOW_MQTT_VERSION": "5",
                "PARKFLOW_CLIENT_ID": client_id,
                "PARKFLOW_PARTITION": f"{i + 1}/{self.count}",
                "PARKFLOW_INFLUX_URL": cfg.influx_url,
                "PARKFLOW_INFLUX_DATABASE": self.db,
                "PARKFLOW_INFLUX_CREATE_DATABASE": "true",
                "PARKFLOW_HTTP_HOST": "127.0.0.1",
                "PARKFLOW_HTTP_PORT": str(http_port),
                "PARKFLOW_REGISTRY": str(SAMPLE_REGISTRY),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
            with self.logs[i].open("ab") as logf:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "parkflow.cli", "ingest"],
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the bench, which stops it in order
                    preexec_fn=_die_with_parent,
                )
            bench.children.popen.append(proc)
            self.procs.append(proc)
            self.ports.append(http_port)
        deadline = time.monotonic() + 60
        for proc, port, log_path in zip(self.procs, self.ports, self.logs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"ingestor exited with {proc.returncode}:\n{tail(log_path)}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ingestor not ready within 60s:\n{tail(log_path)}")
                time.sleep(0.05)
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {f"ingestor-{i}": p.pid for i, p in enumerate(self.procs)}

    def check_alive(self) -> None:
        for proc, log_path in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"ingestor died with {proc.returncode}:\n{tail(log_path)}")

    def metrics(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for port in self.ports:
            for k, v in scrape_metrics(port).items():
                if k.endswith(("_seconds", "connected", "ready", "pending_messages")):
                    total[k] = max(total.get(k, v), v)  # gauges: the worst process
                else:
                    total[k] = total.get(k, 0) + v
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            stop_process(proc)

    def log_tail(self) -> str:
        return "\n".join(tail(p, 10) for p in self.logs)


class Bench:
    def __init__(self, cfg: Config, children: Children) -> None:
        self.cfg = cfg
        self.children = children
        self.ctx = mp.get_context("fork")
        self.influx = Influx(cfg.influx_url)
        self.meters = meter_specs()
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

    # (b) --------------------------------------------------------------------------------------

    def influx_raw(self, n: int) -> dict[str, Any]:
        db = self.database("raw")
        self.influx.query(f'CREATE DATABASE "{db}"', post=True)
        layout = self.layout(n, BATCH_MESSAGE)
        lines = []
        for k in range(n):
            m = layout.meter_of(k)
            reading = Reading(
                PARK,
                m.tenant,
                m.meter,
                m.resource,
                m.direction,  # type: ignore[arg-type]
                layout.t0 + k,
                layout.value(k) * m.to_canonical,
                k,
            )
            lines.append(reading_line(reading).encode())
        bodies = [b"\n".join(lines[i : i + RAW_BODY_POINTS]) for i in range(0, n, RAW_BODY_POINTS)]
        del lines
        params = {"db": db, "precision": "ms"}
        cpu = CpuMeter(self.cfg.server_pids)
        cpu.start()
        started = time.monotonic()
        for body in bodies:
            r = self.influx.http.post("/write", params=params, content=body)
            if r.status_code != 204:
                raise RuntimeError(f"raw write answered {r.status_code}: {r.text[:300]}")
        seconds = time.monotonic() - started
        used = cpu.stop()
        stored = self.influx.count(db)
        out = {
            "n": n,
            "points_per_s": rate(n, seconds),
            "seconds": round(seconds, 3),
            "requests": len(bodies),
            "stored": stored,
            **cpu_report(used, seconds, n, "influxd"),
        }
        log(f"  influx raw: {n} points in {seconds:.2f}s = {out['points_per_s']:.0f} points/s")
        return out

    # (a) --------------------------------------------------------------------------------------

    def ceiling(self, n: int) -> dict[str, Any]:
        cfg = self.cfg
        layout = self.layout(n, 1)
        tag = self.tag("bare")
        client_id = f"bench-{tag}"
        self.sessions.append(client_id)
        settings = IngestSettings()
        subscription = CATCH_ALL
        parent, child = self.ctx.Pipe(duplex=False)
        sub = self.ctx.Process(
            target=_bare_subscriber,
            args=(
                child,
                cfg.host,
                cfg.port,
                client_id,
                subscription,
                n,
                settings.receive_maximum,
                cfg.timeout,
            ),
            daemon=True,
            name="bench-bare-subscriber",
        )
        sub.start()
        child.close()
        self.children.procs.append(sub)
        pubs = Publishers(
            self.ctx, self.children, cfg.host, cfg.port, layout, cfg.publishers, cfg.window
        )
        recv(parent, "bare subscriber start-up", 60)
        pubs.wait_ready()
        cpu = CpuMeter(cfg.server_pids)
        cpu.start()
        pubs.start()
        run = pubs.results(cfg.timeout + 60)
        state = recv(parent, "bare subscriber", cfg.timeout + 60)
        used = {**cpu.stop(), "publishers": run.cpu, "subscriber": state["cpu"]}
        sub.join(10)
        seconds = state["last"] - state["first"]
        out = {
            "n": n,
            "received": state["count"],
            "msgs_per_s": rate(state["count"], seconds),
            "seconds_first_to_last_received": round(seconds, 3),
            "msgs_per_s_from_first_publish": rate(
                state["count"], state["last"] - run.first_publish
            ),
            "publish_msgs_per_s": rate(run.messages, run.last_ack - run.first_publish),
            "publish_failed": run.failed,
            "acked": run.acked_readings,
            "redelivered": state["dup"],
            **cpu_report(used, state["last"] - run.first_publish, state["count"], "subscriber"),
        }
        log(
            f"  ceiling: {state['count']}/{n} messages, {out['msgs_per_s']:.0f} msgs/s first to "
            f"last received (publishers {out['publish_msgs_per_s']:.0f} msgs/s); "
            f"CPU us/msg {out['cpu_us_per_reading']}"
        )
        if state["count"] < n:
            log("  WARNING: the bare subscriber did not receive every message")
        return out

    # drain (optional) ----------------------------------------------------------------------------

    def drain(self, n: int) -> dict[str, Any]:
        """Capacity without publishers competing for the CPU: N single-reading messages are
        queued on the broker for an offline session, then the bare subscriber, and in a second
        round the ingestor, come back and take them. Rates are steady-state: from the first
        message received (bare) or the first poll that saw readings (ingestor) to the last."""
        cfg = self.cfg
        settings = IngestSettings()
        # the bare subscriber
        layout = self.layout(n, 1)
        tag = self.tag("bare-drain")
        client_id = f"bench-{tag}"
        self.sessions.append(client_id)
        subscription = CATCH_ALL
        go = self.ctx.Event()
        parent, child = self.ctx.Pipe(duplex=False)
        sub = self.ctx.Process(
            target=_bare_subscriber,
            args=(
                child,
                cfg.host,
                cfg.port,
                client_id,
                subscription,
                n,
                settings.receive_maximum,
                cfg.timeout,
                go,
            ),
            daemon=True,
            name="bench-bare-subscriber",
        )
        sub.start()
        child.close()
        self.children.procs.append(sub)
        pubs = Publishers(
            self.ctx, self.children, cfg.host, cfg.port, layout, cfg.publishers, cfg.window
        )
        recv(parent, "bare subscriber start-up", 60)
        pubs.wait_ready()
        pubs.start()
        pubs.results(cfg.timeout + 60)
        settle()
        cpu = CpuMeter(cfg.server_pids)
        cpu.start()
        go.set()
        state = recv(parent, "bare subscriber", cfg.timeout + 60)
        bare_used = {**cpu.stop(), "subscriber": state["cpu"]}
        sub.join(10)
        bare_s = state["last"] - state["first"]
        bare = {
            "received": state["count"],
            "msgs_per_s": rate(state["count"], bare_s),
            **cpu_report(bare_used, bare_s, state["count"], "subscriber"),
        }
        log(f"  drain, bare subscriber: {bare['msgs_per_s']:.0f} msgs/s")
        settle()
        # the ingestor
        phase = "drain"
        layout = self.layout(n, 1)
        db = self.database(phase)
        pubs = Publishers(
            self.ctx, self.children, cfg.host, cfg.port, layout, cfg.publishers, cfg.window
        )
        group = IngestorGroup(self, db.removeprefix("bench_"), db, cfg.ingestors).start()
        self.probe(db, group)
        group.stop()  # the sessions and their subscriptions stay on the broker
        pubs.wait_ready()
        pubs.start()
        run = pubs.results(cfg.timeout + 60)
        settle()
        group.start()
        profiler = self.start_profiler(phase, group.procs[0].pid)
        cpu = CpuMeter({**cfg.server_pids, **group.pids})
        cpu.start()
        vis = Visibility(self.influx, db, layout, run.blocks)
        vis.poll()
        at_ready = vis.visible
        first: tuple[float, int] | None = None
        last_progress = time.monotonic()
        while not vis.complete and time.monotonic() - last_progress < 20:
            t = time.monotonic()
            if vis.poll():
                last_progress = time.monotonic()
                if first is None:
                    first = (last_progress, vis.visible)
            time.sleep(max(0.0, cfg.poll_interval - (time.monotonic() - t)))
        used = cpu.stop()
        self.stop_profiler(profiler)
        metrics = group.metrics()
        group.stop()
        check = self.verify(db, layout, run)
        done = max((e[-1][2] for e in vis.events.values()), default=time.monotonic())
        steady = rate(vis.visible - first[1], done - first[0]) if first else 0.0
        out = {
            "n": n,
            "bare": bare,
            "ingestor_readings_per_s": steady,
            "ratio": round(steady / bare["msgs_per_s"], 3) if bare["msgs_per_s"] else None,
            "complete": vis.complete,
            **check,
            **cpu_report(used, done - (first[0] if first else done), n - at_ready, "ingestor"),
            "ingestor_metrics": metrics,
        }
        log(
            f"  drain, ingestor: {steady:.0f} readings/s (ratio {out['ratio']}), lost "
            f"{check['lost']}, CPU us/reading {out['cpu_us_per_reading']}"
        )
        return out

    # (c) --------------------------------------------------------------------------------------

    def probe(self, db: str, group: IngestorGroup) -> None:
        """Proof that every ingestor is subscribed (and the database exists): a probe reading
        per tenant (each goes to the ingestor that takes that tenant), with a ts before T0,
        outside every measured range, must be stored."""
        cfg = self.cfg
        first: dict[str, MeterSpec] = {}
        for m in self.meters:
            first.setdefault(m.tenant, m)
        for probe in first.values():
            publish_one(
                cfg.host,
                cfg.port,
                probe.topic,
                json.dumps({"ts": self.t0 - 1000, "value": probe.lo, "seq": PROBE_SEQ}).encode(),
            )
        deadline = time.monotonic() + 30
        while self.influx.count(db, f"WHERE time < {self.t0 * 1_000_000}") < len(first):
            if time.monotonic() > deadline:
                raise TimeoutError(f"a probe reading was never stored:\n{group.log_tail()}")
            time.sleep(0.05)

    def parkflow(self, phase: str, n: int, msg_size: int, pace: float = 0.0) -> dict[str, Any]:
        """One ingestor, N readings in ``msg_size``-reading messages, at full speed or ``pace``
        messages/s; throughput, latency, lost and duplicated."""
        cfg = self.cfg
        layout = self.layout(n, msg_size)
        db = self.database(phase)
        # Publishers fork before anything else runs in this process, then wait for go.
        pubs = Publishers(
            self.ctx, self.children, cfg.host, cfg.port, layout, cfg.publishers, cfg.window, pace
        )
        group = IngestorGroup(self, db.removeprefix("bench_"), db, cfg.ingestors).start()
        self.probe(db, group)
        pubs.wait_ready()
        profiler = self.start_profiler(phase, group.procs[0].pid)
        vis = Visibility(self.influx, db, layout, pubs.blocks)
        cpu = CpuMeter({**cfg.server_pids, **group.pids})
        cpu.start()
        pubs.start()
        last_progress = time.monotonic()
        deadline = last_progress + cfg.timeout * 10
        timed_out = False
        while not vis.complete:
            t = time.monotonic()
            if vis.poll():
                last_progress = time.monotonic()
            group.check_alive()
            patience = 20.0 if pubs.poll_done() else cfg.timeout
            if time.monotonic() - last_progress > patience or time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(max(0.0, cfg.poll_interval - (time.monotonic() - t)))
        used = cpu.stop()
        # all stored: when the answer of the poll that saw the last reading arrived
        all_stored = max((e[-1][2] for e in vis.events.values()), default=time.monotonic())
        run = pubs.results(cfg.timeout + 60)
        used["publishers"] = run.cpu
        self.stop_profiler(profiler)
        metrics = group.metrics()
        group.stop()
        check = self.verify(db, layout, run)
        seconds = all_stored - run.first_publish
        lat = vis.latencies(run)
        out = {
            "n": n,
            "message_readings": msg_size,
            "messages": run.messages,
            "readings_per_s": rate(vis.visible, seconds),
            "seconds_first_publish_to_all_stored": round(seconds, 3),
            "complete": vis.complete and not timed_out,
            "publish_msgs_per_s": rate(run.messages, run.last_ack - run.first_publish),
            "publish_failed": run.failed,
            "latency_ms_p50": _ms(percentile(lat, 0.50)),
            "latency_ms_p99": _ms(percentile(lat, 0.99)),
            "latency_ms_max": _ms(lat[-1] if lat else None),
            "latency_samples": len(lat),
            "poll_period_ms": vis.poll_period_ms,
            "polls": vis.polls,
            **check,
            "redelivered": max(0, int(metrics.get("messages_received", 0)) - run.messages - 1),
            "ingestors": cfg.ingestors,
            **cpu_report(used, seconds, vis.visible, "ingestor"),
            "ingestor_metrics": metrics,
        }
        if pace:
            out["paced_msgs_per_s"] = pace
        log(
            f"  {phase}: {vis.visible}/{n} readings stored, {out['readings_per_s']:.0f} readings/s"
            f" (publishers {out['publish_msgs_per_s']:.0f} msgs/s), latency p50 "
            f"{out['latency_ms_p50']} ms p99 {out['latency_ms_p99']} ms, lost {check['lost']}, "
            f"duplicated {check['duplicated']}; ingestor CPU us/reading "
            f"{out['cpu_us_per_reading']}"
        )
        if not out["complete"]:
            log(f"  WARNING: not every reading was stored; ingestor log tail:\n{group.log_tail()}")
        return out

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
        lost = acked_not_stored = 0
        not_acked = 0
        for (start, _), acked in zip(run.blocks, run.acked, strict=True):
            for j, a in enumerate(acked):
                first = start + j * layout.msg_size
                stored = sum(seen[first : first + layout.msg_size])
                if a:
                    acked_not_stored += layout.msg_size - stored
                else:
                    not_acked += layout.msg_size
        lost = acked_not_stored
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

    # profiling --------------------------------------------------------------------------------

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
            stderr=open(cfg.workdir / "py-spy.log", "ab"),  # noqa: SIM115
            preexec_fn=_die_with_parent,
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


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def cpu_report(used: dict[str, float], wall: float, n: int, consumer: str) -> dict[str, Any]:
    """CPU seconds per process, the share of the machine they add up to, and the consumer's
    CPU microseconds per reading."""
    cores = os.cpu_count() or 1
    used = dict(used)
    machine = used.pop("machine", 0.0)
    ours = sum(used.values())
    # Whatever else ran on the machine meanwhile (other benchmarks, test suites, ...): when
    # this is large the figures of the phase are not this code's alone.
    used["others"] = max(0.0, machine - ours)
    return {
        "cpu_s": {k: round(v, 2) for k, v in used.items()},
        "cpu_busy_fraction": round(machine / (wall * cores), 3) if wall > 0 else None,
        "cpu_us_per_reading": (
            round(1e6 * sum(v for k, v in used.items() if k.startswith(consumer)) / n, 1)
            if n
            else None
        ),
    }


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def scrape_metrics(port: int) -> dict[str, float]:
    """The ingestor's counters from /metrics, without the parkflow_ingest_ prefix."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    prefix = "parkflow_ingest_"
    for line in text.splitlines():
        if not line.startswith(prefix) or "_created" in line or "_bucket" in line:
            continue
        name, _, value = line.rpartition(" ")
        name = name[len(prefix) :].replace("_total", "")
        out[name] = out.get(name, 0.0) + float(value)
    return {k: (int(v) if v.is_integer() else round(v, 4)) for k, v in out.items()}


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N: whole run under a minute")
    ap.add_argument("--single", type=int, help="readings in the single phases (default 100000)")
    ap.add_argument("--batch", type=int, help="readings in the batch phase (default 500000)")
    ap.add_argument("--raw", type=int, help="points for the InfluxDB ceiling (default --batch)")
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument(
        "--ingestors",
        type=int,
        default=1,
        help="ingestor processes, each taking its share of the tenants",
    )
    ap.add_argument("--window", type=int, default=2000, help="unacked publishes per publisher")
    ap.add_argument("--poll-interval", type=float, default=0.05, help="seconds between polls")
    ap.add_argument("--timeout", type=float, default=120.0, help="stall timeout per phase (s)")
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, help="use this broker instead of starting one")
    ap.add_argument("--influx-url", help="use this InfluxDB instead of starting one")
    ap.add_argument(
        "--phases",
        default="raw,ceiling,single,batch,paced",
        help="comma-separated subset of raw,ceiling,single,batch,paced,drain (drain: optional, "
        "capacity without publishers running: messages queued first, then consumed)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all phases; figures are each phase's median round (noisy machines)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each phase wait up to S seconds for a quiet second (shared machines)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    ap.add_argument(
        "--profile",
        type=Path,
        help="py-spy the (first) ingestor of every parkflow phase into this directory",
    )
    ap.add_argument(
        "--profile-mode",
        choices=("wall", "gil"),
        default="wall",
        help="py-spy: every thread with waits (wall) or only the GIL holder (gil)",
    )
    ap.add_argument(
        "--paced-rate",
        type=float,
        help="msgs/s of the paced phase (default: half the single phase's readings/s)",
    )
    ap.add_argument("--paced-seconds", type=float, help="length of the paced phase (10, quick 5)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    single_n = args.single or (10_000 if args.quick else 100_000)
    batch_n = args.batch or (50_000 if args.quick else 500_000)
    raw_n = args.raw or batch_n
    single_n = round_n(single_n, args.publishers)
    batch_n = round_n(batch_n, args.publishers)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starts background jobs with it ignored, and Ctrl-C must clean up.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = time.monotonic()
    children = Children()
    workdir = Path(tempfile.mkdtemp(prefix="parkflow-bench-"))
    mosquitto = influxd = None
    bench: Bench | None = None
    result: dict[str, Any] = {}
    try:
        if args.mqtt_port is None:
            from tests.support.mosquitto import MosquittoServer

            mosquitto = MosquittoServer(workdir / "mosquitto").start()
            port = mosquitto.port
            log(f"mosquitto on 127.0.0.1:{port}")
        else:
            port = args.mqtt_port
        if args.influx_url is None:
            from tests.support.influx import InfluxServer

            influxd = InfluxServer()
            influxd.start()
            influx_url = influxd.url
            log(f"influxd on {influx_url}")
        else:
            influx_url = args.influx_url
        cfg = Config(
            host=args.mqtt_host if args.mqtt_port is not None else "127.0.0.1",
            port=port,
            influx_url=influx_url,
            publishers=args.publishers,
            window=args.window,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            keep=args.keep,
            workdir=workdir,
            profile=args.profile,
            ingestors=args.ingestors,
            profile_mode=args.profile_mode,
            server_pids={
                name: pid
                for name, pid in (
                    ("mosquitto", mosquitto.proc.pid if mosquitto and mosquitto.proc else None),
                    ("influxd", influxd.pid if influxd else None),
                )
                if pid is not None
            },
        )
        bench = Bench(cfg, children)
        settings = IngestSettings()
        result = {
            "quick": args.quick,
            "cores": os.cpu_count(),
            "publishers": args.publishers,
            "ingestors": args.ingestors,
            "ingestor_settings": {
                "batch_size": settings.batch_size,
                "flush_interval_s": settings.flush_interval_s,
                "receive_maximum": settings.receive_maximum,
                "max_pending_messages": settings.max_pending_messages,
            },
        }
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.repeat):
            if args.repeat > 1:
                log(f"round {r + 1}/{args.repeat}")
            for phase in PHASES:
                if phase not in phases:
                    continue
                if args.wait_quiet:
                    waited = wait_quiet(args.wait_quiet)
                    if waited > 1.5:
                        log(f"  (waited {waited:.0f}s for the machine to be quiet)")
                if phase == "raw":
                    log(f"(b) InfluxDB raw write ceiling, {raw_n} points")
                    out = bench.influx_raw(raw_n)
                elif phase == "ceiling":
                    log(f"(a) bare subscriber ceiling, {single_n} single-reading messages")
                    out = bench.ceiling(single_n)
                elif phase == "single":
                    log(f"(c) parkflow ingest, {single_n} single-reading messages")
                    out = bench.parkflow("single", single_n, 1)
                elif phase == "batch":
                    log(
                        f"(c) parkflow ingest, {batch_n} readings in {BATCH_MESSAGE}-reading messages"
                    )
                    out = bench.parkflow("batch", batch_n, BATCH_MESSAGE)
                elif phase == "paced":
                    single = median_run(runs.get("single", []), "single")
                    pace = args.paced_rate or round(single.get("readings_per_s", 4000) / 2, -2)
                    seconds = args.paced_seconds or (5 if args.quick else 10)
                    paced_n = round_n(int(pace * seconds), args.publishers)
                    log(f"(c) parkflow ingest, {paced_n} single-reading messages at {pace:.0f}/s")
                    out = bench.parkflow("paced", paced_n, 1, pace)
                else:
                    log(f"(d) drain: {single_n} single-reading messages queued, then consumed")
                    out = bench.drain(single_n)
                runs.setdefault(phase, []).append(out)
                settle()
        details = {phase: median_run(results, phase) for phase, results in runs.items()}
        result = {**summarize(details, runs), **result, "details": details}
        result["seconds_total"] = round(time.monotonic() - started, 1)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        result = {"error": "interrupted"}
    except Exception as exc:
        traceback.print_exc()
        log("failed: stopping everything")
        result = {"error": repr(exc)[:2000]}
    finally:
        children.stop_all()
        if bench is not None:
            bench.cleanup(purge_sessions=mosquitto is None)  # our own broker is deleted anyway
        if mosquitto is not None:
            mosquitto.close()
        if influxd is not None:
            influxd.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


def settle(seconds: float = 1.0) -> None:
    """Let InfluxDB and the broker finish what the previous phase left them (e.g. snapshots)."""
    time.sleep(seconds)


def wait_quiet(limit_s: float, busy_below: float = 0.15) -> float:
    """Wait (at most ``limit_s``) for a second in which the machine is nearly idle, so that a
    phase does not start in the middle of someone else's test run. Returns the seconds waited."""
    started = time.monotonic()
    cores = os.cpu_count() or 1
    while time.monotonic() - started < limit_s:
        before = CpuMeter.machine()
        time.sleep(1.0)
        if (CpuMeter.machine() - before) / cores < busy_below:
            break
    return round(time.monotonic() - started, 1)


PHASES = ("raw", "ceiling", "single", "batch", "paced", "drain")
RATE_KEYS = {
    "raw": "points_per_s",
    "ceiling": "msgs_per_s",
    "single": "readings_per_s",
    "batch": "readings_per_s",
    "paced": "readings_per_s",
    "drain": "ingestor_readings_per_s",
}


def median_run(results: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    """The run with the median rate (of several rounds), with every round's rate beside it."""
    if not results:
        return {}
    key = RATE_KEYS[phase]
    ordered = sorted(results, key=lambda x: x.get(key) or 0.0)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(results) > 1:
        chosen = {**chosen, "rounds": [x.get(key) for x in results]}
    return chosen


def summarize(d: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    ceiling = d.get("ceiling", {}).get("msgs_per_s")
    raw = d.get("raw", {}).get("points_per_s")
    single = d.get("single", {})
    batch = d.get("batch", {})
    paced = d.get("paced", {})
    drain = d.get("drain", {})
    # lost and duplicated over every round of every parkflow phase, not just the median ones
    parkflow = [r for p in ("single", "batch", "paced", "drain") for r in runs.get(p, [])]
    s_rate = single.get("readings_per_s")
    b_rate = batch.get("readings_per_s")
    out: dict[str, Any] = {
        "single_ratio": round(s_rate / ceiling, 3) if s_rate and ceiling else None,
        "batch_ratio": round(b_rate / raw, 3) if b_rate and raw else None,
        "lost": sum(p.get("lost", 0) for p in parkflow),
        "duplicated": sum(p.get("duplicated", 0) for p in parkflow),
        "unexpected": sum(p.get("unexpected", 0) for p in parkflow),
        "ceiling_msgs_per_s": ceiling,
        "influx_raw_points_per_s": raw,
        "single_readings_per_s": s_rate,
        "batch_readings_per_s": b_rate,
        "single_latency_ms_p50": single.get("latency_ms_p50"),
        "single_latency_ms_p99": single.get("latency_ms_p99"),
        "batch_latency_ms_p50": batch.get("latency_ms_p50"),
        "batch_latency_ms_p99": batch.get("latency_ms_p99"),
        "paced_msgs_per_s": paced.get("paced_msgs_per_s"),
        "paced_latency_ms_p50": paced.get("latency_ms_p50"),
        "paced_latency_ms_p99": paced.get("latency_ms_p99"),
        "ingestor_cpu_us_per_reading_single": single.get("cpu_us_per_reading"),
        "subscriber_cpu_us_per_msg_ceiling": d.get("ceiling", {}).get("cpu_us_per_reading"),
        "n_ceiling": d.get("ceiling", {}).get("n"),
        "n_influx_raw": d.get("raw", {}).get("n"),
        "n_single": single.get("n"),
        "n_batch": batch.get("n"),
        "n_paced": paced.get("n"),
        "drain_ratio": drain.get("ratio"),
        "drain_bare_msgs_per_s": drain.get("bare", {}).get("msgs_per_s"),
        "drain_ingestor_readings_per_s": drain.get("ingestor_readings_per_s"),
        "complete": all(p.get("complete", True) for p in parkflow),
    }
    targets = {
        "single_ratio": (out["single_ratio"] or 0) >= 0.9,
        "batch_ratio": (out["batch_ratio"] or 0) >= 0.5,
        "lost": out["lost"] == 0,
        "duplicated": out["duplicated"] == 0,
    }
    out["targets_met"] = targets
    return out


if __name__ == "__main__":
    raise SystemExit(main())
