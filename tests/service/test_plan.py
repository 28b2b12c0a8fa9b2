"""The park's plan on hand-built parks (what it must choose) and random ones (what it must never do).

Pure: the plan's input is built here as matching would hand it over, and solved by HiGHS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.plan import LinkInput, Node, ParkProblem, ParkSolution, make_plan, solve_park
from service.plan.model import COUPLINGS, Chain

HOURS = 48
STARTS = {"hour": np.arange(HOURS, dtype=np.int64), "day": np.array([0, 24], dtype=np.int64)}
TOL = 1e-6


def per_bucket(hourly: npt.ArrayLike, coupling: str) -> npt.NDArray[np.float64]:
    return np.add.reduceat(np.asarray(hourly, dtype=np.float64), STARTS[coupling])


def node(key: str, side: str, hourly: npt.ArrayLike) -> Node:
    assert side in ("supply", "demand")
    caps = {c: per_bucket(hourly, c) for c in STARTS}
    return Node(key, "supply" if side == "supply" else "demand", caps)


def link(
    nodes: dict[str, Node],
    supply: str,
    demand: str,
    vnd: float,
    *,
    coupling: str = "hour",
    ratio: float = 1.0,
    capex: float | None = None,
    annual: float = 0.0,
) -> LinkInput:
    """A link's bounds as sizing makes them: the smaller side, bucket by bucket."""
    bounds = np.minimum(nodes[supply].capacity[coupling] * ratio, nodes[demand].capacity[coupling])
    return LinkInput(
        id=f"{supply}>{demand}",
        supply=supply,
        demand=demand,
        coupling=coupling,
        ratio=ratio,
        bounds=bounds,
        vnd_per_unit=vnd,
        co2e_t_per_unit=0.001,
        water_m3_per_unit=0.0,
        landfill_t_per_unit=0.0,
        capex_vnd=capex,
        annual_capex_vnd=annual if capex is not None else 0.0,
    )


def problem(
    nodes: dict[str, Node], links: Sequence[LinkInput], chains: Sequence[Chain] = ()
) -> ParkProblem:
    # per_year 1: values below are per window, which keeps the arithmetic checkable
    return ParkProblem("p", STARTS, nodes, tuple(links), 2, 1.0, tuple(chains))


def delivered(sol: ParkSolution, link_id: str) -> npt.NDArray[np.float64]:
    i = next(k for k, lk in enumerate(sol.problem.links) if lk.id == link_id)
    return sol.flows[i]


def test_one_surplus_two_receivers_is_split_by_value() -> None:
    """10 a bucket for two receivers wanting 8 each: the better one is filled, the other gets
    the rest, and the ranked list's 16 a bucket is never promised."""
    nodes = {
        "s": node("s", "supply", np.full(HOURS, 10.0)),
        "a": node("a", "demand", np.full(HOURS, 8.0)),
        "b": node("b", "demand", np.full(HOURS, 8.0)),
    }
    sol = solve_park(problem(nodes, [link(nodes, "s", "a", 2.0), link(nodes, "s", "b", 1.0)]))
    assert sol.status == "optimal"
    assert np.allclose(delivered(sol, "s>a"), 8.0)
    assert np.allclose(delivered(sol, "s>b"), 2.0)
    plan, _ = make_plan([sol.problem])
    assert plan.park_vnd_per_year == pytest.approx(HOURS * (8 * 2.0 + 2 * 1.0))
    assert plan.park_vnd_per_year < HOURS * (8 * 2.0 + 8 * 1.0)  # the sum of alternatives


def test_a_supplier_units_ratio_counts_against_the_surplus() -> None:
    """A link turning 1 supplier unit into 2 receiver units takes half as much surplus."""
    nodes = {
        "s": node("s", "supply", np.full(HOURS, 10.0)),
        "a": node("a", "demand", np.full(HOURS, 8.0)),
        "b": node("b", "demand", np.full(HOURS, 20.0)),
    }
    links = [link(nodes, "s", "a", 3.0, ratio=2.0), link(nodes, "s", "b", 1.0)]
    sol = solve_park(problem(nodes, links))
    assert np.allclose(delivered(sol, "s>a"), 8.0)  # 4 supplier units
    assert np.allclose(delivered(sol, "s>b"), 6.0)  # the other 6


