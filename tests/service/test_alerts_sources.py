"""The data-quality sources as pure functions: a register's drops (reset, rollover, a declared
replacement that is neither), counter resets, spikes and ingest lag turned into observations,
tracked subjects no longer observed cleared; and who hears of an exchange's alert."""

from __future__ import annotations

from parkflow.model import Rejection
from service.alerts.kinds import (
    COUNTER_RESET,
    EXCHANGE_UNDERPERFORMING,
    INGEST_LAG,
    KINDS,
    SPIKE,
)
from service.alerts.lifecycle import evaluate, observe
from service.alerts.notify import recipients
from service.alerts.sources import (
    counter_observations,
    ingest_lag_observations,
    inhibited_by_lag,
    spike_observations,
    stale_observations,
)
from service.rollups.counters import RESET, ROLLOVER, Drop, Replacement, drops
from tests.support.registries import build, meter, park, tenant

MIN = 60_000
REGISTRY = build(
    park(
        "p1",
        tenant("t1", meter("m1", "water.potable", "in", "m3", "cumulative", max_gap_s=900)),
        tenant(
            "t2", meter("m2", "water.potable", "in", "m3", "cumulative", max_gap_s=3600, max=500)
        ),
    ),
    park("p2", tenant("t3", meter("m3", "water.potable", "in", "m3", "cumulative"))),
)


def test_drops_tell_a_reset_from_a_rollover_and_skip_declared_replacements() -> None:
    points = [(0, 999_990.0), (1, 5.0), (2, 9.0), (3, 2.0), (4, 1.0), (5, 0.5)]
    found = drops(points, rollover=1_000_000.0, replacements=[Replacement(4)])
    assert [(d.start_ms, d.end_ms, d.kind) for d in found] == [
        (0, 1, ROLLOVER),  # the wrap explains the drop: 15 m3 counted
        (2, 3, RESET),  # 9 -> 2 is no plausible wrap of a 1e6 register
        (4, 5, RESET),  # the new register (from 4 on) fell too
    ]
    assert drops([(0, 1.0), (1, 1.0), (2, 3.0)]) == []
    assert [d.kind for d in drops([(0, 900.0), (1, 10.0)])] == [RESET]  # no rollover declared


def test_a_meter_with_drops_holds_and_a_tracked_one_without_clears() -> None:
    recent = {"p1/t1/m1": [Drop(1, 2, RESET, 900.0, 3.0), Drop(5, 6, ROLLOVER, 99.0, 1.0)]}
    tracked = {"p1/t2/m2": ("p1", "t2"), "p9/gone/m": ("p9", "gone")}
    out = counter_observations(REGISTRY, recent, 3 * 3_600_000, tracked)
    by = {o.subject: o for o in out}
    assert set(by) == {"p1/t1/m1", "p1/t2/m2", "p9/gone/m"}
    assert by["p1/t1/m1"].holds and by["p1/t1/m1"].kind == COUNTER_RESET.name
    assert by["p1/t1/m1"].summary == (
        "p1/t1/m1: 1 reset, 1 rollover of its register in the last 3.0 h (the last from 99 to 1)"
    )
    assert not by["p1/t2/m2"].holds and not by["p9/gone/m"].holds


def rejection(meter_id: str | None, tenant_id: str | None, n: int) -> Rejection:
    return Rejection("out_of_range", "too big", "t", 0, f"msg{n}", 0, "p1", tenant_id, meter_id)


def test_spikes_are_counted_per_meter_and_unattributed_records_ignored() -> None:
    recs = [rejection("m2", "t2", i) for i in range(3)] + [rejection(None, None, 9)]
    out = spike_observations(REGISTRY, recs, 3_600_000, {"p1/t1/m1": ("p1", "t1")})
    by = {o.subject: o for o in out}
    assert set(by) == {"p1/t2/m2", "p1/t1/m1"}
    assert by["p1/t2/m2"].holds and by["p1/t2/m2"].kind == SPIKE.name
    assert "3 values outside its plausible range (max 500 m3)" in by["p1/t2/m2"].summary
    assert not by["p1/t1/m1"].holds


def test_a_park_lags_only_when_even_its_freshest_meter_is_behind() -> None:
    now = 10 * 3_600_000
    # m1 reports every 15 min, m2 hourly: m1 50 min old is 3.3 intervals, m2 2 h old is 2
    last = {"p1/t1/m1": now - 50 * MIN, "p1/t2/m2": now - 120 * MIN, "p2/t3/m3": None}
    (p1,) = ingest_lag_observations(REGISTRY, last, now, 3.0, {})
    assert p1.subject == "p1" and p1.kind == INGEST_LAG.name and not p1.holds
    assert p1.summary == (
        "p1: even the freshest of its 2 meters last stored a reading 2.0 h ago,"
        " 2.0 times its expected interval of 60 min (alert above 3)"
    )
    last["p1/t2/m2"] = now - 200 * MIN  # now both more than 3 intervals old
    out = ingest_lag_observations(REGISTRY, last, now, 3.0, {"p2": ("p2", None)})
    by = {o.subject: o for o in out}
    assert by["p1"].holds and by["p1"].tenant is None
    assert not by["p2"].holds  # never reported: not started, not lagging; tracked: cleared


def test_an_exchange_alert_goes_to_both_parties_and_the_operators() -> None:
    facts = {"type": "exchange", "exchange_id": "x1", "parties": ["t1", "t2"]}
    obs = observe(EXCHANGE_UNDERPERFORMING, "x1", "p1", None, True, "low", facts=facts)
    alert = evaluate(None, obs, 1, EXCHANGE_UNDERPERFORMING.policy).alert
    assert alert is not None
    who = recipients(alert, KINDS[alert.kind], lambda park: ["ops"])
    assert [(r.park, r.tenant, r.operator) for r in who] == [
        ("p1", "t1", None),
        ("p1", "t2", None),
        ("p1", None, "ops"),
    ]
    stale = observe(COUNTER_RESET, "p1/t1/m1", "p1", "t1", True, "reset")
    alert = evaluate(None, stale, 1, COUNTER_RESET.policy.__class__()).alert
    assert alert is not None
    assert [r.tenant for r in recipients(alert, COUNTER_RESET, lambda p: ["ops"])] == [None]


def test_a_lagging_park_opens_one_lag_alert_not_one_stale_alert_per_meter() -> None:
    now = 10 * 3_600_000
    last = {"p1/t1/m1": now - 300 * MIN, "p1/t2/m2": now - 300 * MIN, "p2/t3/m3": now - 600 * MIN}
    stale = stale_observations(REGISTRY, last, now, 3.0, {})
    assert all(o.holds for o in stale)  # every meter is behind
    lag = ingest_lag_observations(REGISTRY, last, now, 3.0, {})
    assert {o.subject for o in lag if o.holds} == {"p1", "p2"}
    # p1's two meters quiet together: the path; p2's one meter: as much its own gateway
    assert [(o.subject, o.holds) for o in inhibited_by_lag(stale, lag)] == [("p2/t3/m3", True)]
    # p2 catches up: its meter is fresh again, p1's stay held back
    last["p2/t3/m3"] = now - 5 * MIN
    lag = ingest_lag_observations(REGISTRY, last, now, 3.0, {})
    kept = inhibited_by_lag(stale_observations(REGISTRY, last, now, 3.0, {}), lag)
    assert [(o.subject, o.holds) for o in kept] == [("p2/t3/m3", False)]
