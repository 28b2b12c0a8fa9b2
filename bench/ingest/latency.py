"""Latency polling: when each reading became visible in InfluxDB (see the package docstring)."""

from __future__ import annotations

import time

from bench.ingest.publishers import PublishRun
from bench.ingest.readings import BUCKET_MS, Layout
from tests.support.influx import InfluxClient


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class Visibility:
    """Tracks, per 100 ms bucket of ts (= 100 consecutive readings of one publisher), when its
    readings became visible in InfluxDB."""

    def __init__(
        self, influx: InfluxClient, db: str, layout: Layout, blocks: list[tuple[int, int]]
    ) -> None:
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
    def last_seen(self) -> float:
        """When the answer of the poll that saw the last reading arrived (now if none)."""
        return max((e[-1][2] for e in self.events.values()), default=time.monotonic())

    @property
    def poll_period_ms(self) -> float | None:
        p = self.poll_started
        if len(p) < 2:
            return None
        return round(1000 * (p[-1] - p[0]) / (len(p) - 1), 1)
