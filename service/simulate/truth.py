"""The scenario's ground truth as a JSON document, and scoring detection against it. Pure.

The truth lists the cases the scenario plants (``cases``): the opportunities, with the figures
the scenario declares for them over the detection window (supply and demand per day, the share
replaceable, the coupling, and the matched quantity per day), and the non-opportunities with
their reason; the surpluses planted with competing receivers, which no plan may give more
than they hold (``competitions``); plus the faults planted in the readings and what the ingest path must make of
them. A test, or an operator trying a new rule set, scores what detection proposes against it
(``score``), quantities within a stated tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.knowledge import Knowledge
from service.simulate.flows import AppliedFault
from service.simulate.messages import Plan
from service.simulate.oracle import Verdict
from service.simulate.scenario import WINDOW_DAYS, Scenario, detection_window

Key = tuple[str, str, str]  # from_meter, to_meter, rule

# How far a found opportunity's matched quantity per day may be from the declared figure, as a
# share of it. Detection measures noisy, faulty readings; the declared figure is the design's
# noise-free supply before line losses. Allowed for: reading and daily noise (a few percent,
# mostly averaging out over four weeks, but the smaller of two noisy sides is biased low),
# hours lost to planted gaps and quarantined readings (up to a day of 28 on one meter: 4%),
# transport losses the declared figure leaves out (1-5% per km in the rule book's modes, pipe
# and line routes of at most 1.5 km) and rounding of hours at the window's edges. Over the
# default design and seeds 1-30 the largest deviation was 7% (solar on cloudy-day noise).
MATCHED_TOLERANCE = 0.15


@dataclass(frozen=True)
class Truth:
    scenario: str
    seed: int | None
    park: str
    window_start_ms: int
    window_end_ms: int
    simulated: tuple[int, int]  # the readings' time range (start, end], UTC ms
    opportunities: tuple[Verdict, ...]
    non_opportunities: tuple[Verdict, ...]
    faults: tuple[AppliedFault, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    delivery: Mapping[str, Any] = field(default_factory=dict)  # what the ingestor must store

    @property
    def opportunity_keys(self) -> set[Key]:
        return {v.key for v in self.opportunities}

    @property
    def planted(self) -> dict[Key, float]:
        """Each planted opportunity's declared matched quantity per day."""
        return {v.key: v.matched_per_day for v in self.opportunities}

    @property
    def non_opportunity_keys(self) -> set[Key]:
        return {v.key for v in self.non_opportunities}

    @property
    def competitions(self) -> tuple[Competition, ...]:
        """The planted cases of competing receivers: surpluses whose planted receivers would
        together take more than the surplus holds (declared figures, plain arithmetic), so
        that a plan must choose; what it may take in all is the surplus itself."""
        by_supply: dict[str, list[Verdict]] = {}
        for v in self.opportunities:
            by_supply.setdefault(v.from_meter, []).append(v)
        out = []
        for meter, vs in sorted(by_supply.items()):
            wanted = sum(v.matched_per_day / v.per_unit for v in vs)
            supply = max(v.supply_per_day for v in vs)
            if len(vs) > 1 and wanted > supply:
                out.append(
                    Competition(
                        meter,
                        tuple(sorted(v.key for v in vs)),
                        supply,
                        vs[0].supply_unit,
                        wanted,
                    )
                )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Competition:
    """One surplus planted with more receivers than it can serve."""

    from_meter: str
    receivers: tuple[Key, ...]
    supply_per_day: float  # what a plan may take of it in all, supplier units
    supply_unit: str
    alternatives_per_day: float  # what its receivers would take alone, summed


