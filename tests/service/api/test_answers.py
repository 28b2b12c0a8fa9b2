"""Remembered answers (``service.api.answers``) are never stale: a second request with nothing
changed is served from memory, the same bytes; a new detection run, a consent, a new or
rewritten day of savings, an acknowledged alert, written by another repository as another
process would, shows in the very next answer."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from parkflow.store import SqliteStore
from service.alerts.consents import ConsentRepository
from service.alerts.repository import AlertRepository
from service.api.answers import Answers
from service.exchanges.model import Benefit, Metering, Method
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.savings import DaySavings
from service.knowledge import load_knowledge
from service.runs import run_detection
from service.state import Database, upgrade
from tests.service.api.conftest import NOW, PARK, A, Api, B, ParkData, make_api


@pytest.fixture
def own(park_data: ParkData, tmp_path: Path) -> Iterator[Api]:
    """The API over a copy of the detection results: a test here adds a run."""
    copy = tmp_path / "results.sqlite"
    shutil.copy(park_data.results_path, copy)
    store = SqliteStore(park_data.store_path)
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(db)
    try:
        yield from make_api(dataclasses.replace(park_data, results_path=copy), store, db, tmp_path)
    finally:
        db.close()
        store.close()


def _get(api: Api, path: str, headers: dict[str, str], **params: Any) -> tuple[bytes, Any]:
    r = api.client.get(path, headers=headers, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.content, r.json()


def _twice(api: Api, path: str, headers: dict[str, str], **params: Any) -> Any:
    """The answer, asked twice: the second made of nothing, the same bytes."""
    first, body = _get(api, path, headers, **params)
    made = api.ctx.answers.made
    again, _ = _get(api, path, headers, **params)
    assert again == first and api.ctx.answers.made == made
    return body


def test_opportunities_follow_a_new_run_and_consents(own: Api) -> None:
    api = own
    mine = _twice(api, "/v1/opportunities", api.a, limit=1000)
    run = mine["run"]["id"]
    every = _get(api, "/v1/opportunities", api.operator, limit=1000)[1]["page"]["items"]
    o = next(o for o in every if {o["from_tenant"], o["to_tenant"]} == {A, B})
    with_b = next(m for m in mine["page"]["items"] if m["ref"] == o["ref"])
    assert with_b["introduced"] is False
    # another tenant's, the operator's and another page are answers of their own
    assert _twice(api, "/v1/opportunities", api.b, limit=1000) != mine
    assert "from_tenant" in _twice(api, "/v1/opportunities", api.operator)["page"]["items"][0]
    assert _twice(api, "/v1/opportunities", api.a, limit=1)["page"]["items"] == [
        mine["page"]["items"][0]
    ]

    # both parties consent, recorded by another process: introduced in the next answer
    elsewhere = ConsentRepository(api.ctx.db)
    elsewhere.give(PARK, o["id"], A, "ops")
    seen = _get(api, "/v1/opportunities", api.a, limit=1000)[1]["page"]["items"]
    assert next(m for m in seen if m["ref"] == with_b["ref"])["introduced"] is False
    elsewhere.give(PARK, o["id"], B, "ops")
    now = _twice(api, "/v1/opportunities", api.a, limit=1000)["page"]["items"]
    assert next(m for m in now if m["ref"] == with_b["ref"])["introduced"] is True
    elsewhere.withdraw(o["id"], B, "ops")
    seen = _get(api, "/v1/opportunities", api.a, limit=1000)[1]["page"]["items"]
    assert next(m for m in seen if m["ref"] == with_b["ref"])["introduced"] is False

    # a new detection run: the next answer is of it
    ctx = api.ctx
    run_detection(ctx.store, ctx.registry, load_knowledge(), ctx.results, now=NOW, trigger="t")
    assert _twice(api, "/v1/opportunities", api.a, limit=1000)["run"]["id"] == run + 1


def _exchange(api: Api, xid: str) -> ExchangeRepository:
    """An exchange between A and B, registered, entered by another process's repository."""
    repo = ExchangeRepository(api.ctx.db)
    repo.create(xid, PARK, "ops", "test", projection=Projection(10.0, 3, 1, 2))
    for stage in (Stage.SCREENED, Stage.UNDER_STUDY):
        repo.move(xid, stage, "test")
    repo.register(
        xid,
        Registration(
            B,
            A,
            "water.reclaimed",
            "m3",
            Benefit.WATER,
            "wwtp-effluent",
            "det-water",
            Metering(Method.TRANSFER_METER, "wwtp-effluent"),
            date(2026, 10, 1),
        ),
    )
    return repo


