"""The ingestor: receive, validate, batch, write durably, and only then acknowledge.

Three threads, so that nothing slow ever runs where the broker connection is served:

- paho's network thread only queues each message (and, when the bound is reached, stops
  reading the socket: the broker queues the rest);
- the validation thread parses and checks messages into the batch being built, applying the
  quarantine quota per tenant;
- the writer (``run``) writes a batch when it is full (``batch_size`` records) or old
  (``flush_interval_s``), then acks its messages in order of receipt.

While the store fails with a retryable error the writer retries with exponential backoff and
jitter and acks nothing. When the store refuses data permanently, the writer first checks that
it takes a known-good point; only then is the data to blame, and the refused point is found by
bisection and quarantined in its place. A quarantine record the store refuses is written again
without its payload, and if even that is refused it is logged and counted: never a crash.
Memory is bounded in messages and in bytes held (received, not yet acked).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest import failpoints
from ingest.metrics import IngestMetrics
from ingest.mqtt import InboundMessage, MqttSource
from ingest.mqtt.partition import (
    filters_for,
    layout_id,
    layout_key,
    others,
    stale_filters,
)
from ingest.mqtt.source import Connected
from ingest.quota import QuarantineQuota, QuotaLimits, Suppressed, cost, summary, tenant_key
from ingest.settings import IngestSettings
from ingest.validate import Validated, Validator, quarantined_message
from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.model import QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.registry import Registry
from parkflow.store.base import Store
from parkflow.topics import topic_for

log = logging.getLogger("parkflow.ingest")

INTERNAL_ERROR = "internal_error"
STORE_REJECTED = "store_rejected"
HEALTH_INTERVAL_S = 5.0
SESSION_REFRESH_S = 60.0
CANARY = "ingest.canary"
_VALIDATE_CHUNK = 256  # messages taken from the inbox at once
_VALIDATE_TICK_S = 0.01
_VALIDATE_BYTES = 64 * 1024
_MERGE = 8  # sealed batches written together when the writer has fallen behind
SESSION_LOST = (
    "broker has no session for us although we held one before: whatever it had queued for us"
    " since then is lost (broker restarted without its persistence file, the session expired,"
    " or another client used our client id with a clean start)"
)

SourceFactory = Callable[..., MqttSource]


def session_key(client_id: str) -> str:
    """Store state: when this client id last held a live session on the broker (epoch ms)."""
    return f"ingest.session.{client_id}"


@dataclass(slots=True)
class _Batch:
    messages: list[InboundMessage] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    quarantined: list[QuarantinedMessage] = field(default_factory=list)
    suppressed: dict[tuple[str, str], Suppressed] = field(default_factory=dict)
    nbytes: int = 0  # payload bytes of ``messages``
    since: float = 0.0  # monotonic time the oldest message was added

    @property
    def records(self) -> int:
        return len(self.readings) + len(self.rejections) + len(self.quarantined)

    def merge(self, other: _Batch) -> None:
        self.messages += other.messages
        self.readings += other.readings
        self.rejections += other.rejections
        self.quarantined += other.quarantined
        self.nbytes += other.nbytes
        for key, s in other.suppressed.items():
            mine = self.suppressed.get(key)
            if mine is None:
                self.suppressed[key] = s
            else:
                mine.first_ms = min(mine.first_ms, s.first_ms)
                mine.last_ms = max(mine.last_ms, s.last_ms)
                mine.reasons.update(s.reasons)
                mine.messages += s.messages
                mine.payload_bytes += s.payload_bytes


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
        self._batch = _Batch()  # being filled by the validator
        self._ready: deque[_Batch] = deque()  # full, waiting for the writer
        # Received (written by paho's thread only) and acked or dropped (by the writer only):
        # their difference is what is held in memory, inbox, batches and the one in hand.
        self._in_messages = self._in_bytes = self._in_qos0 = 0
        self._out_messages = self._out_bytes = 0
        self._max_messages = settings.max_pending_messages
        self._max_bytes = settings.max_pending_bytes
        self.metrics.count_received(lambda: self._in_messages, lambda: self._in_qos0)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._events: queue.SimpleQueue[Connected] = queue.SimpleQueue()
        self.store_ok = True
        self.acked_messages = 0
        self._writing = False
        self._store_seen = 0.0  # monotonic time of the last write or ping that succeeded
        self._canary_ok_at = -1e9
        self._retained_logged_at = -1e9
        self._layout_done = False
        self._layout_recorded = False
        self._takeovers_seen = 0
        self._drops_seen = 0
        self.source = source_factory(
            settings,
            self._on_message,
            self._on_state,
            filters=filters_for(registry, self.partition),
            on_connected=self._events.put,
        )

    # state

    @property
    def connected(self) -> bool:
        return bool(self.source.connected)

    @property
    def ready(self) -> bool:
        return self.connected and self.store_ok

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
        broker queues the rest). One message always gets in, however big."""
        with self._cond:
            while not self._stopping.is_set():
                held = self._in_messages - self._out_messages
                if held == 0 or (
                    held < self._max_messages
                    and self._in_bytes - self._out_bytes + size <= self._max_bytes
                ):
                    return
                self._cond.wait(0.5)

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
                            b = self._batch = _Batch()
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

    def _keep_or_count(self, b: _Batch, msg: InboundMessage, v: Validated) -> None:
        first = v.rejections[0]
        key = tenant_key(first.park, first.tenant)
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
        validator = threading.Thread(target=self._validate_loop, name="validate", daemon=True)
        validator.start()
        self.source.start()
        threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True).start()
        try:
            while True:
                taken = self._take()
                if taken is None:
                    break
                if not self._flush(taken):
                    break
        finally:
            self._record_session()
            self.source.stop()
            validator.join(5)
            self._stopped.set()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _take(self) -> _Batch | None:
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
                    self._batch = _Batch()
                elif self._stopping.is_set():
                    return None
                else:
                    timeout = interval if not b.messages else b.since + interval - time.monotonic()
                    self._cond.wait(max(0.0, timeout))
                    continue
                if b.suppressed:
                    now_ms = time.time_ns() // 1_000_000
                    b.rejections.extend(summary(k, s, now_ms) for k, s in b.suppressed.items())
                return b

    def _flush(self, b: _Batch) -> bool:
        m = self.metrics
        m.lag.set(max(0.0, time.time() - b.messages[0].received_ms / 1000))
        batch = WriteBatch(tuple(b.readings), tuple(b.rejections), tuple(b.quarantined))
        try:
            failpoints.hit("before_write")
            if not self._write(batch):
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
            except StoreUnavailable as exc:
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
            except StoreRejected as exc:
                self.metrics.write_errors.labels("permanent").inc()
                if self._store_takes_known_good():
                    log.error("store rejected a batch, bisecting", extra={"error": str(exc)[:300]})
                    return self._write_split(batch, exc)
                self._set_store_ok(False)
                log.error(
                    "store refuses even a known-good point: the store is at fault, not the data;"
                    " will retry",
                    extra={"error": str(exc)[:300], "retry_in_s": round(delay, 2)},
                )
            else:
                self._store_seen = time.monotonic()
                self._set_store_ok(True)
                self._observe(batch, time.perf_counter() - started)
                return True
            if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                return False
            delay = min(delay * 2, self.settings.retry_max_s)

    def _store_takes_known_good(self) -> bool:
        """Whether the store accepts a tiny point of a shape it always takes."""
        if time.monotonic() - self._canary_ok_at < 1.0:
            return True
        try:
            self.store.set_state(CANARY, time.time_ns() // 1_000_000)
        except StoreError as exc:
            log.error("store refused the known-good point", extra={"error": str(exc)[:300]})
            return False
        self._canary_ok_at = time.monotonic()
        return True

    def _write_split(self, batch: WriteBatch, exc: StoreRejected) -> bool:
        """Find what the store refuses: readings apart from quarantine records, then halves."""
        items: list[WriteBatch]
        r, q, msgs = batch.readings, batch.rejections, batch.messages
        if r and (q or msgs):
            items = [WriteBatch(r), WriteBatch((), q, msgs)]
        elif len(r) > 1:
            items = [WriteBatch(r[: len(r) // 2]), WriteBatch(r[len(r) // 2 :])]
        elif len(r) == 1:
            rejection, message = _store_rejected(r[0], exc)
            items = [WriteBatch((), (rejection,), (message,))]
        elif len(q) + len(msgs) > 1:
            records: list[Rejection | QuarantinedMessage] = [*q, *msgs]
            half = len(records) // 2
            items = [_records(records[:half]), _records(records[half:])]
        else:
            return self._write_refused_record(batch, exc)
        return all(self._write_retrying(b) for b in items if len(b))

    def _write_refused_record(self, batch: WriteBatch, exc: StoreRejected) -> bool:
        """One quarantine record the store refuses: keep what can be kept, never crash."""
        if batch.messages:
            (m,) = batch.messages
            if not m.payload:
                return self._unstored(m.message_id, "message", m.topic, exc)
            plain = QuarantinedMessage(
                m.message_id, m.topic, m.received_ms, b"", m.size, m.park, m.tenant, m.meter
            )
            log.warning(
                "store refused a quarantined payload; keeping the record without it",
                extra={"message_id": m.message_id, "error": str(exc)[:300]},
            )
            return self._write_once(WriteBatch(messages=(plain,)), m.message_id, "message", exc)
        (q,) = batch.rejections
        plain_q = Rejection(
            q.reason,
            _ascii(q.detail, 300),
            _ascii(q.topic, 300),
            q.received_ms,
            q.message_id,
            q.index,
            q.park,
            q.tenant,
            q.meter,
        )
        if plain_q == q:  # already as plain as it gets
            return self._unstored(q.rid, q.reason, q.topic, exc)
        return self._write_once(WriteBatch(rejections=(plain_q,)), q.rid, q.reason, exc)

    def _write_once(self, batch: WriteBatch, ident: str, what: str, exc: StoreRejected) -> bool:
        """The stripped record: retried while the store is down, logged if still refused."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                self.store.write(batch)
            except StoreUnavailable:
                if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                    return False
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            except StoreRejected as again:
                topic = batch.messages[0].topic if batch.messages else batch.rejections[0].topic
                return self._unstored(ident, what, topic, again)
            self._observe(batch, 0.0)
            return True

    def _unstored(self, ident: str, what: str, topic: str, exc: StoreRejected) -> bool:
        self.metrics.quarantine_unstored.inc()
        log.error(
            "store refused a quarantine record even without its payload; it is kept only in"
            " this log line",
            extra={"id": ident, "what": what, "topic": _ascii(topic, 300), "error": str(exc)[:300]},
        )
        return True

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

    # housekeeping (its own thread): store health, the broker session, the subscription layout

    def _housekeeping(self) -> None:
        last_refresh = time.monotonic()
        while not self._stopping.wait(1.0):
            self._ping_if_idle()
            while True:
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
                self._check_session(event)
            due = time.monotonic() - last_refresh > SESSION_REFRESH_S
            if due and self._record_session():
                last_refresh = time.monotonic()
            self._settle_layout()
            subscribed = (
                self.connected and self.source.subscribed_generation == self.source.generation
            )
            self.metrics.subscribed.set(1 if subscribed else 0)
            takeovers, drops = self.source.takeovers, self.source.disconnects
            if takeovers > self._takeovers_seen:
                self.metrics.session_takeovers.inc(takeovers - self._takeovers_seen)
                self._takeovers_seen = takeovers
            if drops > self._drops_seen:
                self.metrics.disconnects.inc(drops - self._drops_seen)
                self._drops_seen = drops

    def _ping_if_idle(self) -> None:
        """Readiness must reflect the store even when no data flows: ping it while idle."""
        if self._writing or time.monotonic() - self._store_seen < HEALTH_INTERVAL_S:
            return
        try:
            self.store.ping()
        except StoreError as exc:
            if self.store_ok:
                log.warning("store unreachable", extra={"error": str(exc)[:300]})
            self._set_store_ok(False)
        else:
            self._store_seen = time.monotonic()
            self._set_store_ok(True)

    def _check_session(self, event: Connected) -> None:
        """A connection without a session although we had one means the broker dropped what
        it had queued for us: say so loudly, whether it happened while we ran or while we were
        stopped (the store remembers when we last held one)."""
        if event.session_present:
            self._record_session()
            return
        if self.source.sessions_lost and event.generation > 1:
            self.metrics.sessions_lost.inc()  # a reconnect of this process; the source logged it
            self._record_session()
            return
        key = session_key(self.settings.client_id)
        try:
            last = self.store.get_state(key)
        except StoreError:
            self._events.put(event)  # ask again when the store answers
            return
        expiry_ms = self.settings.session_expiry_s * 1000
        if last is not None and event.at_ms - last < expiry_ms:
            self.metrics.sessions_lost.inc()
            log.error(
                SESSION_LOST,
                extra={
                    "client_id": self.settings.client_id,
                    "last_connected_s_ago": round((event.at_ms - last) / 1000, 1),
                },
            )
        else:
            log.info("new session on the broker", extra={"client_id": self.settings.client_id})
        self._record_session()

    def _record_session(self) -> bool:
        if not self.connected:
            return False
        try:
            self.store.set_state(session_key(self.settings.client_id), time.time_ns() // 1_000_000)
        except StoreError:
            return False
        return True

    def _settle_layout(self) -> None:
        """Record our subscribed layout, then drop filters of earlier layouts once every other
        member has recorded the same one (see ``ingest.mqtt.partition``)."""
        if self._layout_done or self.source.subscribed_generation == 0:
            return
        layout = layout_id(self.registry, self.partition.members)
        try:
            if not self._layout_recorded:
                self.store.set_state(layout_key(self.partition.member), layout)
                self._layout_recorded = True
            waiting = [
                k for k in others(self.partition) if self.store.get_state(layout_key(k)) != layout
            ]
        except StoreError:
            return
        if waiting:
            return
        stale = stale_filters(self.registry, self.partition)
        self.source.unsubscribe(stale)
        self._layout_done = True
        log.info(
            "subscription layout settled",
            extra={"partition": str(self.partition), "unsubscribed": len(stale)},
        )


def _records(records: list[Rejection | QuarantinedMessage]) -> WriteBatch:
    return WriteBatch(
        (),
        tuple(r for r in records if isinstance(r, Rejection)),
        tuple(r for r in records if isinstance(r, QuarantinedMessage)),
    )


def _ascii(text: str, limit: int) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")[:limit]


def _store_rejected(r: Reading, exc: StoreRejected) -> tuple[Rejection, QuarantinedMessage]:
    topic = topic_for(r.park, r.tenant, r.meter)
    payload = json.dumps({"ts": r.ts_ms, "value": r.value, "seq": r.seq}).encode()
    message = quarantined_message(
        topic, payload, time.time_ns() // 1_000_000, r.park, r.tenant, r.meter
    )
    rejection = Rejection(
        STORE_REJECTED,
        f"the store refused this reading: {exc}"[:500],
        topic,
        message.received_ms,
        message.message_id,
        None,
        r.park,
        r.tenant,
        r.meter,
    )
    return rejection, message
