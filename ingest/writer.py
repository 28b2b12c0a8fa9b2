"""Writing a batch until it is durable, whatever the store does.

While the store fails with a retryable error the writer retries with exponential backoff and
jitter. When it refuses data outright, the writer first checks that it takes a known-good
point: if it refuses that too, the store is at fault and the batch is retried like an outage,
never blamed on the data. Only then is the refused point found by bisection and quarantined in
its place (``store_rejected``). A quarantine record the store refuses is written again without
its payload; if even that is refused, it is logged in full and counted, and the batch goes on:
never a crash. A refused reading's own record is the one exception: it must be kept, or the
reading would be acknowledged while it exists nowhere, so that refusal is an outage too.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.validate import quarantined_message
from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.model import QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.store.ports import Checkpoints, ReadingSink
from parkflow.timeunits import now_ms
from parkflow.topics import topic_for

log = logging.getLogger("parkflow.ingest")

STORE_REJECTED = "store_rejected"
CANARY = "ingest.canary"
_LOGGED_PAYLOAD = 4096  # bytes of a payload the store refused that the log line keeps
UNSTORED = (
    "store refused a quarantine record even without its payload; it is kept only in this log line"
)


class IngestStore(ReadingSink, Checkpoints, Protocol):
    """What the ingestor needs of a store: to write, and to keep its session and layout marks."""


class DurableWriter:
    def __init__(
        self,
        store: IngestStore,
        settings: IngestSettings,
        metrics: IngestMetrics,
        stopping: threading.Event,
        on_store_state: Callable[[bool], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self._stopping = stopping
        self._on_store_state = on_store_state
        self.writing = False
        self.store_seen = 0.0  # monotonic time of the last write that succeeded

    def write(self, batch: WriteBatch) -> bool:
        """True once the batch is durable; False only when stopping while the store is failing."""
        self.writing = True
        try:
            return self._write_retrying(batch, must_keep=False)
        finally:
            self.writing = False

    def _backoff(self, delay: float) -> float | None:
        """Wait before the next attempt; None when stopping."""
        if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
            return None
        return min(delay * 2, self.settings.retry_max_s)

    def _write_retrying(self, batch: WriteBatch, *, must_keep: bool) -> bool:
        delay: float | None = self.settings.retry_initial_s
        while delay is not None:
            started = time.perf_counter()
            try:
                self.store.write(batch)
            except StoreUnavailable as exc:
                self.metrics.write_errors.labels("retryable").inc()
                self._on_store_state(False)
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
                    return self._write_split(batch, exc, must_keep=must_keep)
                self._on_store_state(False)
                log.error(
                    "store refuses even a known-good point: the store is at fault, not the data;"
                    " will retry",
                    extra={"error": str(exc)[:300], "retry_in_s": round(delay, 2)},
                )
            else:
                self.store_seen = time.monotonic()
                self._on_store_state(True)
                self._observe(batch, time.perf_counter() - started)
                return True
            delay = self._backoff(delay)
        return False

    def _store_takes_known_good(self) -> bool:
        """Whether the store accepts a tiny point of a shape it always takes (asked every time:
        it decides whether data is dropped)."""
        try:
            self.store.set_checkpoint(CANARY, now_ms())
        except StoreError as exc:
            log.error("store refused the known-good point", extra={"error": str(exc)[:300]})
            return False
        return True

    def _write_split(self, batch: WriteBatch, exc: StoreRejected, *, must_keep: bool) -> bool:
        """Find what the store refuses: readings apart from quarantine records, then halves."""
        items: list[tuple[WriteBatch, bool]]
        r, q, msgs = batch.readings, batch.rejections, batch.messages
        if r and (q or msgs):
            items = [(WriteBatch(r), must_keep), (WriteBatch((), q, msgs), must_keep)]
        elif len(r) > 1:
            items = [(WriteBatch(r[: len(r) // 2]), False), (WriteBatch(r[len(r) // 2 :]), False)]
        elif len(r) == 1:
            rejection, message = store_rejected(r[0], exc)
            items = [(WriteBatch((), (rejection,), (message,)), True)]
        elif len(q) + len(msgs) > 1:
            records: list[Rejection | QuarantinedMessage] = [*q, *msgs]
            half = len(records) // 2
            items = [(_records(records[:half]), must_keep), (_records(records[half:]), must_keep)]
        else:
            return self._write_refused_record(batch, exc, must_keep=must_keep)
        return all(self._write_retrying(b, must_keep=keep) for b, keep in items if len(b))

    def _write_refused_record(
        self, batch: WriteBatch, exc: StoreRejected, *, must_keep: bool
    ) -> bool:
        """One quarantine record the store refuses: written again as plain as it gets."""
        plain = _plain(batch)
        if plain is not None:
            log.warning(
                "store refused a quarantine record; keeping it in a plainer form",
                extra={"error": str(exc)[:300]},
            )
            batch = plain
        delay: float | None = self.settings.retry_initial_s
        while delay is not None:
            try:
                self.store.write(batch)
            except StoreUnavailable:
                pass
            except StoreRejected as again:
                if not must_keep:
                    return self._unstored(batch, again)
                # A refused reading's record: dropping it would ack the reading unstored.
                self._on_store_state(False)
                log.error(
                    "store refuses the record of a reading it refused: treated as an outage,"
                    " nothing is acknowledged until it takes it",
                    extra={"error": str(again)[:300], "retry_in_s": round(delay, 2)},
                )
            else:
                self._observe(batch, None)
                return True
            delay = self._backoff(delay)
        return False

    def _unstored(self, batch: WriteBatch, exc: StoreRejected) -> bool:
        self.metrics.quarantine_unstored.inc()
        record: dict[str, object] = {"error": str(exc)[:300]}
        for q in batch.rejections:
            record |= {"rid": q.rid, "reason": q.reason, "detail": q.detail, "topic": q.topic}
        for m in batch.messages:
            record |= {
                "message_id": m.message_id,
                "topic": m.topic,
                "size": m.size,
                "payload_b64": base64.b64encode(m.payload[:_LOGGED_PAYLOAD]).decode(),
            }
        log.error(UNSTORED, extra=record)
        return True

    def _observe(self, batch: WriteBatch, seconds: float | None) -> None:
        m = self.metrics
        if seconds is not None:
            m.write_seconds.observe(seconds)
        m.batch_size.observe(len(batch))
        m.stored.inc(len(batch.readings))
        for r in batch.rejections:
            m.quarantined.labels(r.reason).inc()
        if batch.readings:
            newest = max(r.ts_ms for r in batch.readings)
            m.reading_age.set(max(0.0, time.time() - newest / 1000))


def _records(records: list[Rejection | QuarantinedMessage]) -> WriteBatch:
    return WriteBatch(
        (),
        tuple(r for r in records if isinstance(r, Rejection)),
        tuple(r for r in records if isinstance(r, QuarantinedMessage)),
    )


def _plain(batch: WriteBatch) -> WriteBatch | None:
    """The one record without its payload and with ASCII text, or None if already so."""
    if batch.messages:
        (m,) = batch.messages
        if not m.payload:
            return None
        return WriteBatch(
            messages=(
                QuarantinedMessage(
                    m.message_id, m.topic, m.received_ms, b"", m.size, m.park, m.tenant, m.meter
                ),
            )
        )
    (q,) = batch.rejections
    plain = Rejection(
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
    return None if plain == q else WriteBatch(rejections=(plain,))


def _ascii(text: str, limit: int) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")[:limit]


def store_rejected(r: Reading, exc: StoreRejected) -> tuple[Rejection, QuarantinedMessage]:
    """The quarantine record of a reading the store refused, with the reading as its payload."""
    topic = topic_for(r.park, r.tenant, r.meter)
    payload = json.dumps({"ts": r.ts_ms, "value": r.value, "seq": r.seq}).encode()
    message = quarantined_message(topic, payload, now_ms(), r.park, r.tenant, r.meter)
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