def build_truth(
    scenario: Scenario,
    knowledge: Knowledge,
    now_ms: int,
    *,
    faults: Sequence[AppliedFault] = (),
    plan: Plan | None = None,
    window_days: int = WINDOW_DAYS,
    start_ms: int | None = None,
) -> Truth:
    """The answer key for detection run at ``now_ms`` (the end of the simulated readings,
    which start at ``start_ms``) over ``window_days`` local days."""
    start, end = detection_window(now_ms, scenario.park.timezone, window_days)
    verdicts = scenario.verdicts(knowledge, start, end)
    unclear = [v for v in verdicts if v.ambiguous is not None]
    if unclear:
        raise ValueError(
            f"the design has no clear answer for {unclear[0].id}: {unclear[0].ambiguous}"
        )
    delivery: dict[str, Any] = {}
    if plan is not None:
        delivery = {
            "messages": len(plan.messages),
            "readings_sent": plan.readings_sent,
            "readings_stored": plan.unique_good,
            "duplicates": plan.duplicates,
            "quarantined": dict(sorted(plan.quarantined.items())),
        }
    return Truth(
        scenario=scenario.name,
        seed=scenario.seed,
        park=scenario.park.id,
        window_start_ms=start,
        window_end_ms=end,
        simulated=(start_ms if start_ms is not None else start, now_ms),
        opportunities=tuple(v for v in verdicts if v.reason is None),
        non_opportunities=tuple(v for v in verdicts if v.reason is not None),
        faults=tuple(sorted(faults, key=lambda f: (f.start_ms, f.meter, f.kind))),
        variants=dict(scenario.variants),
        delivery=delivery,
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def to_json(truth: Truth) -> str:
    def link(v: Verdict) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": v.id,
            "rule": v.rule,
            "from_tenant": v.from_tenant,
            "from_meter": v.from_meter,
            "to_tenant": v.to_tenant,
            "to_meter": v.to_meter,
            "distance_m": round(v.distance_m, 1),
        }
        if v.reason is None:
            out |= {
                "matched_per_day": round(v.matched_per_day, 6),
                "unit": v.unit,
                "coupling": v.coupling,
                "supply_per_day": round(v.supply_per_day, 6),
                "supply_unit": v.supply_unit,
                "per_unit": v.per_unit,
                "demand_per_day": round(v.demand_per_day, 6),
                "share": v.share,
            }
        else:
            out["reason"] = v.reason
        out["detail"] = v.detail
        return out

    def fault(f: AppliedFault) -> dict[str, Any]:
        return asdict(f) | {"start": _iso(f.start_ms), "end": _iso(f.end_ms)}

    doc = {
        "scenario": truth.scenario,
        "seed": truth.seed,
        "park": truth.park,
        "window": {
            "start": _iso(truth.window_start_ms),
            "end": _iso(truth.window_end_ms),
            "start_ms": truth.window_start_ms,
            "end_ms": truth.window_end_ms,
        },
        "simulated": {
            "start": _iso(truth.simulated[0]),
            "end": _iso(truth.simulated[1]),
            "start_ms": truth.simulated[0],
            "end_ms": truth.simulated[1],
        },
        "variants": dict(truth.variants),
        "opportunities": [link(v) for v in truth.opportunities],
        "non_opportunities": [link(v) for v in truth.non_opportunities],
        "competing_receivers": [
            {
                "from_meter": c.from_meter,
                "receivers": [list(k) for k in c.receivers],
                "supply_per_day": round(c.supply_per_day, 6),
                "supply_unit": c.supply_unit,
                "alternatives_per_day": round(c.alternatives_per_day, 6),
            }
            for c in truth.competitions
        ],
        "faults": [fault(f) for f in truth.faults],
        "delivery": dict(truth.delivery),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def keys_from_json(text: str) -> tuple[dict[Key, float], dict[Key, str]]:
    """Planted opportunities (with their declared matched quantity per day) and
    non-opportunities (with their reasons) from a truth file."""
    doc = json.loads(text)
    opps = {
        (o["from_meter"], o["to_meter"], o["rule"]): o["matched_per_day"]
        for o in doc["opportunities"]
    }
    nons = {
        (o["from_meter"], o["to_meter"], o["rule"]): o["reason"] for o in doc["non_opportunities"]
    }
    return opps, nons


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    found: tuple[Key, ...]
    missed: tuple[Key, ...]  # planted opportunities not proposed
    false: tuple[Key, ...]  # proposed but not planted (non-opportunities or unknown links)
    non_opportunities_proposed: tuple[Key, ...]
    off: tuple[tuple[Key, float, float], ...] = ()  # found: (key, declared, reported) outside
    tolerance: float = MATCHED_TOLERANCE

    def line(self) -> str:
        return (
            f"precision {self.precision:.3f} recall {self.recall:.3f}"
            f" ({len(self.found)} found, {len(self.missed)} missed, {len(self.false)} false;"
            f" {len(self.off)} quantities off by more than {self.tolerance:.0%})"
        )


def score(
    planted: Mapping[Key, float],
    non_opportunities: Iterable[Key],
    proposed: Mapping[Key, float],
    *,
    tolerance: float = MATCHED_TOLERANCE,
) -> Score:
    """Precision and recall of the proposed links against the planted ones, and which found
    links report a matched quantity per day more than ``tolerance`` (a share of the declared
    figure) away from it. ``planted`` and ``proposed`` map (from_meter, to_meter, rule) to a
    matched quantity per day."""
    got = set(proposed)
    found = got & set(planted)
    false = got - set(planted)
    off = tuple(
        (k, planted[k], proposed[k])
        for k in sorted(found)
        if abs(proposed[k] - planted[k]) > tolerance * abs(planted[k])
    )
    return Score(
        precision=len(found) / len(got) if got else 1.0,
        recall=len(found) / len(planted) if planted else 1.0,
        found=tuple(sorted(found)),
        missed=tuple(sorted(set(planted) - got)),
        false=tuple(sorted(false)),
        non_opportunities_proposed=tuple(sorted(false & set(non_opportunities))),
        off=off,
        tolerance=tolerance,
    )
