"""The ingestor: receive, validate, batch, write durably, and only then acknowledge.

Three threads move messages, so that nothing slow ever runs where the broker connection is
served:

- paho's network thread only queues each message (and, when the memory bound is reached,
  stops reading the socket: the broker queues the rest);
- the validation thread parses and checks messages into batches, applying the quarantine
  quota per tenant;
- the writer (``run``) writes a batch when it is full (``batch_size`` records) or old
  (``flush_interval_s``) through ``ingest.writer``, then acks its messages in order of
  receipt. Nothing is acked before the store holds it.

A fourth, ``ingest.housekeeping``, watches the store, the broker session and the subscription
layout. Memory is bounded in messages and in payload bytes held (received, not yet acked).
A thread that fails unexpectedly stops the ingestor (exit 1) rather than leave it half alive:
what it had not acked comes again after the supervisor restarts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ingest import failpoints
from ingest.batch import Batch
from ingest.housekeeping import Housekeeper
from ingest.metrics import IngestMetrics
from ingest.mqtt import InboundMessage, MqttSource
from ingest.mqtt.partition import filters_for
from ingest.quota import QuarantineQuota, QuotaLimits, Suppressed, cost, tenant_key
from ingest.settings import IngestSettings
from ingest.validate import Validated, Validator, quarantined_message
from ingest.writer import DurableWriter, IngestStore
from parkflow.model import Rejection
from parkflow.registry import Registry
from parkflow.timeunits import now_ms
from parkflow.topics import split_topic

log = logging.getLogger("parkflow.ingest")

INTERNAL_ERROR = "internal_error"
_VALIDATE_CHUNK = 256  # messages taken from the inbox at once
_VALIDATE_TICK_S = 0.01
_VALIDATE_BYTES = 64 * 1024
_MERGE = 8  # sealed batches written together when the writer has fallen behind
BLOCKED = (
    "holding as many messages as allowed: not reading from the broker until the store takes"
    " them (the broker queues the rest)"
)

SourceFactory = Callable[..., MqttSource]


class Ingestor:
    def __init__(
        self,
        settings: IngestSettings,
        registry: Registry,
        store: IngestStore,
        metrics: IngestMetrics | None = None,
        source_factory: SourceFactory = MqttSource,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.metrics = metrics or IngestMetrics()
        self.validator = Validator(registry, settings.limits(), settings.data_format)
        self.quota = QuarantineQuota(
            QuotaLimits(
                settings.quarantine_burst_records,
                settings.quarantine_records_per_s,
                settings.quarantine_burst_bytes,
                settings.quarantine_bytes_per_s,
            )
        )
        self.partition = settings.partition_spec
        self._cond = threading.Condition()
        self._inbox: deque[InboundMessage] = deque()
        self._batch = Batch()  # being filled by the validator
        self._ready: deque[Batch] = deque()  # full, waiting for the writer
        # Received (written by paho's thread only) and acked or dropped (by the writer only):
        # their difference is what is held in memory, inbox, batches and the one in hand.
        self._in_messages = self._in_bytes = self._in_qos0 = 0
        self._out_messages = self._out_bytes = 0
        self._max_messages = settings.max_pending_messages
        self._max_bytes = settings.max_pending_bytes
        self.metrics.count_received(lambda: self._in_messages, lambda: self._in_qos0)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._blocked_since: float | None = None  # paho's thread waiting for room
        self.failed = False
        self.store_ok = True
        self.acked_messages = 0
        self._retained_logged_at = -1e9
        self.writer = DurableWriter(
            store, settings, self.metrics, self._stopping, self._set_store_ok
        )
        self.source = source_factory(
            settings,
            self._on_message,
            self._on_state,
            filters=filters_for(registry, self.partition),
            on_connected=lambda event: self.housekeeper.connected(event),
        )
        self.housekeeper: Housekeeper = Housekeeper(
            settings,
            registry,
            self.partition,
            store,
            self.source,
            self.writer,
            self.metrics,
            self._set_store_ok,
        )

    # state

    @property
    def connected(self) -> bool:
        return bool(self.source.connected)

    @property
    def ready(self) -> bool:
        """Connected, the store answering, and taking messages: blocked for longer than the
        keepalive, the broker closes our connection without our network thread noticing."""
        blocked = self._blocked_since
        stalled = blocked is not None and time.monotonic() - blocked > self.settings.keepalive_s
        return self.connected and self.store_ok and not stalled

    def _on_state(self, connected: bool) -> None:
        # Messages held from before a reconnect are still written (their acks are skipped: the
        # broker redelivers them, and the store keeps one copy), so QoS 0 ones are not lost.
        self.metrics.connected.set(1 if connected else 0)
        self.metrics.ready.set(1 if self.ready else 0)

    def _set_store_ok(self, ok: bool) -> None:
        self.store_ok = ok
        self.metrics.ready.set(1 if self.ready else 0)

    # receive (paho network thread): must never raise, never do more than queue

    def _on_message(self, msg: InboundMessage) -> None:
        # The common path takes no lock: a deque append is atomic, and each counter has one
        # writer (this thread counts what came in, the writer what went out).
        size = len(msg.payload)
        held = self._in_messages - self._out_messages
        if held > 0 and (
            held >= self._max_messages or self._in_bytes - self._out_bytes + size > self._max_bytes
        ):
            self._wait_for_room(size)
        self._inbox.append(msg)
        self._in_bytes += size
        self._in_messages += 1
        if msg.qos == 0:
            self._in_qos0 += 1

    def _wait_for_room(self, size: int) -> None:
        """Bounded memory: when the store is slow or down, stop reading from the broker (the
        broker queues the rest). One message always gets in, however big. The bound counts
        payload bytes: the readings parsed from them take a few times more."""
        log.warning(BLOCKED, extra={"held": self._in_messages - self._out_messages})
        self._blocked_since = time.monotonic()
        try:
            with self._cond:
                while not self._stopping.is_set():
                    held = self._in_messages - self._out_messages
                    if held == 0 or (
                        held < self._max_messages
                        and self._in_bytes - self._out_bytes + size <= self._max_bytes
                    ):
                        return
                    self._cond.wait(0.5)
                    self.metrics.ready.set(1 if self.ready else 0)
        finally:
            self._blocked_since = None

    # validate (its own thread)

    def _validate_loop(self) -> None:
        """Takes what has come in every VALIDATE_TICK_S: waking up for each message would cost
        more than validating it."""
        inbox, size = self._inbox, self.settings.batch_size
        while not self._stopping.wait(_VALIDATE_TICK_S):
            while inbox:
                results: list[tuple[InboundMessage, Validated]] = []
                nbytes = 0
                # A chunk small enough that batches are sealed while the writer still writes.
                while inbox and len(results) < _VALIDATE_CHUNK and nbytes < _VALIDATE_BYTES:
                    msg = inbox.popleft()
                    nbytes += len(msg.payload)
                    results.append((msg, self._validate(msg)))
                with self._cond:
                    b = self._batch
                    for msg, v in results:
                        if not b.messages:
                            b.since = time.monotonic()
                        b.messages.append(msg)
                        b.nbytes += len(msg.payload)
                        b.readings.extend(v.readings)
                        if v.rejections:
                            self._keep_or_count(b, msg, v)
                        if b.records >= size:  # sealed: the writer takes it whole
                            self._ready.append(b)
                            b = self._batch = Batch()
                    self._gauges()
                    self._cond.notify_all()

    def _validate(self, msg: InboundMessage) -> Validated:
        if msg.retain:
            self._skip_retained(msg)
            return Validated([], [], None)
        try:
            return self.validator.validate(msg.topic, msg.payload, msg.received_ms)
        except Exception as exc:  # a bug must quarantine the message, not stop the pipeline
            log.exception("validation failed unexpectedly", extra={"topic": msg.topic[:200]})
            message = quarantined_message(msg.topic, msg.payload, msg.received_ms)
            rejection = Rejection(
                INTERNAL_ERROR,
                repr(exc)[:500],
                msg.topic,
                msg.received_ms,
                message.message_id,
            )
            return Validated([], [rejection], message)

    def _skip_retained(self, msg: InboundMessage) -> None:
        self.metrics.retained_skipped.inc()
        now = time.monotonic()
        if now - self._retained_logged_at > 60:
            self._retained_logged_at = now
            log.warning(
                "skipping a retained message the broker replayed: only live deliveries are"
                " stored (see the wire contract)",
                extra={"topic": msg.topic[:200]},
            )

    def _quota_key(self, first: Rejection) -> tuple[str, str]:
        """The tenant whose quota a rejection uses: the topic's, when it names a registered
        tenant (a wrong meter id is still that tenant's garbage), else the shared bucket."""
        if first.park is None:
            ids = split_topic(first.topic)
            if ids is not None and self.registry.has_tenant(ids[0], ids[1]):
                return ids[0], ids[1]
        return tenant_key(first.park, first.tenant)

    def _keep_or_count(self, b: Batch, msg: InboundMessage, v: Validated) -> None:
        key = self._quota_key(v.rejections[0])
        records, nbytes = cost(v.rejections, v.message)
        if self.quota.admit(key, records, nbytes, time.monotonic()):
            b.rejections.extend(v.rejections)
            if v.message is not None:
                b.quarantined.append(v.message)
            return
        s = b.suppressed.get(key)
        if s is None:
            s = b.suppressed[key] = Suppressed(msg.received_ms, msg.received_ms)
        s.last_ms = msg.received_ms
        s.messages += 1
        s.payload_bytes += len(msg.payload)
        for r in v.rejections:
            s.reasons[r.reason] += 1
            self.metrics.quarantine_suppressed.labels(r.reason).inc()

    def _gauges(self) -> None:
        self.metrics.pending.set(self._in_messages - self._out_messages)
        self.metrics.pending_bytes.set(self._in_bytes - self._out_bytes)

    # the worker

    def run(self) -> None:
        """Blocks until ``stop()``; a final batch is flushed on the way out when the store allows."""
        validator = self._thread(self._validate_loop, "validate")
        self.source.start()
        self._thread(self._housekeeping, "housekeeping")
        try:
            while True:
                taken = self._take()
                if taken is None:
                    break
                if not self._flush(taken):
                    break
        except Exception:
            log.exception("the writer failed unexpectedly: stopping")
            self.failed = True
        finally:
            self._stopping.set()
            self.housekeeper.record_session()
            self.source.stop()
            validator.join(5)
            self._stopped.set()

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except Exception:
                log.exception("thread failed unexpectedly: stopping", extra={"thread": name})
                self.failed = True
                self.stop()

        t = threading.Thread(target=guarded, name=name, daemon=True)
        t.start()
        return t

    def _housekeeping(self) -> None:
        while not self._stopping.wait(1.0):
            self.housekeeper.tick()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _take(self) -> Batch | None:
        interval = self.settings.flush_interval_s
        with self._cond:
            while True:
                b = self._batch
                if self._ready:
                    # A backlog goes out in one write of several requests, which the store
                    # spreads over its cores; without a backlog, batches stay small.
                    b = self._ready.popleft()
                    while (
                        self._ready
                        and len(b.messages)
                        and b.records < _MERGE * self.settings.batch_size
                    ):
                        b.merge(self._ready.popleft())
                elif b.messages and (
                    time.monotonic() - b.since >= interval or self._stopping.is_set()
                ):
                    self._batch = Batch()
                elif self._stopping.is_set():
                    return None
                else:
                    timeout = interval if not b.messages else b.since + interval - time.monotonic()
                    self._cond.wait(max(0.0, timeout))
                    continue
                return b

    def _flush(self, b: Batch) -> bool:
        m = self.metrics
        m.lag.set(max(0.0, time.time() - b.messages[0].received_ms / 1000))
        batch = b.to_write(now_ms())
        try:
            failpoints.hit("before_write")
            if not self.writer.write(batch):
                return False
            failpoints.hit("after_write")  # durable but not acked: redelivery must not duplicate
            acked = self.source.ack(b.messages)
            m.acked.inc(acked)
            self.acked_messages += acked
            m.lag.set(0)
            return True
        finally:
            with self._cond:
                self._out_bytes += b.nbytes
                self._out_messages += len(b.messages)
                self._gauges()
                self._cond.notify_all()  # wake a receiver waiting for room
