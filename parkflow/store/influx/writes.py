"""Writing to InfluxDB: a batch's points formatted up front, sent in as few requests as the
limits allow, groups of readings at once, change markers last; quarantine records keep the
stamp they were first written with, so a retry or a bisection half rewrites the same point."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from parkflow.errors import StoreRejected
from parkflow.model import WriteBatch
from parkflow.store.influx.http import InfluxHttp
from parkflow.store.influx.lineprotocol import (
    LineProtocolError,
    QuarantineClock,
    message_line,
    reading_lines_by_meter,
    reading_lines_ns,
    rejection_line,
)
from parkflow.store.influx.rollup_lines import change_lines
from parkflow.store.ports import Clock

_STAMPS_KEPT = 200_000  # quarantine records whose stamp is remembered for rewrites


class InfluxWrites:
    _http: InfluxHttp
    _lock: threading.Lock
    _pool: ThreadPoolExecutor | None
    _stamps: OrderedDict[str, int]
    _clock: QuarantineClock
    _wall: Clock
    _writer: str
    max_points: int
    max_body_bytes: int
    write_concurrency: int

    def write(self, batch: WriteBatch) -> None:
        groups, records = self._lines(batch)
        self._http.ensure_database()
        # One request for the whole batch where it fits (every request costs InfluxDB an
        # fsync), change markers last. They are stamped anew at every attempt: a retry must not
        # carry a marker time the rollup worker may already be past.
        tail = [*records, *self._change_lines(batch)]
        if len(groups) == 1:
            self._post_in_order([*groups[0], *tail], "ns")
        else:
            self._post_groups(groups, "ns")
            self._post_in_order(tail, "ns")

    def _lines(self, batch: WriteBatch) -> tuple[list[list[str]], list[str]]:
        """Format the whole batch before sending anything: a bad point fails it up front.

        Readings beyond one request are split into ``write_concurrency`` groups by meter,
        posted at once (InfluxDB spreads concurrent requests over its cores), each group's
        requests in order: two readings of one meter and timestamp are always in one group,
        so the later one received wins, as the store promises.
        """
        readings = batch.readings
        try:
            k = self.write_concurrency
            if len(readings) > self.max_points and k > 1:
                groups = reading_lines_by_meter(readings, k)
            else:
                groups = [reading_lines_ns(readings)]
            records = [
                rejection_line(r, self._stamp(r.rid, r.received_ms)) for r in batch.rejections
            ]
            records += [
                message_line(m, self._stamp("m:" + m.message_id, m.received_ms))
                for m in batch.messages
            ]
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write to InfluxDB: {exc}") from exc
        return groups, records

    def _stamp(self, identity: str, received_ms: int) -> int:
        """The record's timestamp: the one it got the first time this store wrote it, so a
        retry or a bisection half rewrites the same point. A redelivered copy has another
        received_ms, gets a point of its own, and reads keep one per identity."""
        identity = f"{identity}@{received_ms}"
        with self._lock:
            stamp = self._stamps.get(identity)
            if stamp is not None:
                self._stamps.move_to_end(identity)
                return stamp
        stamp = self._clock.stamp(received_ms)
        with self._lock:
            self._stamps[identity] = stamp
            while len(self._stamps) > _STAMPS_KEPT:
                self._stamps.popitem(last=False)
        return stamp

    def _change_lines(self, batch: WriteBatch) -> list[str]:
        """The batch's change markers, stamped with the write time of this attempt."""
        if not batch.readings:
            return []
        written = self._wall()
        try:
            return change_lines(batch.readings, self._writer, lambda: self._clock.stamp(written))
        except LineProtocolError as exc:  # the same ids already passed as reading tags
            raise StoreRejected(f"cannot write to InfluxDB: {exc}") from exc

    def _chunks(self, lines: Sequence[str]) -> Iterator[bytes]:
        """Request bodies of at most ``max_points`` lines and ``max_body_bytes`` bytes."""
        for start in range(0, len(lines), self.max_points):
            part = lines[start : start + self.max_points]
            body = "\n".join(part).encode("utf-8")  # one encode per request, not per line
            if len(body) <= self.max_body_bytes or len(part) == 1:
                yield body
            else:
                yield from self._chunks_by_size(part)

    def _chunks_by_size(self, lines: Sequence[str]) -> Iterator[bytes]:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            data = line.encode("utf-8")
            if chunk and size + len(data) > self.max_body_bytes:
                yield b"\n".join(chunk)
                chunk, size = [], 0
            chunk.append(data)
            size += len(data) + 1
        if chunk:
            yield b"\n".join(chunk)

    def _post_in_order(self, lines: Sequence[str], precision: str) -> None:
        """Every chunk, one after the other: later points win over earlier ones."""
        for body in self._chunks(lines):
            self._http.post_write(body, precision)

    def _post_groups(self, groups: Sequence[Sequence[str]], precision: str) -> None:
        """Groups at once, ``write_concurrency`` at a time, each group in order. Every group is
        tried; a rejected point wins over an outage, so the caller bisects to find it."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.write_concurrency, thread_name_prefix="influx-write"
                )
            pool = self._pool
        futures = [pool.submit(self._post_in_order, g, precision) for g in groups]
        failed = [e for e in (f.exception() for f in futures) if e is not None]
        if failed:
            permanent = [e for e in failed if isinstance(e, StoreRejected)]
            raise (permanent or failed)[0]

    def _post_lines(self, lines: Sequence[str], precision: str) -> None:
        """Points with distinct keys (rollups): chunks at once, the last after the others."""
        if len(lines) <= self.max_points or self.write_concurrency < 2:
            self._post_in_order(lines, precision)
            return
        step = self.max_points
        head = [lines[i : i + step] for i in range(0, len(lines) - step, step)]
        self._post_groups(head, precision)
        self._post_in_order(lines[len(head) * step :], precision)
