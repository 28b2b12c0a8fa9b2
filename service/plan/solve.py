"""The plan as a mixed-integer programme, solved by HiGHS component by component.

Variables: x[l, b] >= 0, what link l delivers in bucket b of its coupling (receiver units),
bounded by what it could carry alone there; y[l] in {0, 1} for a link that needs an
investment (built or not). Constraints: for every node (a surplus, a receiver's replaceable
demand) and every coupling its links use, the links of that coupling or a finer one take no
more than the node holds in each bucket (suppliers in supplier units: x / ratio); a link
needing investment carries nothing unless built (sum_b x[l, b] <= its total bound * y[l]).
Objective: the park's annual value, flow value scaled to a year minus annualised capex.

Links that share no node are independent, so each connected component is its own small
programme; a component of one link needs no solver (it carries its bound, built when that
pays). scipy is met here only: its result becomes a status string, and a component it cannot
solve carries nothing rather than an unchecked answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_array

from service.plan.model import (
    COUPLINGS,
    Chain,
    FloatArray,
    IntArray,
    LinkInput,
    ParkProblem,
    Plan,
    PlanLink,
)

EPS = 1e-9
VND_SCALE = 1e-6  # millions of VND; each component's objective is normalised too
SLACK = 1e-9  # a node row whose links together cannot exceed it is left out
MIP_REL_GAP = (
    1e-3  # a plan proven within 0.1 % of the best one; tighter costs seconds on large parks
)
TIME_LIMIT_S = 30.0
INTEGRAL_TOL = 1e-6
BATCH_VARIABLES = 8_000  # small components' relaxations solved together, up to this size
PRESOLVE_FROM = 5_000  # HiGHS's presolve costs more than it saves on smaller programmes


@dataclass(frozen=True, eq=False)
class ParkSolution:
    """One park's solved plan: flows per link and bucket of its coupling, and what was built."""

    problem: ParkProblem
    flows: tuple[FloatArray, ...]  # aligned with problem.links
    built: tuple[bool, ...]
    status: str
    components: int
    solver_calls: int


