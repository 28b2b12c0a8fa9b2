"""Detection keeps subtracting what runs: the registry's declared exchanges and the
operational database's operating ones, never the same pair twice."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from service.exchanges.detection import with_registered
from service.exchanges.model import Benefit, Exchange, Metering, Method
from service.exchanges.pipeline import Pipeline, Projection, Stage
from service.knowledge import Knowledge
from tests.service.test_detect import DAYS, by_meter, knowledge, registry, rollup, surpluses

__all__ = ["knowledge"]  # the fixture, shared with the detection tests

RUNNING = Pipeline(Stage.OPERATING, "ops", projection=Projection(30.0, 1, 1, 1), frozen=True)


def effluent(**kw: object) -> Exchange:
    fields: dict[str, object] = {
        "id": "x1",
        "park": "p",
        "supplier": "plant",
        "receiver": "taker",
        "resource": "water.treated_effluent",
        "unit": "m3",
        "benefit": Benefit.WATER,
        "metering": Metering(Method.TRANSFER_METER, "eff"),
        "start": date(2020, 1, 1),
        "from_meter": "eff",
        "to_meter": "t-cool",
        "pipeline": RUNNING,
    }
    fields.update(kw)
    return Exchange(**fields)  # type: ignore[arg-type]


def test_an_operating_exchange_is_subtracted_as_its_agreed_quantity(knowledge: Knowledge) -> None:
    eff = np.full(DAYS * 24, 7.5)  # 180 m3/day
    reg = with_registered(registry(), [effluent()])
    s = by_meter(surpluses(rollup(reg, {"eff": eff}), reg, knowledge))["eff"]
    assert s.exchanged_per_day == pytest.approx(30.0) and s.p50_per_day == pytest.approx(150.0)


def test_a_share_of_the_out_meter_is_subtracted_as_that_share(knowledge: Knowledge) -> None:
    share = Metering(Method.SUPPLIER_SHARE, "eff", share=Decimal("0.5"))
    reg = with_registered(registry(), [effluent(metering=share)])
    assert reg.parks["p"].exchanges[0].share == 0.5
    s = by_meter(surpluses(rollup(reg, {"eff": np.full(DAYS * 24, 7.5)}), reg, knowledge))["eff"]
    assert s.p50_per_day == pytest.approx(90.0)


def test_the_registry_declaration_wins_and_ended_or_planned_ones_are_not_subtracted() -> None:
    declared = registry("[{from_meter: eff, to_meter: t-cool, share: 0.2, since: 2024-01-01}]")
    same_pair = with_registered(declared, [effluent()])
    assert [e.share for e in same_pair.parks["p"].exchanges] == [0.2]
    ended = dataclasses.replace(RUNNING, stage=Stage.ENDED)
    agreed = dataclasses.replace(RUNNING, stage=Stage.AGREED)
    base = registry()
    for pipe in (ended, agreed):
        assert with_registered(base, [effluent(pipeline=pipe)]) is base
    twice = with_registered(base, [effluent(), effluent(id="x2")])
    assert len(twice.parks["p"].exchanges) == 1
