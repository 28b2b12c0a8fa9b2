"""The ingestor's decisions, as pure logic with small fakes for the store and the broker edge:
what is acked when the store refuses data, how a store that does not answer is retried, when
the subscription counts as granted. The same paths run against real servers in
test_ingest_hardening.py; these pin down the cases those cannot produce on demand."""

from __future__ import annotations

import threading
import time

from ingest.housekeeping import Housekeeper
from ingest.metrics import IngestMetrics
from ingest.mqtt.partition import Partition
from ingest.mqtt.source import Connected, MqttSource
from ingest.settings import IngestSettings
from ingest.writer import DurableWriter
from parkflow.errors import StoreRejected, StoreUnavailable
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import MemoryStore

REG = load_registry(SAMPLE_REGISTRY)
SETTINGS = IngestSettings(registry=SAMPLE_REGISTRY, retry_initial_s=0.01, retry_max_s=0.02)
READING = Reading("songlam", "thep-an", "thep-water", "water.potable", Direction.IN, 1_000, 1.0)


class RefusesData(MemoryStore):
    """Takes checkpoints (so the known-good point passes) but refuses every data write: what
    InfluxDB at its series limit, or a corrupt SQLite file, looks like."""

    def write(self, batch: WriteBatch) -> None:
        raise StoreRejected("partial write: max-series-per-database limit exceeded")


def test_a_reading_is_never_acked_when_even_its_quarantine_record_is_refused() -> None:
    stopping = threading.Event()
    metrics = IngestMetrics()
    states: list[bool] = []
    writer = DurableWriter(RefusesData(), SETTINGS, metrics, stopping, states.append)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(writer.write(WriteBatch((READING,)))))
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "the writer gave up on a reading it could not keep anywhere"
    assert states and states[-1] is False  # not ready: it is an outage, not bad data
    stopping.set()
    t.join(5)
    assert result == [False]  # stopped without the batch being durable: nothing is acked
    assert metrics.quarantine_unstored._value.get() == 0


class RefusesMessages(MemoryStore):
    def write(self, batch: WriteBatch) -> None:
        if batch.messages:
            raise StoreRejected("refused")
        super().write(batch)


def test_a_refused_quarantine_message_is_logged_and_the_rest_kept() -> None:
    from ingest.validate import Validator
    from parkflow.topics import topic_for

    v = Validator(REG).validate(topic_for("songlam", "thep-an", "thep-water"), b"{", 5)
    assert v.message is not None
    store = RefusesMessages()
    metrics = IngestMetrics()
    writer = DurableWriter(store, SETTINGS, metrics, threading.Event(), lambda ok: None)
    assert writer.write(WriteBatch((READING,), tuple(v.rejections), (v.message,))) is True
    from parkflow.store import ReadingQuery

    assert store.readings(ReadingQuery()) == [READING]
    assert [q.reason for q in store.quarantined()] == ["malformed_json"]
    assert metrics.quarantine_unstored._value.get() == 1


class Unanswering(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def get_checkpoint(self, name: str) -> int | None:
        self.asked += 1
        raise StoreUnavailable("down")

    def set_checkpoint(self, name: str, value: int) -> None:
        raise StoreUnavailable("down")

    def ping(self) -> None:
        raise StoreUnavailable("down")


class FakeSource:
    connected = True
    generation = 1
    subscribed_generation = 1
    unsubscribed_generation = 0
    sessions_lost = 0
    takeovers = 0
    disconnects = 0

    def unsubscribe(self, filters: object) -> int:
        return self.generation


def test_a_store_down_at_the_first_connection_is_asked_once_a_tick_not_in_a_loop() -> None:
    store = Unanswering()
    writer = DurableWriter(store, SETTINGS, IngestMetrics(), threading.Event(), lambda ok: None)
    keeper = Housekeeper(
        SETTINGS,
        REG,
        Partition(1, 1),
        store,
        FakeSource(),  # type: ignore[arg-type]
        writer,
        IngestMetrics(),
        lambda ok: None,
    )
    keeper.connected(Connected(1, False, 10_000))
    for _ in range(3):
        keeper.tick()
    assert store.asked == 3  # one question per tick, the event kept for the next


def _source(filters: list[str]) -> MqttSource:
    return MqttSource(SETTINGS, lambda m: None, filters=filters)


def test_a_refused_subscribe_chunk_is_not_forgotten_by_a_later_granted_one() -> None:
    source = _source([f"ip/p/t{i}/+/readings" for i in range(300)])
    source.generation = 1
    source._pending_subacks = {11: 1, 12: 1}
    source._on_subscribe(source.client, None, 11, [0x87] * 200, None)  # not authorized
    source._on_subscribe(source.client, None, 12, [0x01] * 100, None)
    assert source.subscribed_generation == 0


def test_a_member_without_tenants_counts_as_subscribed() -> None:
    source = _source([])
    source._subscribe(source.client, 3)
    assert source.subscribed_generation == 3