def _day(xid: str, day: date, quantity: float) -> DaySavings:
    return DaySavings(
        xid, PARK, day, 24, 1.0, quantity, 1_000, 2_000, 3_000, 1.0, 0.0, 0.0,
        None, None, None, False, 0,
    )  # fmt: skip


def test_savings_follow_every_write_of_a_day(api: Api) -> None:
    _savings_follow_every_write(api)


def test_savings_and_alerts_follow_writes_on_each_database(api_sql: Api) -> None:
    _savings_follow_every_write(api_sql)
    test_alerts_follow_an_acknowledgement(api_sql)


def _savings_follow_every_write(api: Api) -> None:
    repo = _exchange(api, "x-answers")
    repo.write_savings([_day("x-answers", date(2026, 11, 1), 10.0)], now_ms=1)
    total = _twice(api, "/v1/savings", api.a)["items"][-1]
    assert (total["period"], total["days"], total["quantity"]) == ("total", 1, 10.0)
    assert total["supplier_vnd"] is None  # A receives: its own side only, from memory too
    repo.write_savings([_day("x-answers", date(2026, 11, 2), 5.0)], now_ms=1)
    total = _twice(api, "/v1/savings", api.a)["items"][-1]
    assert (total["days"], total["quantity"]) == (2, 15.0)
    # the same day rewritten at the same time, as many rows as before: still seen
    repo.write_savings([_day("x-answers", date(2026, 11, 2), 7.0)], now_ms=1)
    assert _twice(api, "/v1/savings", api.a)["items"][-1]["quantity"] == 17.0
    # a move of the exchange, and the range asked, are inputs too
    repo.move("x-answers", Stage.AGREED, "test")
    assert _twice(api, "/v1/savings", api.b)["items"][-1]["receiver_vnd"] is None
    assert _twice(api, "/v1/savings", api.a, since="2026-11-02")["items"][-1]["days"] == 1


def test_alerts_follow_an_acknowledgement(api: Api) -> None:
    mine = _twice(api, "/v1/alerts", api.a, limit=1000)["items"]
    one = next(a for a in mine if a["status"] == "open")
    AlertRepository(api.ctx.db).acknowledge(one["id"], "ops", "on it")
    again = _twice(api, "/v1/alerts", api.a, limit=1000)["items"]
    assert next(a for a in again if a["id"] == one["id"])["status"] == "acknowledged"


def test_answers_kept_are_bounded_in_number_and_bytes() -> None:
    from pydantic import BaseModel

    class Body(BaseModel):
        text: str

    answers = Answers(size=3, max_bytes=100)
    made: list[str] = []

    def make(text: str) -> Any:
        def made_now() -> Body:
            made.append(text)
            return Body(text=text)

        return made_now

    for k in "abc":
        answers.body(k, lambda: 1, make(k))
    answers.body("a", lambda: 1, make("a"))
    assert made == ["a", "b", "c"]  # all three kept
    answers.body("d", lambda: 1, make("d"))  # a fourth: the others forgotten
    answers.body("a", lambda: 1, make("a"))
    assert made[-2:] == ["d", "a"]
    answers.body("big", lambda: 1, make("x" * 90))  # over the bytes: the others forgotten
    answers.body("d", lambda: 1, make("d"))
    assert made[-1] == "d"
    assert answers.body("d", lambda: 2, make("d2")).body == b'{"text":"d2"}'  # inputs moved
