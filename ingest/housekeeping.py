"""What an ingestor does besides moving messages, on a thread of its own, once a second:

- keeps readiness true to the store while no data flows (it pings it when idle);
- checks each new connection's session against the one it held (the store remembers when: a
  connection without a session although we had one means the broker dropped what it had
  queued for us, and that must be said loudly, whether it happened while we ran or not);
- settles the subscription layout (``ingest.mqtt.partition``): it records, and refreshes, that
  it has subscribed the current layout, and drops an earlier layout's filters only once every
  other member has confirmed the same layout since we subscribed, so no tenant is ever left
  without a subscriber;
- copies the MQTT edge's counters into the metrics.

Nothing here may block the pipeline: a store that does not answer is asked again next time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.metrics import IngestMetrics
from ingest.mqtt.partition import (
    Partition,
    layout_id,
    layout_key,
    others,
    shard_state,
    stale_filters,
)
from ingest.mqtt.source import Connected, MqttSource
from ingest.settings import IngestSettings
from ingest.writer import DurableWriter, IngestStore
from parkflow.errors import StoreError
from parkflow.registry import Registry
from parkflow.timeunits import now_ms

log = logging.getLogger("parkflow.ingest")

HEALTH_INTERVAL_S = 5.0
SESSION_LOST = (
    "broker has no session for us although we held one before: whatever it had queued for us"
    " since then is lost (broker restarted without its persistence file, the session expired,"
    " or another client used our client id with a clean start)"
)


def session_key(client_id: str, parks: Sequence[str] = ()) -> str:
    """Checkpoint: when this client id last held a live session on the broker (epoch ms).
    Shards sharing one store each have their own broker, where the same client id (the
    default user names) names another session."""
    return shard_state("session", client_id, parks)


def confirmed_key(member: int, parks: Sequence[str] = ()) -> str:
    """Checkpoint: when this member last confirmed it is subscribed to its recorded layout."""
    return f"{layout_key(member, parks)}.at"


@dataclass(slots=True)
class _Layout:
    subscribed_generation: int = 0  # the connection we recorded the layout for
    subscribed_ms: int = 0  # and when its SUBACKs came back
    unsubscribe_generation: int | None = None  # the connection the unsubscribe went out on
    done: bool = False


class Housekeeper:
    def __init__(
        self,
        settings: IngestSettings,
        registry: Registry,
        partition: Partition,
        store: IngestStore,
        source: MqttSource,
        writer: DurableWriter,
        metrics: IngestMetrics,
        on_store_state: Callable[[bool], None],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.partition = partition
        self.store = store
        self.source = source
        self.writer = writer
        self.metrics = metrics
        self._on_store_state = on_store_state
        self._lock = threading.Lock()
        self._events: list[Connected] = []
        self._layout = _Layout()
        self._layout_id = layout_id(registry, partition.members, partition.parks)
        self._last_refresh = 0.0
        self._pinged = 0.0
        self._seen = {"takeovers": 0, "drops": 0}

    def connected(self, event: Connected) -> None:
        """From the MQTT edge (its thread): checked on the next tick."""
        with self._lock:
            self._events.append(event)

    def tick(self) -> None:
        self._ping_if_idle()
        with self._lock:
            events, self._events = self._events, []
        for i, event in enumerate(events):
            if not self._check_session(event):  # the store did not answer: next tick
                with self._lock:
                    self._events[:0] = events[i:]
                break
        self._settle_layout()
        due = time.monotonic() - self._last_refresh > self.settings.checkpoint_interval_s
        if due and self.record_session() and self._confirm_layout():
            self._last_refresh = time.monotonic()
        self._copy_counters()

    # the store

    def _ping_if_idle(self) -> None:
        """Readiness must reflect the store even when no data flows: ping it while idle."""
        now = time.monotonic()
        idle = now - max(self.writer.store_seen, self._pinged) >= HEALTH_INTERVAL_S
        if self.writer.writing or not idle:
            return
        self._pinged = now
        try:
            self.store.ping()
        except StoreError as exc:
            log.warning("store unreachable", extra={"error": str(exc)[:300]})
            self._on_store_state(False)
        else:
            self._on_store_state(True)

    # the broker session

    def _check_session(self, event: Connected) -> bool:
        """False when the store could not be asked (the event is kept for the next tick)."""
        if event.session_present:
            self.record_session()
            return True
        if self.source.sessions_lost and event.generation > 1:
            self.metrics.sessions_lost.inc()  # a reconnect of this process; the source logged it
            self.record_session()
            return True
        try:
            last = self.store.get_checkpoint(
                session_key(self.settings.client_id, self.partition.parks)
            )
        except StoreError:
            return False
        if last is not None and event.at_ms - last < self.settings.session_expiry_s * 1000:
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
        self.record_session()
        return True

    def record_session(self) -> bool:
        if not self.source.connected:
            return False
        try:
            self.store.set_checkpoint(
                session_key(self.settings.client_id, self.partition.parks), now_ms()
            )
        except StoreError:
            return False
        return True

    # the subscription layout

    def _subscribed(self) -> bool:
        s = self.source
        return s.connected and s.subscribed_generation == s.generation

    def _confirm_layout(self) -> bool:
        """Record (again) that we are subscribed to our layout, now."""
        if not self._subscribed():
            return True  # nothing to confirm yet
        try:
            self.store.set_checkpoint(
                layout_key(self.partition.member, self.partition.parks), self._layout_id
            )
            self.store.set_checkpoint(
                confirmed_key(self.partition.member, self.partition.parks), now_ms()
            )
        except StoreError:
            return False
        return True

    def _settle_layout(self) -> None:
        lay, source = self._layout, self.source
        if lay.done or not self._subscribed():
            return
        if lay.subscribed_generation != source.generation:  # a (new) connection subscribed
            if not self._confirm_layout():
                return
            lay.subscribed_generation = source.generation
            lay.subscribed_ms = now_ms()
        if lay.unsubscribe_generation is None:
            try:
                # Every other member confirmed our layout after we subscribed: it is alive
                # and holds its tenants now, not only at some time in the past.
                parks = self.partition.parks
                waiting = [
                    k
                    for k in others(self.partition)
                    if self.store.get_checkpoint(layout_key(k, parks)) != self._layout_id
                    or (self.store.get_checkpoint(confirmed_key(k, parks)) or 0) < lay.subscribed_ms
                ]
            except StoreError:
                return
            if waiting:
                return
            lay.unsubscribe_generation = source.unsubscribe(
                stale_filters(self.registry, self.partition)
            )
            return
        if source.unsubscribed_generation == lay.unsubscribe_generation:
            lay.done = True
            log.info("subscription layout settled", extra={"partition": str(self.partition)})
        elif source.generation != lay.unsubscribe_generation:
            lay.unsubscribe_generation = None  # the connection dropped first: send it again

    def _copy_counters(self) -> None:
        m, s = self.metrics, self.source
        m.subscribed.set(1 if self._subscribed() else 0)
        for name, now, counter in (
            ("takeovers", s.takeovers, m.session_takeovers),
            ("drops", s.disconnects, m.disconnects),
        ):
            if now > self._seen[name]:
                counter.inc(now - self._seen[name])
                self._seen[name] = now
