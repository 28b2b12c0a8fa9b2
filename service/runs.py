"""One detection run: rollups from the store -> surpluses -> matches -> plan -> events -> state.

Everything here but the reads and the final save is pure (detect/, match/, plan/, events.py).
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass

import pandas as pd

from parkflow.registry import Registry
from parkflow.store.ports import RollupRepository
from parkflow.timeunits import DAY_MS, now_ms
from service.detect import Surplus, build_panels_from_days, find_surpluses, kwh_factors
from service.events import Event, diff, snapshots
from service.knowledge import Knowledge
from service.match import Matches, Opportunity, match_all
from service.plan import Plan, make_plan
from service.plan.model import with_confidence
from service.results import ResultsDb
from service.state import Fence

log = logging.getLogger("parkflow.service")


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    surpluses: list[Surplus]
    opportunities: list[Opportunity]  # ranked alternatives: rows sharing a side compete for it
    plan: Plan  # what the park runs of them; every total reported is the plan's
    events: list[Event]
    seconds: float


def window_ms(now: pd.Timestamp, window_days: int) -> tuple[int, int]:
    """Read a day extra on each side: detection cuts the window on the park's local days."""
    end = int(now.value // 1_000_000) + DAY_MS
    return end - (window_days + 2) * DAY_MS, end


def findings(
    days: pd.DataFrame,
    registry: Registry,
    knowledge: Knowledge,
    now: pd.Timestamp,
    window_days: int,
    *,
    limit: int | None = None,
) -> tuple[list[Surplus], list[Opportunity], list[str]]:
    """Surpluses and ranked opportunities in the day rollups, and the meters left out (fuel
    meters without a heating value). Pure: what a run does between its read and its save."""
    surpluses, matches, problems = findings_for_plan(
        days, registry, knowledge, now, window_days, limit=limit
    )
    return surpluses, matches.opportunities, problems


def findings_for_plan(
    days: pd.DataFrame,
    registry: Registry,
    knowledge: Knowledge,
    now: pd.Timestamp,
    window_days: int,
    *,
    limit: int | None = None,
) -> tuple[list[Surplus], Matches, list[str]]:
    """``findings`` with each park's plan input beside the ranked list (``make_plan``)."""
    factors, problems = kwh_factors(registry, knowledge)
    panels = build_panels_from_days(days, registry, now, window_days, factors)
    surpluses = find_surpluses(panels, registry, knowledge)
    return surpluses, match_all(surpluses, panels, registry, knowledge, now, limit=limit), problems


def run_detection(
    store: RollupRepository,
    registry: Registry,
    knowledge: Knowledge,
    state: ResultsDb,
    *,
    now: pd.Timestamp | None = None,
    window_days: int = 28,
    trigger: str = "manual",
    change_threshold: float = 0.25,
    park: str | None = None,
    fence: Fence | None = None,
    replica: str | None = None,
) -> RunResult:
    """Detect, match and plan, then save the run. ``park``: this park alone (a replica holding
    its lease), its events against the park's previous run whoever ran it; ``fence`` may
    refuse the save (the lease lost meanwhile: the run is recorded failed, nothing else);
    ``replica``: who ran it, kept with the run."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    started = time.perf_counter()
    if park is not None:
        registry = registry.only([park])
    run_id = state.start_run(now_ms(), trigger, window_days, park, replica)
    try:
        start_ms, end_ms = window_ms(now, window_days)
        days = store.day_rollups(park, start_ms, end_ms)
        surpluses, matches, problems = findings_for_plan(
            days, registry, knowledge, now, window_days
        )
        del days
        for problem in problems:
            log.warning("fuel meter left out: %s", problem, extra={"run_id": run_id})
        opportunities = matches.opportunities
        plan, _ = make_plan(matches.problems)
        plan = with_confidence(plan, opportunities)
        del matches  # the plan's per-bucket input is not kept
        previous = state.latest_run(park)
        before_s, before_o = state.snapshots(previous.id if previous else None, park)
        events = diff(
            before_s, snapshots(surpluses), before_o, snapshots(opportunities), change_threshold
        )
        state.finish_run(run_id, now_ms(), surpluses, opportunities, events, plan, fence)
    except Exception:
        # Recorded with the run, then raised as it is: a store outage stays a StoreError (the
        # command exits 3, the scheduler tries again), a bug stays a bug.
        state.fail_run(run_id, now_ms(), traceback.format_exc())
        log.exception("detection run failed", extra={"run_id": run_id})
        raise
    seconds = time.perf_counter() - started
    log.info(
        "detection run done",
        extra={
            "run_id": run_id,
            "park": park,
            "surpluses": len(surpluses),
            "opportunities": len(opportunities),
            "plan_links": len(plan.links),
            "plan_vnd_per_year": round(plan.park_vnd_per_year),
            "plan_status": plan.status,
            "events": len(events),
            "seconds": round(seconds, 3),
        },
    )
    return RunResult(run_id, surpluses, opportunities, plan, events, seconds)
