"""A park's ranked candidates as the plan's input: per-bucket bounds, nodes and unit values.

The bounds and node quantities come from the same per-bucket sums sizing uses
(``bucket_sides``, ``link_bounds``), so the plan allocates exactly what sizing measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from service.knowledge import Knowledge
from service.match.candidates import (
    COUPLINGS,
    Sides,
    barred_by_law,
    bucket_sides,
    bucket_starts,
    link_bounds,
)
from service.match.finance import annuity_factor
from service.plan import LinkInput, Node, ParkProblem
from service.plan.model import Chain, FloatArray


def demand_key(meter: str) -> str:
    return f"demand:{meter}"


def park_problem(sides: Sides, table: pd.DataFrame, knowledge: Knowledge) -> ParkProblem:
    """The plan's input for one park's valued candidates (``rank._park_table``)."""
    m = knowledge.matching
    n_days = max(1, sides.panel.n_days)
    per_year = m.days_per_year / n_days
    crf = annuity_factor(m.capex_discount_rate, m.capex_life_years)
    s = table["s"].to_numpy()
    d = table["d"].to_numpy()
    r = table["rule"].to_numpy()
    eff = table["eff_ratio"].to_numpy()
    factor = table["demand_factor"].to_numpy()
    coupling = table["coupling"].to_numpy()
    node_factor = _demand_node_factors(sides, d, r, knowledge)
    bounds: list[FloatArray] = [np.zeros(0)] * len(table)
    capacity: dict[str, dict[str, FloatArray]] = {}
    for level in COUPLINGS:
        rows = np.flatnonzero(coupling == level)
        if len(rows) == 0:
            continue
        buckets = bucket_sides(sides, level, s[rows], d[rows])
        both = link_bounds(buckets, s[rows], d[rows], eff[rows], factor[rows])
        for k, row in enumerate(rows):
            bounds[row] = both[k]
        for i, si in enumerate(buckets.s_used):
            capacity.setdefault(sides.surpluses[si].id, {})[level] = buckets.supply[i]
        for i, di in enumerate(buckets.d_used):
            key = demand_key(sides.d_meters[di].id)
            capacity.setdefault(key, {})[level] = buckets.demand[i] * node_factor[int(di)]
    nodes = {
        key: Node(key, "demand" if key.startswith("demand:") else "supply", caps)
        for key, caps in capacity.items()
    }
    matched_yr = table["matched"].to_numpy() * per_year
    capex = table["capex_vnd"].to_numpy()

    def per_unit(column: str) -> FloatArray:
        values = table[column].to_numpy()
        out: FloatArray = np.divide(
            values, matched_yr, out=np.zeros_like(values), where=matched_yr > 0
        )
        return out

    vnd, co2e, water, landfill = (
        per_unit(c) for c in ("park_vnd", "co2e_t", "water_m3", "landfill_t")
    )
    ids = table["id"].to_numpy()
    barred = [
        barred_by_law(sides.s_meta[int(s[i])], sides.d_tenants[int(d[i])])
        for i in range(len(table))
    ]
    links = tuple(
        LinkInput(
            id=str(ids[i]),
            supply=sides.surpluses[int(s[i])].id,
            demand=demand_key(sides.d_meters[int(d[i])].id),
            coupling=str(coupling[i]),
            ratio=float(eff[i]),
            # the law forbids it: hazardous waste to a tenant without the licence
            bounds=bounds[i] * 0.0 if barred[i] else bounds[i],
            vnd_per_unit=float(vnd[i]),
            co2e_t_per_unit=float(co2e[i]),
            water_m3_per_unit=float(water[i]),
            landfill_t_per_unit=float(landfill[i]),
            capex_vnd=None if np.isnan(capex[i]) else float(capex[i]),
            annual_capex_vnd=0.0 if np.isnan(capex[i]) else float(capex[i]) * crf,
        )
        for i in range(len(table))
    )
    starts = {c: bucket_starts(sides.panel, c) for c in set(coupling.tolist())}
    return ParkProblem(sides.park.id, starts, nodes, links, n_days, per_year, _chains(sides, nodes))


def _chains(sides: Sides, nodes: dict[str, Node]) -> tuple[Chain, ...]:
    """Surpluses made from an intake that links may displace (``Meter.derived_from``)."""
    out = []
    for surplus, meta in zip(sides.surpluses, sides.s_meta, strict=True):
        base = meta.derived_from
        if base is None:
            continue
        chain = Chain(surplus.id, demand_key(base.meter), base.per_unit)
        if chain.supply in nodes and chain.demand in nodes:
            out.append(chain)
    return tuple(out)


def _demand_node_factors(
    sides: Sides, d: np.ndarray, r: np.ndarray, knowledge: Knowledge
) -> dict[int, float]:
    """Share of each demand meter's intake that its links together may replace: each use any
    of them replaces at the largest cap of the rules replacing it (the whole meter when a rule
    names no uses)."""
    rules = knowledge.active_rules()
    factors: dict[int, float] = {}
    for di in np.unique(d):
        meter = sides.d_meters[int(di)]
        its = [rules[int(x)] for x in np.unique(r[d == di])]
        if any(rule.uses is None for rule in its):
            factors[int(di)] = max(rule.max_demand_share for rule in its)
            continue
        shares = meter.use_shares()
        cap: dict[str, float] = {}
        for rule in its:
            for u in rule.uses or ():
                cap[u] = max(cap.get(u, 0.0), rule.max_demand_share)
        factors[int(di)] = min(1.0, float(sum(shares.get(u, 0.0) * c for u, c in cap.items())))
    return factors