def test_a_capex_link_not_worth_building_is_not_built() -> None:
    nodes = {
        "s": node("s", "supply", np.full(HOURS, 10.0)),
        "a": node("a", "demand", np.full(HOURS, 10.0)),
        "b": node("b", "demand", np.full(HOURS, 10.0)),
    }
    flow_a = HOURS * 10 * 2.0
    # a pays 2 a unit but needs more than the extra it earns over b: b takes it all
    dear = link(nodes, "s", "a", 2.0, capex=5e6, annual=flow_a - HOURS * 10 * 1.0 + 1)
    sol = solve_park(problem(nodes, [dear, link(nodes, "s", "b", 1.0)]))
    assert not sol.built[0] and np.allclose(delivered(sol, "s>a"), 0.0)
    assert np.allclose(delivered(sol, "s>b"), 10.0)
    # the same investment, a little cheaper, is worth it
    cheap = link(nodes, "s", "a", 2.0, capex=5e6, annual=flow_a - HOURS * 10 * 1.0 - 1)
    sol = solve_park(problem(nodes, [cheap, link(nodes, "s", "b", 1.0)]))
    assert sol.built[0] and np.allclose(delivered(sol, "s>a"), 10.0)
    plan, _ = make_plan([sol.problem])
    built = next(pl for pl in plan.links if pl.opportunity_id == "s>a")
    assert built.built is True and built.annual_capex_vnd == pytest.approx(cheap.annual_capex_vnd)
    # alone, a link whose capex exceeds its whole value is left out of the plan
    alone = link(nodes, "s", "a", 2.0, capex=5e6, annual=flow_a + 1)
    sol = solve_park(problem(nodes, [alone]))
    assert not sol.built[0] and make_plan([sol.problem])[0].links == ()


def test_every_bucket_is_respected_and_a_day_link_shares_the_day_with_an_hour_link() -> None:
    """Supply at night only; an hour-coupled receiver by day gets nothing, a receiver with a
    tank (day coupling) takes the night's surplus, and together they never exceed an hour's
    surplus (hour links) or a day's (both)."""
    clock = np.tile(np.arange(24), 2)
    night = np.where((clock < 6) | (clock >= 22), 30.0, 0.0)
    day_load = np.where((clock >= 8) & (clock < 18), 50.0, 0.0)
    nodes = {
        "s": node("s", "supply", night),
        "hour-user": node("hour-user", "demand", day_load + np.where(clock < 3, 20.0, 0.0)),
        "tank": node("tank", "demand", np.full(HOURS, 5.0)),  # 120 a day
    }
    links = [
        link(nodes, "s", "hour-user", 1.0),
        link(nodes, "s", "tank", 2.0, coupling="day"),
    ]
    sol = solve_park(problem(nodes, links))
    hourly = delivered(sol, "s>hour-user")
    assert np.all(hourly <= night + TOL) and np.all(hourly[(clock >= 3) & (clock < 22)] == 0)
    tank = delivered(sol, "s>tank")
    assert np.allclose(tank, 120.0)  # the tank's whole day, from 240 at night
    assert np.allclose(per_bucket(hourly, "day") + tank, [180.0, 180.0])  # 60 a night to the rest


@pytest.mark.parametrize(
    ("flue_vnd", "steam_hourly", "flue_hourly"), [(2.0, 10.0, 0.0), (5.0, 0.0, 3.0)]
)
def test_a_surplus_made_from_an_intake_the_plan_displaces_shrinks_with_it(
    flue_vnd: float, steam_hourly: float, flue_hourly: float
) -> None:
    """A's steam could replace all 10 kWh an hour of B's boiler gas (1 VND each); B's boiler
    makes 0.3 kWh of recoverable flue heat per kWh of gas, 3 an hour, which C could use. Both
    at once is impossible: flue heat taken + 0.3 x gas displaced <= 3. The plan picks the
    better of the two by hand: steam 10 (worth 10) against flue heat 3 (worth 3 x price)."""
    nodes = {
        "steam-a": node("steam-a", "supply", np.full(HOURS, 10.0)),
        "gas-b": node("gas-b", "demand", np.full(HOURS, 10.0)),
        "flue-b": node("flue-b", "supply", np.full(HOURS, 3.0)),
        "c": node("c", "demand", np.full(HOURS, 5.0)),
    }
    links = [link(nodes, "steam-a", "gas-b", 1.0), link(nodes, "flue-b", "c", flue_vnd)]
    unchained = solve_park(problem(nodes, links))
    assert np.allclose(delivered(unchained, "steam-a>gas-b"), 10.0)  # both, as if unrelated
    assert np.allclose(delivered(unchained, "flue-b>c"), 3.0)
    sol = solve_park(problem(nodes, links, [Chain("flue-b", "gas-b", 0.3)]))
    assert sol.components == 1 and sol.status == "optimal"
    steam, flue = delivered(sol, "steam-a>gas-b"), delivered(sol, "flue-b>c")
    assert np.all(flue + 0.3 * steam <= 3.0 + TOL)
    assert np.allclose(steam, steam_hourly) and np.allclose(flue, flue_hourly)


@st.composite
def chained_park(draw: st.DrawFn) -> ParkProblem:
    """A random park where some surpluses are made from some receivers' intakes."""
    park = draw(random_park())
    supplies = sorted(k for k, n in park.nodes.items() if n.side == "supply")
    demands = sorted(k for k, n in park.nodes.items() if n.side == "demand")
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(supplies), st.sampled_from(demands)), unique=True)
    )
    chains = [Chain(s, d, draw(st.sampled_from([0.1, 0.5, 2.0]))) for s, d in pairs]
    return ParkProblem(
        park.park, park.starts, park.nodes, park.links, park.n_days, park.per_year, tuple(chains)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chained_park())