def components(problem: ParkProblem) -> list[list[int]]:
    """Groups of links that share a surplus or a receiver, directly or through others."""
    parent = list(range(len(problem.links)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, link in enumerate(problem.links):
        for key in (link.supply, link.demand):
            j = first.setdefault(key, i)
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    for chain in problem.chains:  # a derived surplus and the intake it is made from
        ends = first.get(chain.supply), first.get(chain.demand)
        if ends[0] is not None and ends[1] is not None:
            a, b = find(ends[0]), find(ends[1])
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(problem.links)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def solve_park(problem: ParkProblem) -> ParkSolution:
    """Every component's relaxation, small ones side by side in one linear programme (a
    block-diagonal programme's optimum is each block's, and one call costs far less than
    many); a component whose yes/no decisions come out fractional is then solved alone as a
    mixed-integer programme (together, branch and bound grows with every binary held)."""
    flows: list[FloatArray] = [np.zeros_like(link.bounds) for link in problem.links]
    built = [False] * len(problem.links)
    statuses: list[str] = []
    groups = components(problem)
    batches: list[list[_Block]] = []
    small: list[_Block] = []
    chained = {key for c in problem.chains for key in (c.supply, c.demand)}
    for group in groups:
        lone = problem.links[group[0]]
        if len(group) == 1 and not {lone.supply, lone.demand} & chained:
            i = group[0]
            link = problem.links[i]
            bound = np.clip(link.bounds, 0.0, None)
            worth = float(bound.sum()) * problem.per_year * link.vnd_per_unit
            if worth - link.annual_capex_vnd > 0:
                flows[i] = bound
                built[i] = True
            continue
        block = _formulate(problem, group)
        if block.n_vars > BATCH_VARIABLES // 4:
            batches.append([block])
        else:
            small.append(block)
    current: list[_Block] = []
    size = 0
    for block in small:
        if current and size + block.n_vars > BATCH_VARIABLES:
            batches.append(current)
            current, size = [], 0
        current.append(block)
        size += block.n_vars
    if current:
        batches.append(current)
    calls = 0
    for batch in batches:
        calls += 1
        x_all, status = _run(_stack(batch), relax=True)
        start = 0
        for block in batch:
            x = None if x_all is None else x_all[start : start + block.n_vars]
            start += block.n_vars
            if x is not None and _fractional(block, x):
                calls += 1
                x, status = _run(block, relax=False)
            statuses.append(status)
            if x is not None:
                _write(block, x, flows, built)
    worst = next((s for s in statuses if s != "optimal"), "optimal")
    return ParkSolution(problem, tuple(flows), tuple(built), worst, len(groups), calls)


@dataclass(frozen=True, eq=False)
class _Block:
    """One component's programme: its columns, rows and how to read the answer back."""

    group: Sequence[int]
    links: Sequence[LinkInput]
    var_bucket: Sequence[IntArray]
    offsets: Sequence[int]
    y_col: dict[int, int]
    cost: FloatArray
    upper: FloatArray
    integrality: IntArray
    rows: IntArray
    cols: IntArray
    vals: FloatArray
    rhs: FloatArray

    @property
    def n_vars(self) -> int:
        return len(self.cost)


def _formulate(problem: ParkProblem, group: Sequence[int]) -> _Block:
    links = [problem.links[i] for i in group]
    # one variable per link and bucket it can carry something in
    var_bucket: list[IntArray] = []
    offsets = [0]
    for link in links:
        nz = np.flatnonzero(link.bounds > EPS).astype(np.int64)
        var_bucket.append(nz)
        offsets.append(offsets[-1] + len(nz))
    n_x = offsets[-1]
    capex_links = [k for k, link in enumerate(links) if link.annual_capex_vnd > 0]
    y_col = {k: n_x + j for j, k in enumerate(capex_links)}
    n_vars = n_x + len(capex_links)
    upper = np.empty(n_vars)
    cost = np.empty(n_vars)
    for k, link in enumerate(links):
        sl = slice(offsets[k], offsets[k + 1])
        upper[sl] = link.bounds[var_bucket[k]]
        cost[sl] = -link.vnd_per_unit * problem.per_year * VND_SCALE
    for k, col in y_col.items():
        upper[col] = 1.0
        cost[col] = links[k].annual_capex_vnd * VND_SCALE

    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    rhs: list[FloatArray] = []
    n_rows = 0
    by_node: dict[str, list[int]] = {}
    for k, link in enumerate(links):
        by_node.setdefault(link.supply, []).append(k)
        by_node.setdefault(link.demand, []).append(k)
    for key, members in by_node.items():
        if len(members) < 2:
            continue  # one link alone is held by its bounds
        node = problem.nodes[key]
        levels = sorted({COUPLINGS.index(links[k].coupling) for k in members})
        for level in levels:
            coarse = COUPLINGS[level]
            inside = [k for k in members if COUPLINGS.index(links[k].coupling) <= level]
            if len(inside) < 2:
                continue
            cap = node.capacity[coarse]
            r_parts, c_parts, v_parts = [], [], []
            for k in inside:
                link = links[k]
                fine_starts = problem.starts[link.coupling][var_bucket[k]]
                bucket = np.searchsorted(problem.starts[coarse], fine_starts, side="right") - 1
                coef = 1.0 / link.ratio if node.side == "supply" else 1.0
                r_parts.append(bucket)
                c_parts.append(np.arange(offsets[k], offsets[k + 1], dtype=np.int64))
                v_parts.append(np.full(len(bucket), coef))
            r = np.concatenate(r_parts)
            c = np.concatenate(c_parts)
            v = np.concatenate(v_parts)
            load = np.bincount(r, weights=v * upper[c], minlength=len(cap))
            binding = load > cap * (1 + SLACK) + EPS
            if not binding.any():
                continue
            row_of = np.full(len(cap), -1, dtype=np.int64)
            row_of[binding] = n_rows + np.arange(int(binding.sum()))
            keep = binding[r]
            rows.append(row_of[r[keep]])
            cols.append(c[keep])
            vals.append(v[keep])
            rhs.append(np.maximum(cap[binding], 0.0))
            n_rows += int(binding.sum())
    for chain in problem.chains:
        chain_rows = _chain_rows(problem, chain, links, by_node, var_bucket, offsets, upper, n_rows)
        for r, c, v, b in chain_rows:
            rows.append(r)
            cols.append(c)
            vals.append(v)
            rhs.append(b)
            n_rows += len(b)
    for k, col in y_col.items():
        # x[l, b] <= bound[l, b] * y[l], bucket by bucket: tighter than one row per link, so
        # the relaxation is mostly integral already and branching stays rare
        cap_cols = np.arange(offsets[k], offsets[k + 1], dtype=np.int64)
        own = n_rows + np.arange(len(cap_cols), dtype=np.int64)
        rows.append(np.r_[own, own])
        cols.append(np.r_[cap_cols, np.full(len(cap_cols), col, dtype=np.int64)])
        vals.append(np.r_[np.ones(len(cap_cols)), -upper[cap_cols]])
        rhs.append(np.zeros(len(cap_cols)))
        n_rows += len(cap_cols)
    integrality = np.zeros(n_vars, dtype=np.int64)
    integrality[list(y_col.values())] = 1
    # Each component's objective scaled to a largest coefficient of 1: components are
    # independent, so this changes no answer, and a link worth little per unit stays above
    # HiGHS's optimality tolerance (1e-7) instead of being taken for zero.
    top = float(np.abs(cost).max()) if len(cost) else 0.0
    if top > 0:
        cost = cost / top
    empty_i = np.zeros(0, dtype=np.int64)
    return _Block(
        group=group,
        links=links,
        var_bucket=var_bucket,
        offsets=offsets,
        y_col=y_col,
        cost=cost,
        upper=upper,
        integrality=integrality,
        rows=np.concatenate(rows) if rows else empty_i,
        cols=np.concatenate(cols) if cols else empty_i,
        vals=np.concatenate(vals) if vals else np.zeros(0),
        rhs=np.concatenate(rhs) if rhs else np.zeros(0),
    )


def _chain_rows(
    problem: ParkProblem,
    chain: Chain,
    links: Sequence[LinkInput],
    by_node: dict[str, list[int]],
    var_bucket: Sequence[IntArray],
    offsets: Sequence[int],
    upper: FloatArray,
    first_row: int,
) -> list[tuple[IntArray, IntArray, FloatArray, FloatArray]]:
    """Rows holding a derived surplus: at each coupling its own links use, what they take
    (supplier units) plus ``per_unit`` times what the intake's links of that coupling or a
    finer one deliver stays within the surplus in each bucket."""
    takers = by_node.get(chain.supply, [])
    feeders = by_node.get(chain.demand, [])
    if not takers or not feeders:
        return []
    node = problem.nodes[chain.supply]
    out: list[tuple[IntArray, IntArray, FloatArray, FloatArray]] = []
    n_rows = first_row
    own = sorted(COUPLINGS.index(c) for c in node.capacity)
    for level in sorted({COUPLINGS.index(links[k].coupling) for k in takers + feeders}):
        coarse = COUPLINGS[level]
        finer = [lv for lv in own if lv <= level]
        if not finer:
            continue  # the surplus's links are all coarser: held at their own coupling
        held = COUPLINGS[finer[-1]]
        cap = node.capacity[held]
        if held != coarse:  # the surplus summed up to the intake's coarser buckets
            into = np.searchsorted(problem.starts[coarse], problem.starts[held], side="right") - 1
            cap = np.asarray(
                np.bincount(into, weights=cap, minlength=len(problem.starts[coarse])),
                dtype=np.float64,
            )
        r_parts, c_parts, v_parts = [], [], []
        for k, coef in [(k, 1.0 / links[k].ratio) for k in takers] + [
            (k, chain.per_unit) for k in feeders
        ]:
            if COUPLINGS.index(links[k].coupling) > level:
                continue
            fine_starts = problem.starts[links[k].coupling][var_bucket[k]]
            r_parts.append(np.searchsorted(problem.starts[coarse], fine_starts, side="right") - 1)
            c_parts.append(np.arange(offsets[k], offsets[k + 1], dtype=np.int64))
            v_parts.append(np.full(len(fine_starts), coef))
        r = np.concatenate(r_parts)
        c = np.concatenate(c_parts)
        v = np.concatenate(v_parts)
        load = np.bincount(r, weights=v * upper[c], minlength=len(cap))
        binding = load > cap * (1 + SLACK) + EPS
        if not binding.any():
            continue
        row_of = np.full(len(cap), -1, dtype=np.int64)
        row_of[binding] = n_rows + np.arange(int(binding.sum()))
        keep = binding[r]
        out.append((row_of[r[keep]], c[keep], v[keep], np.maximum(cap[binding], 0.0)))
        n_rows += int(binding.sum())
    return out


def _stack(blocks: Sequence[_Block]) -> _Block:
    """Independent blocks side by side as one (columns and rows shifted, nothing shared)."""
    if len(blocks) == 1:
        return blocks[0]
    col0 = np.cumsum([0] + [b.n_vars for b in blocks])
    row0 = np.cumsum([0] + [len(b.rhs) for b in blocks])
    return _Block(
        group=[i for b in blocks for i in b.group],
        links=[link for b in blocks for link in b.links],
        var_bucket=[vb for b in blocks for vb in b.var_bucket],
        offsets=[0] + [int(o + col0[j]) for j, b in enumerate(blocks) for o in b.offsets[1:]],
        y_col={},  # only read back block by block
        cost=np.concatenate([b.cost for b in blocks]),
        upper=np.concatenate([b.upper for b in blocks]),
        integrality=np.concatenate([b.integrality for b in blocks]),
        rows=np.concatenate([b.rows + row0[j] for j, b in enumerate(blocks)]),
        cols=np.concatenate([b.cols + col0[j] for j, b in enumerate(blocks)]),
        vals=np.concatenate([b.vals for b in blocks]),
        rhs=np.concatenate([b.rhs for b in blocks]),
    )


def _fractional(block: _Block, x: FloatArray) -> bool:
    y = x[block.integrality > 0]
    return bool(np.any((y > INTEGRAL_TOL) & (y < 1 - INTEGRAL_TOL)))


def _run(block: _Block, *, relax: bool) -> tuple[FloatArray | None, str]:
    """The block's relaxation (``relax``) or its mixed-integer programme, by HiGHS; the
    solution (None when there is none) and a status."""
    n_vars = block.n_vars
    if n_vars == 0:  # every link of the block has nothing to carry in any bucket
        return np.zeros(0), "optimal"
    constraints = []
    matrix = None
    if len(block.rhs):
        matrix = coo_array(
            (block.vals, (block.rows, block.cols)), shape=(len(block.rhs), n_vars)
        ).tocsr()
        constraints.append(LinearConstraint(matrix, -np.inf, block.rhs))
    try:
        if relax:  # linprog: scipy builds no per-column integrality list for it
            # the stubs know neither a sparse A_ub nor bounds as an (n, 2) array, scipy does
            result = linprog(  # type: ignore[call-overload]
                block.cost,
                A_ub=matrix if len(block.rhs) else None,
                b_ub=block.rhs if len(block.rhs) else None,
                bounds=np.column_stack([np.zeros(n_vars), block.upper]),
                method="highs",
                options={"time_limit": TIME_LIMIT_S, "presolve": n_vars > PRESOLVE_FROM},
            )
        else:
            result = milp(
                block.cost,
                integrality=block.integrality,
                bounds=Bounds(np.zeros(n_vars), block.upper),
                constraints=constraints,
                options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": MIP_REL_GAP},
            )
    except (ValueError, RuntimeError) as exc:  # scipy refuses the model: nothing is planned
        return None, f"not solved: {exc}"
    if result.x is None:
        return None, f"not solved: {result.message}"
    status = "optimal" if result.status == 0 else f"stopped: {result.message}"
    return np.asarray(result.x, dtype=np.float64), status


def _write(block: _Block, x_raw: FloatArray, flows: list[FloatArray], built: list[bool]) -> None:
    x = np.clip(x_raw, 0.0, block.upper)
    for k, col in block.y_col.items():
        if x[col] < 0.5:
            x[block.offsets[k] : block.offsets[k + 1]] = 0.0
    for k, link in enumerate(block.links):
        flow = np.zeros_like(link.bounds)
        flow[block.var_bucket[k]] = x[block.offsets[k] : block.offsets[k + 1]]
        i = block.group[k]
        flows[i] = flow
        built[i] = bool(x[block.y_col[k]] >= 0.5) if k in block.y_col else bool(flow.sum() > EPS)


def make_plan(problems: Sequence[ParkProblem]) -> tuple[Plan, list[ParkSolution]]:
    """The plan of every park; totals are sums of what the plan's links carry, never of
    alternatives."""
    started = time.perf_counter()
    solutions = [solve_park(p) for p in problems]
    out: list[PlanLink] = []
    for sol in solutions:
        p = sol.problem
        for link, flow, built in zip(p.links, sol.flows, sol.built, strict=True):
            delivered = float(flow.sum())
            if delivered <= EPS:
                continue
            per_year = delivered * p.per_year
            charged = link.annual_capex_vnd if built and link.capex_vnd is not None else 0.0
            out.append(
                PlanLink(
                    opportunity_id=link.id,
                    park=p.park,
                    matched_per_day=delivered / p.n_days,
                    supply_used_per_day=delivered / link.ratio / p.n_days if link.ratio else 0.0,
                    alone_per_day=float(np.clip(link.bounds, 0.0, None).sum()) / p.n_days,
                    built=built if link.capex_vnd is not None else None,
                    capex_vnd=None if link.capex_vnd is None else round(link.capex_vnd),
                    annual_capex_vnd=round(charged),
                    park_vnd_per_year=round(per_year * link.vnd_per_unit - charged),
                    co2e_avoided_t_per_year=per_year * link.co2e_t_per_unit,
                    water_saved_m3_per_year=per_year * link.water_m3_per_unit,
                    landfill_diverted_t_per_year=per_year * link.landfill_t_per_unit,
                )
            )
    out.sort(key=lambda pl: (-pl.park_vnd_per_year, pl.opportunity_id))
    statuses = [s.status for s in solutions]
    plan = Plan(
        links=tuple(out),
        park_vnd_per_year=sum(pl.park_vnd_per_year for pl in out),
        co2e_avoided_t_per_year=sum(pl.co2e_avoided_t_per_year for pl in out),
        water_saved_m3_per_year=sum(pl.water_saved_m3_per_year for pl in out),
        landfill_diverted_t_per_year=sum(pl.landfill_diverted_t_per_year for pl in out),
        capex_vnd=sum(pl.capex_vnd or 0 for pl in out if pl.built),
        status=next((s for s in statuses if s != "optimal"), "optimal"),
        components=sum(s.components for s in solutions),
        solver_calls=sum(s.solver_calls for s in solutions),
        seconds=time.perf_counter() - started,
    )
    return plan, solutions
