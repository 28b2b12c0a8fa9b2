"""The under-performance condition as the alerts code observes it: an operating exchange below
a share of its frozen projection for N measured days opens an alert, its recovery resolves it,
and an exchange that ended is observed as cleared."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta

from service.alerts.kinds import EXCHANGE_UNDERPERFORMING
from service.alerts.lifecycle import Status
from service.alerts.repository import AlertRepository
from service.exchanges.alerts import underperformance_observations
from service.exchanges.model import Benefit, Exchange, Metering, Method
from service.exchanges.pipeline import Pipeline, Projection, Stage
from service.exchanges.savings import DaySavings, day_savings
from service.state import Database

PIPE = Pipeline(Stage.OPERATING, "ops", projection=Projection(240.0, 1, 1, 1), frozen=True)
EX = Exchange(
    "x1", "p1", "wwtp", "det", "water.treated_effluent", "m3", Benefit.WATER,
    Metering(Method.TRANSFER_METER, "reuse-line"), date(2026, 9, 1), pipeline=PIPE,
)  # fmt: skip


def days(per_hour: list[float], first: int = 1) -> list[DaySavings]:
    return [
        day_savings(EX, date(2026, 9, first) + timedelta(days=i), [q] * 24)
        for i, q in enumerate(per_hour)
    ]


def test_under_performance_opens_and_resolves_an_alert(database: Database) -> None:
    repo = AlertRepository(database)
    low = days([10.0, 5.0, 5.0, 5.0])  # 100%, then 50% for three days
    (obs,) = underperformance_observations([EX], {"x1": low[:2]}, 0.7, 3, {})
    assert not obs.holds  # two low days are not three
    (obs,) = underperformance_observations([EX], {"x1": low}, 0.7, 3, {})
    assert obs.holds and obs.kind == EXCHANGE_UNDERPERFORMING.name and obs.subject == "x1"
    assert "50%, 50%, 50% of its projected 240.0 m3/day" in obs.summary
    (applied,) = repo.apply([obs], 1_000)
    assert applied.alert.status is Status.OPEN
    told = {n["recipient"] for n in repo.notifications(applied.alert.id)}
    assert told == {"p1/operator/operators", "p1/wwtp", "p1/det"}  # the operators, both parties
    recovered = [*low, *days([10.0], first=5)]
    repo.apply(underperformance_observations([EX], {"x1": recovered}, 0.7, 3, {}), 2_000)
    alert = repo.get(EXCHANGE_UNDERPERFORMING.name, "x1")
    assert alert is not None and alert.status is Status.RESOLVED


def test_gaps_are_no_evidence_and_ended_exchanges_clear() -> None:
    nan = [math.nan] * 24
    gap_days = [day_savings(EX, date(2026, 9, d), nan) for d in range(1, 5)]
    (obs,) = underperformance_observations([EX], {"x1": gap_days}, 0.7, 3, {})
    assert not obs.holds
    ended = dataclasses.replace(EX, pipeline=dataclasses.replace(PIPE, stage=Stage.ENDED))
    unfrozen = dataclasses.replace(EX, id="x2", pipeline=dataclasses.replace(PIPE, frozen=False))
    tracked = {"x1": ("p1", None)}
    out = underperformance_observations([unfrozen], {}, 0.7, 3, tracked)
    assert [(o.subject, o.holds) for o in out] == [("x1", False)]
    out = underperformance_observations([ended], {"x1": days([1.0] * 3)}, 0.7, 3, tracked)
    assert [(o.subject, o.holds) for o in out] == [("x1", False)]  # ended: no longer alerted
    verified = dataclasses.replace(EX, pipeline=dataclasses.replace(PIPE, stage=Stage.VERIFIED))
    out = underperformance_observations([verified], {"x1": days([1.0] * 3)}, 0.7, 3, tracked)
    assert [(o.subject, o.holds) for o in out] == [("x1", True)]
