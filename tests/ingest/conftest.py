"""Fixtures of the ingest tests: a broker running the shipped files, and ingestor processes
that are all killed after each test, pass or fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.mqtt.acl import mosquitto_acl
from tests.support.deployed import REG, USERS
from tests.support.ingestor_proc import IngestorPool, IngestorProcess
from tests.support.mosquitto import MosquittoServer


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[MosquittoServer]:
    """Mosquitto running the shipped files, with the sample park's generated ACL."""
    broker = MosquittoServer(passwords=USERS, acl=mosquitto_acl(REG), deploy=True).start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def ingestors(tmp_path: Path) -> Iterator[Callable[..., IngestorProcess]]:
    with IngestorPool(tmp_path) as pool:
        yield pool.make
