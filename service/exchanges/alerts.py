"""The under-performance condition, as observations the alerts code evaluates: a state
("this exchange delivered less than X of its projection on each of its last N measured
days"), not an edge, like ``service/alerts/sources.py``. Its facts name the exchange's two
parties: the operators and both of them are told."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.alerts.kinds import EXCHANGE_UNDERPERFORMING
from service.alerts.lifecycle import Observation, observe
from service.exchanges.detection import RUNNING
from service.exchanges.model import Exchange
from service.exchanges.savings import DaySavings, underperforming


def underperformance_observations(
    exchanges: Sequence[Exchange],
    days: Mapping[str, Sequence[DaySavings]],
    share: float,
    n_days: int,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """One observation per running (operating, verified) exchange with a frozen projection;
    tracked subjects no longer among them (ended, reopened) are observed as cleared."""
    out: list[Observation] = []
    seen: set[str] = set()
    for ex in exchanges:
        pipe = ex.pipeline
        if pipe is None or pipe.stage not in RUNNING or not pipe.frozen:
            continue
        if pipe.projection is None:
            continue
        seen.add(ex.id)
        holds, shares = underperforming(days.get(ex.id, ()), pipe.projection, share, n_days)
        summary = (
            f"exchange {ex.id} ({ex.supplier} -> {ex.receiver}, {ex.resource}) delivered"
            f" {', '.join(f'{s:.0%}' for s in shares)} of its projected"
            f" {pipe.projection.quantity_per_day:,.1f} {ex.unit}/day on its last {n_days}"
            f" measured days (alert below {share:.0%})"
        )
        facts = {"type": "exchange", "exchange_id": ex.id, "parties": [ex.supplier, ex.receiver]}
        out.append(
            observe(EXCHANGE_UNDERPERFORMING, ex.id, ex.park, None, holds, summary, facts=facts)
        )
    out += [
        observe(EXCHANGE_UNDERPERFORMING, subject, park, tenant, False)
        for subject, (park, tenant) in tracked.items()
        if subject not in seen
    ]
    return out
