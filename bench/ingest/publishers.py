"""The publisher processes: forked, connected and with their messages built before the clock.

Each is a ``QoS1Publisher`` (``service.simulate.mqtt_client``) driven by its own loop, with
paho's in-flight limit off and ``--window`` bounding it instead (see the package docstring).
"""

from __future__ import annotations

import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.ingest.children import Children, child_setup, recv
from bench.ingest.readings import Layout
from service.simulate.mqtt_client import REFUSED, QoS1Publisher

ACK_PATIENCE_S = 120.0  # after its last publish, how long a publisher waits for its PUBACKs


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
    child_setup()
    try:
        start, end = block
        size = layout.msg_size
        messages = [layout.message(k) for k in range(start, end, size)]
        acked = bytearray(len(messages))
        failed = 0

        def on_answer(j: int, mid: int, code: int, at: float) -> None:
            nonlocal failed
            if code >= REFUSED:
                failed += 1
            else:
                acked[j] = 1

        client = QoS1Publisher[int](
            host,
            port,
            on_answer,
            client_id=client_id,
            window=window,
            blocking=True,
            keepalive=60,
            clean_start=True,
        )
        client.connect(background=False)
        conn.send(("ready", len(messages)))
        go.wait()
        cpu = time.process_time()
        times = array("d", bytes(8 * len(messages)))
        now = time.monotonic
        publish = client.publish
        loop = client.loop
        wait_for_room = client.wait_for_room
        began = now()
        for j, (topic, payload) in enumerate(messages):
            wait_for_room()
            if rate:
                wait = began + j / rate - now()
                while wait > 0:
                    loop(min(wait, 0.005))
                    wait = began + j / rate - now()
            times[j] = now()
            publish(topic, payload, j)
            if (j + 1) & 63 == 0:
                loop(0)
        last_publish = now()
        client.wait_answered(ACK_PATIENCE_S)
        last_ack = now()
        cpu = time.process_time() - cpu
        client.close()
        conn.send(
            (
                "done",
                {
                    "times": times.tobytes(),
                    "acked": bytes(acked),
                    "failed": failed,
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
        self.go = children.ctx.Event()
        self.conns: list[Connection] = []
        tag = uuid.uuid4().hex[:8]
        for p, block in enumerate(self.blocks):
            client_id = f"bench-pub-{tag}-{p}"
            args = (host, port, layout, block, window, self.go, client_id, rate / publishers)
            _, conn = children.fork(_publisher, args, f"bench-publisher-{p}")
            self.conns.append(conn)

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


def publish_one(host: str, port: int, topic: str, payload: bytes) -> None:
    """One QoS 1 message, returning once the broker acknowledged it."""
    client = QoS1Publisher[None](
        host,
        port,
        lambda *answer: None,
        client_id=f"bench-probe-{uuid.uuid4().hex[:8]}",
        keepalive=60,
        clean_start=True,
    )
    client.connect(background=False)
    try:
        client.publish(topic, payload, None)
        if client.wait_answered(10):
            raise TimeoutError("the probe reading was not acknowledged by the broker")
    finally:
        client.close()
