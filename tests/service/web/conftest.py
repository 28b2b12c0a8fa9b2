"""The pages over the API tests' real parts (the simulated sample park in SQLite, a real
detection run, alerts opened by the service's own evaluation, keys from the key repository),
plus exchanges in the operational database with verified days: one between tenant A
(det-phuoc) and tenant B (wwtp), one of B's with another tenant, and one A is no party to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from parkflow.store import SqliteStore, Store
from service.api.context import ApiContext
from service.exchanges.model import Benefit, Metering, Method
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.savings import DaySavings
from service.state import Database, upgrade
from service.web.session import CSRF_COOKIE
from tests.service.api.conftest import (
    NOW,
    PARK,
    A,
    Api,
    B,
    ParkData,
    make_api,
    park_data,
    park_store,
)

__all__ = ["park_data", "park_store"]

C = "giay-sai-gon"  # a third tenant: B's exchange with it is none of A's business
EXCHANGES = {"x-ab": (B, A), "x-bc": (B, C)}
IDEA = "x-idea"  # identified only: no parties yet


@dataclass
class Web:
    api: Api
    ctx: ApiContext

    def client(self) -> TestClient:
        return self.api.client

    def login(self, headers: dict[str, str]) -> TestClient:
        """A fresh browser-like client signed in with the key in ``headers``."""
        client = TestClient(self.api.client.app, follow_redirects=False)
        key = headers["Authorization"].removeprefix("Bearer ")
        login(client, key)
        return client


def csrf_of(client: TestClient) -> str:
    if CSRF_COOKIE not in client.cookies:
        client.get("/web/login")
    return str(client.cookies[CSRF_COOKIE])


def login(client: TestClient, key: str) -> None:
    r = client.post("/web/login", data={"key": key, "csrf": csrf_of(client)})
    assert r.status_code == 303, r.text


def add_exchanges(db: Database) -> None:
    """Two exchanges operating, with ten verified days each (the savings rows as the savings
    refresh writes them), and an idea."""
    repo = ExchangeRepository(db)
    proj = Projection(200.0, 730_000_000, 365_000_000, 365_000_000, 10.0, 73_000.0)
    first = date(2026, 10, 25)
    for i, (xid, (supplier, receiver)) in enumerate(sorted(EXCHANGES.items())):
        repo.create(xid, PARK, "ops-lan", "ops-lan", projection=proj, now_ms=1_000 + i)
        for j, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY)):
            repo.move(xid, stage, "ops-lan", now_ms=2_000 + j)
        repo.register(
            xid,
            Registration(
                supplier=supplier,
                receiver=receiver,
                resource="water.treated_effluent",
                unit="m3",
                benefit=Benefit.WATER,
                from_meter="wwtp-effluent",
                to_meter="det-water",
                metering=Metering(Method.TRANSFER_METER, "wwtp-effluent"),
                start=first,
            ),
        )
        repo.move(xid, Stage.AGREED, "ops-lan", "signed", now_ms=3_000)
        repo.move(xid, Stage.OPERATING, "ops-lan", now_ms=4_000)
        repo.write_savings(
            [
                DaySavings(
                    exchange=xid,
                    park=PARK,
                    day=first + timedelta(days=d),
                    hours_measured=24,
                    coverage=1.0,
                    quantity=180.0 + d,
                    supplier_vnd=1_000_000 * (i + 1),
                    receiver_vnd=2_000_000 * (i + 1),
                    park_vnd=3_000_000 * (i + 1),
                    water_m3=180.0 + d,
                    co2e_t=0.01,
                    landfill_t=0.0,
                    factor_year=2026,
                    check_quantity=None,
                    loss=None,
                    disagrees=False,
                    unpriced_hours=0,
                )
                for d in range(10)
            ]
        )

    repo.create(IDEA, PARK, "ops-lan", "ops-lan", now_ms=5_000)


def build(
    park: ParkData, store: Store, db: Database, tmp_path: Path, **settings: object
) -> Iterator[Web]:
    for api in make_api(park, store, db, tmp_path):
        api.ctx.settings = api.ctx.settings.model_copy(
            update={"web_secure_cookie": False, "now": NOW.to_pydatetime(), **settings}
        )
        add_exchanges(db)
        yield Web(api, api.ctx)


@pytest.fixture
def web(park_data: ParkData, tmp_path: Path) -> Iterator[Web]:
    """SQLite store and operational database."""
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(db)
    store = SqliteStore(park_data.store_path)
    try:
        yield from build(park_data, store, db, tmp_path)
    finally:
        store.close()
        db.close()


@pytest.fixture
def web_stores(park_data: ParkData, park_store: Store, tmp_path: Path) -> Iterator[Web]:
    """On each store (SQLite, InfluxDB, both rolled up by ``park_store``); the operational
    database in SQLite."""
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(db)
    try:
        yield from build(park_data, park_store, db, tmp_path)
    finally:
        db.close()


@pytest.fixture
def web_sql(park_data: ParkData, database: Database, tmp_path: Path) -> Iterator[Web]:
    """On each operational database (SQLite, PostgreSQL)."""
    store = SqliteStore(park_data.store_path)
    try:
        yield from build(park_data, store, database, tmp_path)
    finally:
        store.close()
