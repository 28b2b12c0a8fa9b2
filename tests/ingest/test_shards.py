"""Parks as shards on the ingest side: each park has its own broker and its own ingestors
(``PARKFLOW_PARKS``), all writing into one store. The park id is the shard key: an ingestor
subscribes its parks' topics only, its members split those parks' tenants, and shards that
share a store keep their subscription-layout records apart."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from ingest.mqtt.partition import (
    CATCH_ALL,
    Partition,
    assignment,
    filters_for,
    layout_key,
    stale_filters,
)
from ingest.settings import IngestSettings
from parkflow.errors import ConfigError
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import InfluxStore, ReadingQuery
from tests.support.checker import Publisher, check, meters_of_park
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import IngestorProcess, wait_subscribed
from tests.support.mosquitto import MosquittoServer

PARKS = ("songlam", "hiepphuoc")


def two_parks(where: Path) -> Path:
    """The sample park and a copy of it under another id: two parks, same tenant ids."""
    doc = yaml.safe_load(SAMPLE_REGISTRY.read_text())
    (park,) = doc["parks"]
    other = {**park, "id": PARKS[1], "name": "Hiep Phuoc copy of the sample park"}
    doc["parks"] = [park, other]
    path = where / "registry.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return two_parks(tmp_path)


@pytest.fixture
def registry(registry_path: Path) -> Registry:
    return load_registry(registry_path)


# the layout, pure


def test_a_shard_subscribes_its_parks_topics_not_the_catch_all(registry: Registry) -> None:
    assert filters_for(registry, Partition()) == [CATCH_ALL]
    one = registry.only(["hiepphuoc"])
    assert filters_for(one, Partition(parks=("hiepphuoc",))) == ["ip/hiepphuoc/+/+/readings"]
    # its stale filters include the catch-all an earlier, unsharded layout subscribed
    assert CATCH_ALL in stale_filters(one, Partition(parks=("hiepphuoc",)))
    assert "ip/hiepphuoc/+/+/readings" not in stale_filters(one, Partition(parks=("hiepphuoc",)))


def test_a_shards_members_split_only_its_own_parks_tenants(registry: Registry) -> None:
    one = registry.only(["songlam"])
    tenants = {t for member in assignment(one, 3).values() for t in member}
    assert tenants == {("songlam", t) for t in registry.tenant_ids("songlam")}
    for member in (1, 2, 3):
        for f in filters_for(one, Partition(member, 3, ("songlam",))):
            assert f.startswith("ip/songlam/"), f


def test_shards_sharing_a_store_keep_their_layout_records_apart() -> None:
    assert layout_key(1) == "ingest.layout.1"  # an unsharded deployment keeps its records
    assert layout_key(1, ("songlam",)) != layout_key(1, ("hiepphuoc",))
    assert layout_key(1, ("songlam",)) != layout_key(1)


def test_a_park_the_registry_does_not_hold_is_a_configuration_error(registry_path: Path) -> None:
    settings = IngestSettings(registry=registry_path, parks="songlam, nowhere")
    with pytest.raises(ConfigError, match="'nowhere' is not in the registry"):
        settings.load_registry()
    settings = IngestSettings(registry=registry_path, parks=" hiepphuoc ,songlam")
    assert settings.partition_spec.parks == ("hiepphuoc", "songlam")
    assert sorted(settings.load_registry().parks) == ["hiepphuoc", "songlam"]


# two brokers, their ingestors, one store


@pytest.fixture
def brokers() -> Iterator[tuple[MosquittoServer, MosquittoServer]]:
    a, b = MosquittoServer().start(), MosquittoServer().start()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def one_store(influx_server: InfluxServer) -> Iterator[tuple[str, InfluxStore]]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, name, create_database=True, timeout=10.0)
    try:
        yield name, store
    finally:
        store.close()
        with contextlib.suppress(httpx.HTTPError):
            influx_server.query(f'DROP DATABASE "{name}"')


def test_two_parks_brokers_and_ingestors_write_into_one_store_each_park_once(
    tmp_path: Path,
    registry_path: Path,
    registry: Registry,
    brokers: tuple[MosquittoServer, MosquittoServer],
    influx_server: InfluxServer,
    one_store: tuple[str, InfluxStore],
) -> None:
    database, store = one_store
    procs: list[IngestorProcess] = []
    try:
        for park, broker in zip(PARKS, brokers, strict=True):
            for member in (1, 2):  # two ingestors per park's broker, its tenants split
                ing = IngestorProcess(
                    tmp_path / park,
                    name=f"{park}-{member}",
                    mqtt_port=broker.port,
                    influx_url=influx_server.url,
                    influx_database=database,
                    registry=registry_path,
                    partition=f"{member}/2",
                    env={"PARKFLOW_PARKS": park},
                )
                ing.start()
                procs.append(ing)
        wait_subscribed(procs)
        pubs = [  # sequence numbers apart: the checker tells duplicates by them
            Publisher(
                broker.port,
                meters=meters_of_park(park, registry)[:12],
                batch=5,
                first_seq=1 + 100_000 * i,
            )
            for i, (park, broker) in enumerate(zip(PARKS, brokers, strict=True))
        ]
        # park B's gateway misconfigured onto park A's broker: nobody there serves park B
        stray = Publisher(brokers[0].port, meters=meters_of_park(PARKS[1], registry)[:2])
        for pub in (*pubs, stray):
            pub.connect()
        try:
            for pub in pubs:
                pub.publish(600)
            stray.publish(10)
            for pub in (*pubs, stray):
                pub.wait_answered(30)
            for pub in pubs:
                assert pub.reason_counts() == {0: 120}
            # MQTT 5's "no matching subscribers": the gateway is told, nothing is stored
            assert stray.reason_counts() == {16: 10}
            acked = [r for pub in pubs for r in pub.acknowledged()]
            deadline = time.monotonic() + 60
            while (result := check(store, acked)).lost and time.monotonic() < deadline:
                time.sleep(0.2)
            assert result.ok, result.describe()
            assert result.stored == 1200
            for park in PARKS:
                assert len(store.readings(ReadingQuery(park=park))) == 600
            # every member took a share of its own park's tenants and nothing of the other's
            for ing in procs:
                assert ing.metric("parkflow_ingest_messages_received_total") > 0, ing.name
            records: Callable[[str], int | None] = store.get_checkpoint
            for park in PARKS:
                assert records(layout_key(1, (park,))) == records(layout_key(2, (park,)))
                assert records(layout_key(1, (park,))) is not None
            assert records(layout_key(1)) is None  # no shard wrote the unsharded records
        finally:
            for pub in (*pubs, stray):
                pub.close()
    finally:
        for ing in procs:
            ing.kill()


def test_a_parks_broker_acl_grants_its_own_tenants_only(
    registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from parkflow.cli import main

    assert main(["registry", "acl", str(registry_path), "--park", "hiepphuoc"]) == 0
    acl = capsys.readouterr().out
    assert "topic write ip/hiepphuoc/thep-an/thep-elec/readings" in acl
    assert "ip/songlam/" not in acl
    assert main(["registry", "acl", str(registry_path), "--park", "nowhere"]) == 2
    assert "'nowhere' is not in the registry" in capsys.readouterr().err
