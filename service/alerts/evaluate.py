"""``evaluate_alerts``: the step the service runs after each detection run. It reads what the
conditions need (the store's latest readings and quarantine, the alerts being tracked), turns
it into observations (``sources``, pure) and applies them in one transaction (``repository``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from parkflow.errors import StoreUnavailable
from parkflow.registry import Registry
from parkflow.store.ports import MeterRange, QuarantineLog, ReadingLog
from parkflow.timeunits import HOUR_MS
from service.alerts.kinds import METER_STALE, OPPORTUNITY, QUARANTINE_RATE, SURPLUS
from service.alerts.lifecycle import Observation
from service.alerts.repository import AlertRepository, Applied
from service.alerts.sources import (
    detection_observations,
    expected_interval_ms,
    meter_subject,
    quarantine_observations,
    stale_observations,
    store_observation,
)
from service.runs import RunResult

log = logging.getLogger("parkflow.alerts")

QUARANTINE_WINDOW_MS = HOUR_MS
_QUARANTINE_READ_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    stale_factor: float = 3.0  # a meter is stale after this many expected intervals
    quarantine_per_hour: float = 60.0  # a tenant's quarantined records per hour to alert on


class AlertStore(ReadingLog, QuarantineLog, Protocol):
    """What alerts read of the store."""


def last_readings(
    store: ReadingLog, registry: Registry, now_ms: int, factor: float
) -> dict[str, int | None]:
    """Each meter's newest reading time, looking back no further than needed to tell fresh
    from stale: ``factor`` expected intervals, and the last reading before that."""
    ranges = [
        MeterRange(
            rm.key, now_ms - int(factor * expected_interval_ms(rm.meter.max_gap_s)), now_ms + 1
        )
        for rm in registry.meters()
    ]
    out: dict[str, int | None] = {}
    for data in store.read_ranges(ranges):
        k = data.range.key
        if data.points:
            last: int | None = data.points[-1][0]
        else:
            last = data.before[0] if data.before is not None else None
        out[meter_subject(k.park, k.tenant, k.meter)] = last
    return out


def evaluate_alerts(
    repo: AlertRepository,
    store: AlertStore,
    registry: Registry,
    run: RunResult | None,
    now_ms: int,
    policy: AlertPolicy = AlertPolicy(),
) -> list[Applied]:
    """One evaluation of every condition; returns the alerts that changed."""
    tracked = repo.tracked([SURPLUS.name, OPPORTUNITY.name, METER_STALE.name, QUARANTINE_RATE.name])
    observations: list[Observation] = []
    if run is not None:
        tenants = [t for park in registry.model.parks for t in park.tenants]
        observations += detection_observations(
            run.surpluses,
            run.opportunities,
            run.events,
            tracked,
            {t.id: t.name for t in tenants},
            {t.id: (t.location.x_m, t.location.y_m) for t in tenants if t.location},
        )
    try:
        last = last_readings(store, registry, now_ms, policy.stale_factor)
        recent = store.quarantined(
            since_ms=now_ms - QUARANTINE_WINDOW_MS, limit=_QUARANTINE_READ_LIMIT
        )
    except StoreUnavailable as exc:
        # Nothing is known of the meters while the store is down: they keep their state.
        observations.append(store_observation(str(exc)))
    else:
        observations.append(store_observation(None))
        observations += stale_observations(
            registry, last, now_ms, policy.stale_factor, tracked.get(METER_STALE.name, {})
        )
        observations += quarantine_observations(
            registry,
            recent,
            QUARANTINE_WINDOW_MS,
            policy.quarantine_per_hour,
            tracked.get(QUARANTINE_RATE.name, {}),
        )
    applied = repo.apply(observations, now_ms)
    for a in applied:
        for step in a.transitions:
            log.info(
                "alert %s",
                step.event.value,
                extra={"alert_id": a.alert.id, "kind": a.alert.kind, "subject": a.alert.subject},
            )
    return applied
