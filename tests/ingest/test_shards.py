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

from ingest.housekeeping import session_key
from ingest.mqtt.partition import (
    CATCH_ALL,
    Partition,
    assignment,
    filters_for,
    layout_id,
    layout_key,
    stale_filters,
    tenants_of,
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
    shard = Partition(parks=("hiepphuoc",))
    assert filters_for(registry, shard) == ["ip/hiepphuoc/+/+/readings"]
    stale = stale_filters(registry, shard)
    assert "ip/hiepphuoc/+/+/readings" not in stale


def test_whatever_an_earlier_layout_subscribed_is_dropped_in_a_shard(registry: Registry) -> None:
    """From unsharded (the catch-all, or tenant filters of every park), from a shard of more
    parks, or back to unsharded: the stale filters cover what the earlier layout held."""
    songlam = Partition(1, 2, ("songlam",))
    stale = set(stale_filters(registry, songlam))
    every_tenant = {f"ip/{p}/{t}/+/readings" for p, t in tenants_of(registry)}
    mine = set(filters_for(registry, songlam))
    assert CATCH_ALL in stale and "ip/hiepphuoc/+/+/readings" in stale
    assert every_tenant - mine <= stale and not mine & stale
    assert all(f.startswith("ip/songlam/") for f in mine)
    unsharded = set(stale_filters(registry, Partition()))
    assert {"ip/songlam/+/+/readings", "ip/hiepphuoc/+/+/readings"} <= unsharded
    assert CATCH_ALL not in unsharded


def test_a_shards_members_split_only_its_own_parks_tenants(registry: Registry) -> None:
    tenants = {t for member in assignment(registry, 3, ("songlam",)).values() for t in member}
    assert tenants == {("songlam", t) for t in registry.tenant_ids("songlam")}
    for member in (1, 2, 3):
        for f in filters_for(registry, Partition(member, 3, ("songlam",))):
            assert f.startswith("ip/songlam/"), f
    # the layout names the shard's own assignment
    assert layout_id(registry, 3, ("songlam",)) != layout_id(registry, 3, ("hiepphuoc",))


def test_shards_sharing_a_store_keep_their_records_apart() -> None:
    assert layout_key(1) == "ingest.layout.1"  # an unsharded deployment keeps its records
    assert layout_key(1, ("songlam",)) != layout_key(1, ("hiepphuoc",))
    assert layout_key(1, ("songlam",)) != layout_key(1)
    # the same client id (the default user names) on two parks' brokers: two sessions
    assert session_key("parkflow-ingest-1") == "ingest.session.parkflow-ingest-1"
    assert session_key("parkflow-ingest-1", ("songlam",)) != session_key(
        "parkflow-ingest-1", ("hiepphuoc",)
    )


def test_a_park_the_registry_does_not_hold_is_a_configuration_error(registry_path: Path) -> None:
    settings = IngestSettings(registry=registry_path, parks="songlam, nowhere")
    with pytest.raises(ConfigError, match="'nowhere' is not in the registry"):
        settings.load_registry()
    settings = IngestSettings(registry=registry_path, parks=" hiepphuoc ,songlam")
    assert settings.partition_spec.parks == ("hiepphuoc", "songlam")
    # the whole registry: a reading of another park an earlier layout brings is still stored
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
            shard = []
            for member in (1, 2):  # two ingestors per park's broker, its tenants split
                ing = IngestorProcess(
                    tmp_path / park,
                    name=f"{park}-{member}",
                    # every park's ingestors named alike, as the default broker users are
                    client_id=f"parkflow-ingest-{member}",
                    mqtt_port=broker.port,
                    influx_url=influx_server.url,
                    influx_database=database,
                    registry=registry_path,
                    partition=f"{member}/2",
                    env={"PARKFLOW_PARKS": park},
                )
                ing.start()
                shard.append(ing)
            wait_subscribed(shard)  # the first park's sessions recorded before the second's
            procs += shard
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
            # a shard's fresh session is not mistaken for one lost on another park's broker
            for ing in procs:
                assert ing.metric("parkflow_ingest_sessions_lost_total") == 0, ing.name
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
