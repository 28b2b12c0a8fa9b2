"""The ingestor: receive, validate, batch, write durably, and only then acknowledge.

Messages are validated as they arrive (on paho's network thread) and held until a batch is
full (``batch_size`` readings) or old (``flush_interval_s``). The worker writes the batch, then
acks its messages in order of receipt. While the store fails with a retryable error the worker
retries with exponential backoff and jitter and acks nothing; the broker stops sending once
``receive_maximum`` messages are unacked, so memory stays bounded and nothing is dropped.
A point the store rejects permanently is found by bisection and quarantined in its place.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest import failpoints
from ingest.errors import PermanentWriteError, RetryableWriteError, StoreError
from ingest.metrics import IngestMetrics
from ingest.model import Reading, Rejection, WriteBatch
from ingest.mqtt import InboundMessage, MqttSource
from ingest.registry import Registry
from ingest.settings import IngestSettings
from ingest.store.base import Store
from ingest.validate import Validator, topic_for

log = logging.getLogger("parkflow.ingest")

INTERNAL_ERROR = "internal_error"
HEALTH_INTERVAL_S = 5.0
STORE_REJECTED = "store_rejected"

SourceFactory = Callable[..., MqttSource]


@dataclass(slots=True)
class _Pending:
    messages: list[InboundMessage] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    since: float = 0.0  # monotonic time the oldest message arrived


class Ingestor:
    def __init__(
        self,
        settings: IngestSettings,
        registry: Registry,
        store: Store,
        metrics: IngestMetrics | None = None,
        source_factory: SourceFactory = MqttSource,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or IngestMetrics()
        self.validator = Validator(registry, settings.limits(), settings.data_format)
        self._cond = threading.Condition()
        self._pending = _Pending()
        self._inflight = 0  # messages of the batch being written: held, unacked, until it is done
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self.store_ok = True
        self.acked_messages = 0
        self._writing = False
        self._store_seen = 0.0  # monotonic time of the last write or ping that succeeded
        self.source = source_factory(settings, self._on_message, self._on_state)

    # state

    @property
    def connected(self) -> bool:
        return bool(self.source.connected)

    @property
    def ready(self) -> bool:
        return self.connected and self.store_ok

    def _on_state(self, connected: bool) -> None:
        if connected:
            # Whatever is still pending came on the old connection: the broker redelivers it
            # now, and acks for it may no longer be sent, so hold only the new copies.
            with self._cond:
                dropped = len(self._pending.messages)
                self._pending = _Pending()
                self.metrics.pending.set(self._inflight)
                self._cond.notify_all()
            if dropped:
                log.info("reconnected: awaiting redelivery", extra={"messages": dropped})
        self.metrics.connected.set(1 if connected else 0)
        self.metrics.ready.set(1 if self.ready else 0)

    def _set_store_ok(self, ok: bool) -> None:
        self.store_ok = ok
        self.metrics.ready.set(1 if self.ready else 0)

    # receive (paho network thread): must never raise

    def _on_message(self, msg: InboundMessage) -> None:
        try:
            readings, rejections = self.validator.validate(msg.topic, msg.payload, msg.received_ms)
        except Exception as exc:  # a bug must quarantine the message, not kill the network loop
            log.exception("validation failed unexpectedly", extra={"topic": msg.topic})
            readings = []
            rejections = [
                Rejection(INTERNAL_ERROR, repr(exc)[:500], msg.topic, msg.payload, msg.received_ms)
            ]
        self.metrics.received.inc()
        with self._cond:
            # Bounded memory: when the store is slow or down, stop reading from the broker. The
            # batch being written counts too: its messages stay in memory until they are acked.
            limit = self.settings.max_pending_messages
            while (
                len(self._pending.messages) + self._inflight >= limit
                and not self._stopping.is_set()
            ):
                self._cond.notify_all()
                self._cond.wait(0.5)
            p = self._pending
            if not p.messages:
                p.since = time.monotonic()
            p.messages.append(msg)
            p.readings.extend(readings)
            p.rejections.extend(rejections)
            self.metrics.pending.set(len(p.messages) + self._inflight)
            if len(p.readings) + len(p.rejections) >= self.settings.batch_size:
                self._cond.notify()

    # the worker

    def run(self) -> None:
        """Blocks until ``stop()``; a final batch is flushed on the way out when the store allows."""
        self.source.start()
        threading.Thread(target=self._watch_store, name="store-health", daemon=True).start()
        try:
            while True:
                taken = self._take()
                if taken is None:
                    break
                if not self._flush(taken):
                    break
        finally:
            self.source.stop()
            self._stopped.set()

    def _watch_store(self) -> None:
        """Readiness must reflect the store even when no data flows: ping it while idle."""
        every = HEALTH_INTERVAL_S
        while not self._stopping.wait(every):
            if self._writing or time.monotonic() - self._store_seen < every:
                continue
            try:
                self.store.ping()
            except StoreError as exc:
                if self.store_ok:
                    log.warning("store unreachable", extra={"error": str(exc)[:300]})
                self._set_store_ok(False)
            else:
                self._store_seen = time.monotonic()
                self._set_store_ok(True)

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _take(self) -> _Pending | None:
        interval = self.settings.flush_interval_s
        with self._cond:
            while True:
                p = self._pending
                size = len(p.readings) + len(p.rejections)
                if p.messages and (
                    size >= self.settings.batch_size
                    or time.monotonic() - p.since >= interval
                    or self._stopping.is_set()
                ):
                    self._pending = _Pending()
                    self._inflight = len(p.messages)
                    return p
                if self._stopping.is_set():
                    return None
                timeout = (
                    interval if not p.messages else max(0.0, p.since + interval - time.monotonic())
                )
                self._cond.wait(timeout)

    def _flush(self, p: _Pending) -> bool:
        m = self.metrics
        m.lag.set(max(0.0, time.time() - p.messages[0].received_ms / 1000))
        batch = WriteBatch(tuple(p.readings), tuple(p.rejections))
        try:
            failpoints.hit("before_write")
            if not self._write(batch):
                return False
            failpoints.hit("after_write")  # durable but not acked: redelivery must not duplicate
            acked = self.source.ack(p.messages)
            m.acked.inc(acked)
            self.acked_messages += acked
            m.lag.set(0)
            return True
        finally:
            with self._cond:
                self._inflight = 0
                m.pending.set(len(self._pending.messages))
                self._cond.notify_all()  # wake a receiver waiting for room

    def _write(self, batch: WriteBatch) -> bool:
        """True once the batch is durable; False only when stopping while the store is failing."""
        self._writing = True
        try:
            return self._write_retrying(batch)
        finally:
            self._writing = False

    def _write_retrying(self, batch: WriteBatch) -> bool:
        delay = self.settings.retry_initial_s
        while True:
            started = time.perf_counter()
            try:
                self.store.write(batch)
            except RetryableWriteError as exc:
                self.metrics.write_errors.labels("retryable").inc()
                self._set_store_ok(False)
                log.warning(
                    "store write failed, will retry",
                    extra={
                        "error": str(exc)[:300],
                        "retry_in_s": round(delay, 2),
                        "size": len(batch),
                    },
                )
                if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                    return False
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            except PermanentWriteError as exc:
                self.metrics.write_errors.labels("permanent").inc()
                log.error("store rejected a batch, bisecting", extra={"error": str(exc)[:300]})
                return self._write_split(batch, exc)
            self._store_seen = time.monotonic()
            self._set_store_ok(True)
            self._observe(batch, time.perf_counter() - started)
            return True

    def _write_split(self, batch: WriteBatch, exc: PermanentWriteError) -> bool:
        items: list[WriteBatch]
        if len(batch.readings) > 1:
            half = len(batch.readings) // 2
            items = [
                WriteBatch(batch.readings[:half], batch.rejections),
                WriteBatch(batch.readings[half:], ()),
            ]
        elif len(batch.readings) == 1:
            items = [
                WriteBatch((), batch.rejections),
                WriteBatch((), (_store_rejected(batch.readings[0], exc),)),
            ]
        elif len(batch.rejections) > 1:
            half = len(batch.rejections) // 2
            items = [
                WriteBatch((), batch.rejections[:half]),
                WriteBatch((), batch.rejections[half:]),
            ]
        else:
            # One quarantine record refused: keep it, with its payload made plain text.
            (r,) = batch.rejections
            plain = r.payload.hex().encode()
            if r.payload == plain:  # already plain, and still refused: nothing safe to drop
                raise RuntimeError(f"store refuses even a plain quarantine record: {exc}") from exc
            detail = f"{r.detail} (payload stored as hex after the store refused it: {exc})"[:2000]
            items = [
                WriteBatch(
                    (),
                    (
                        Rejection(
                            r.reason,
                            detail,
                            r.topic,
                            plain,
                            r.received_ms,
                            r.index,
                            r.park,
                            r.tenant,
                            r.meter,
                        ),
                    ),
                )
            ]
        return all(self._write_retrying(b) for b in items if len(b))

    def _observe(self, batch: WriteBatch, seconds: float) -> None:
        m = self.metrics
        m.write_seconds.observe(seconds)
        m.batch_size.observe(len(batch))
        m.stored.inc(len(batch.readings))
        for r in batch.rejections:
            m.quarantined.labels(r.reason).inc()
        if batch.readings:
            newest = max(r.ts_ms for r in batch.readings)
            m.reading_age.set(max(0.0, time.time() - newest / 1000))


def _store_rejected(r: Reading, exc: PermanentWriteError) -> Rejection:
    payload = json.dumps({"ts": r.ts_ms, "value": r.value, "seq": r.seq}).encode()
    return Rejection(
        STORE_REJECTED,
        f"the store refused this reading: {exc}"[:2000],
        topic_for(r.park, r.tenant, r.meter),
        payload,
        int(time.time() * 1000),
        None,
        r.park,
        r.tenant,
        r.meter,
    )