def test_a_chained_surplus_is_never_handed_out_beyond_what_the_displaced_intake_leaves(
    park: ParkProblem,
) -> None:
    sol = solve_park(park)
    assert sol.status == "optimal"
    for chain in park.chains:
        takers = [k for k, lk in enumerate(park.links) if lk.supply == chain.supply]
        feeders = [k for k, lk in enumerate(park.links) if lk.demand == chain.demand]
        if not takers or not feeders:
            continue
        finest = min(COUPLINGS.index(park.links[k].coupling) for k in takers)
        for coarse in STARTS:
            level = COUPLINGS.index(coarse)
            if level < finest:
                continue
            used = np.zeros(len(STARTS[coarse]))
            for k, coef in [(k, 1 / park.links[k].ratio) for k in takers] + [
                (k, chain.per_unit) for k in feeders
            ]:
                lk = park.links[k]
                if COUPLINGS.index(lk.coupling) > level:
                    continue
                bucket = np.searchsorted(STARTS[coarse], STARTS[lk.coupling], side="right") - 1
                used += np.bincount(bucket, weights=sol.flows[k] * coef, minlength=len(used))
            cap = park.nodes[chain.supply].capacity[coarse]
            assert np.all(used <= cap + TOL * (1 + cap)), (chain, coarse)


@st.composite
def random_park(draw: st.DrawFn) -> ParkProblem:
    """One to three surpluses and receivers, random links, couplings, ratios, values, capex."""
    n_s = draw(st.integers(1, 3))
    n_d = draw(st.integers(1, 3))
    quantity = st.lists(st.sampled_from([0.0, 1.0, 3.0, 7.5, 20.0]), min_size=HOURS, max_size=HOURS)
    nodes: dict[str, Node] = {}
    for i in range(n_s):
        nodes[f"s{i}"] = node(f"s{i}", "supply", draw(quantity))
    for j in range(n_d):
        nodes[f"d{j}"] = node(f"d{j}", "demand", draw(quantity))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n_s - 1), st.integers(0, n_d - 1)),
            min_size=1,
            max_size=n_s * n_d,
            unique=True,
        )
    )
    links = []
    for i, j in pairs:
        capex = draw(st.one_of(st.none(), st.floats(0.0, 400.0)))
        links.append(
            link(
                nodes,
                f"s{i}",
                f"d{j}",
                draw(st.floats(0.1, 10.0)),
                coupling=draw(st.sampled_from(["hour", "day"])),
                ratio=draw(st.sampled_from([0.5, 1.0, 1.5])),
                capex=None if capex is None else 1.0,
                annual=capex or 0.0,
            )
        )
    return problem(nodes, links)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_park())
def test_the_plan_never_exceeds_a_surplus_or_a_demand_and_beats_any_single_link(
    park: ParkProblem,
) -> None:
    sol = solve_park(park)
    assert sol.status == "optimal"
    # every node, at every coupling: what its links take in each bucket, finer ones summed
    for key, n in park.nodes.items():
        for coarse in STARTS:
            level = COUPLINGS.index(coarse)
            taken = np.zeros(len(STARTS[coarse]))
            for lk, flow in zip(park.links, sol.flows, strict=True):
                if key not in (lk.supply, lk.demand) or COUPLINGS.index(lk.coupling) > level:
                    continue
                bucket = np.searchsorted(STARTS[coarse], STARTS[lk.coupling], side="right") - 1
                share = flow / lk.ratio if n.side == "supply" else flow
                taken += np.bincount(bucket, weights=share, minlength=len(taken))
            cap = n.capacity[coarse]
            assert np.all(taken <= cap + TOL * (1 + cap)), (key, coarse)
    for lk, flow in zip(park.links, sol.flows, strict=True):
        assert np.all(flow >= -TOL) and np.all(flow <= lk.bounds + TOL)
    plan, _ = make_plan([park])
    alone = [float(lk.bounds.sum()) * lk.vnd_per_unit for lk in park.links]
    best_single = max(a - lk.annual_capex_vnd for a, lk in zip(alone, park.links, strict=True))
    # the solver's proven gap, and half a dong per link: the plan books integer dong
    rounding = 0.5 * len(park.links)
    slack = 1e-3 * max(1.0, abs(plan.park_vnd_per_year)) + rounding
    assert plan.park_vnd_per_year >= best_single - slack
    assert plan.park_vnd_per_year <= sum(alone) + TOL + rounding
    assert plan.park_vnd_per_year == pytest.approx(sum(pl.park_vnd_per_year for pl in plan.links))
