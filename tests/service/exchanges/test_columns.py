"""Verified days as columns: the rows come back as they went in, and the days found to differ
from the stored ones are exactly those the rows' ``!=`` finds (a day the store lacks, any
field changed, an optional field set on one side only)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.exchanges.columns import concat, differing, from_rows
from service.exchanges.savings import DaySavings

DAY0 = date(2026, 3, 1)

floats = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, 5e-324, 1 / 3])
)
money = st.integers(-(2**62), 2**62)


@st.composite
def day_rows(draw: st.DrawFn, exchange: str, day: date) -> DaySavings:
    reconciled = draw(st.booleans())
    return DaySavings(
        exchange=exchange,
        park=draw(st.sampled_from(["p1", "p2"])),
        day=day,
        hours_measured=draw(st.integers(0, 24)),
        coverage=draw(floats),
        quantity=draw(floats),
        supplier_vnd=draw(money),
        receiver_vnd=draw(money),
        park_vnd=draw(money),
        water_m3=draw(floats),
        co2e_t=draw(floats),
        landfill_t=draw(floats),
        factor_year=draw(st.one_of(st.none(), st.integers(0, 2100))),
        check_quantity=draw(floats) if reconciled else None,
        loss=draw(st.one_of(st.none(), floats)) if reconciled else None,
        disagrees=draw(st.booleans()),
        unpriced_hours=draw(st.integers(0, 24)),
    )


@st.composite
def changed(draw: st.DrawFn, row: DaySavings) -> DaySavings:
    """``row`` with one field changed (perhaps to an equal value: -0.0 for 0.0)."""
    name = draw(
        st.sampled_from(
            [f.name for f in dataclasses.fields(DaySavings) if f.name not in ("exchange", "day")]
        )
    )
    other = draw(day_rows(row.exchange, row.day))
    return dataclasses.replace(row, **{name: getattr(other, name)})


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[DaySavings], list[DaySavings]]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["x1", "x2", "x.3", "x4"]), st.integers(0, 40)),
            unique=True,
            max_size=30,
        )
    )
    fresh = [draw(day_rows(x, DAY0 + timedelta(days=d))) for x, d in keys]
    stored: list[DaySavings] = []
    for r in fresh:
        what = draw(st.sampled_from(["same", "changed", "missing"]))
        if what == "same":
            stored.append(dataclasses.replace(r))
        elif what == "changed":
            stored.append(draw(changed(r)))
    # stored days no fresh row asks about: another exchange, or outside the fresh days
    stored += [draw(day_rows("x9", DAY0)), draw(day_rows("x1", DAY0 - timedelta(days=400)))]
    return fresh, draw(st.permutations(stored))


@settings(max_examples=300, deadline=None)
@given(cases())
def test_differing_is_the_rows_inequality(case: tuple[list[DaySavings], list[DaySavings]]) -> None:
    fresh, stored = case
    by_key = {(r.exchange, r.day): r for r in stored}
    want = [by_key.get((r.exchange, r.day)) != r for r in fresh]
    assert differing(from_rows(fresh), from_rows(stored)).tolist() == want


@settings(max_examples=200, deadline=None)
@given(st.lists(day_rows("x1", DAY0), max_size=5), st.lists(day_rows("x2", DAY0), max_size=5))
def test_rows_come_back_as_they_went_in(a: list[DaySavings], b: list[DaySavings]) -> None:
    both = concat([from_rows(a), from_rows(b)])
    assert both.rows() == a + b
    assert [repr(r) for r in both.rows()] == [repr(r) for r in a + b]  # -0.0 stays -0.0
    picked = np.array([i for i in range(len(a) + len(b)) if i % 2], dtype=np.int64)
    assert both.rows(picked) == [r for i, r in enumerate(a + b) if i % 2]
    assert concat([]).rows() == []
