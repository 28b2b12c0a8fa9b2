"""``evaluate_alerts``: the step the service runs after each detection run. It reads what the
conditions need (the store's recent readings and quarantine, the running exchanges' verified
days, the alerts being tracked), turns it into observations (``sources``, pure) and applies
them in one transaction (``repository``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ingest.validate import OUT_OF_RANGE
from parkflow.errors import StoreUnavailable
from parkflow.model import MeterKind
from parkflow.registry import Registry
from parkflow.store.ports import MeterRange, QuarantineLog, RangeData, ReadingLog
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.alerts.kinds import (
    COUNTER_RESET,
    EXCHANGE_UNDERPERFORMING,
    INGEST_LAG,
    METER_STALE,
    OPPORTUNITY,
    QUARANTINE_RATE,
    SPIKE,
    SURPLUS,
)
from service.alerts.lifecycle import Observation
from service.alerts.repository import AlertRepository, Applied
from service.alerts.sources import (
    counter_observations,
    detection_observations,
    expected_interval_ms,
    ingest_lag_observations,
    inhibited_by_lag,
    meter_subject,
    quarantine_observations,
    spike_observations,
    stale_observations,
    store_observation,
)
from service.exchanges.alerts import underperformance_observations
from service.exchanges.repository import ExchangeRepository
from service.exchanges.savings import DaySavings
from service.rollups.compute import MeterMaths
from service.rollups.counters import Drop, drops
from service.runs import RunResult
from service.state import Fence

log = logging.getLogger("parkflow.alerts")

QUARANTINE_WINDOW_MS = HOUR_MS
_QUARANTINE_READ_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    stale_factor: float = 3.0  # a meter is stale after this many expected intervals
    quarantine_per_hour: float = 60.0  # a tenant's quarantined records per hour to alert on
    # A reset or a spike is an instant; the condition is "one happened within this window",
    # long enough to hold for the evaluations a data-quality kind waits for (hourly: 3).
    data_window_ms: int = DAY_MS
    lag_factor: float = 3.0  # a park lags when even its freshest meter is this many intervals old
    underperforming_share: float = 0.7  # an exchange delivering less than this share ...
    underperforming_days: int = 3  # ... of its projection on each of its last measured days
    savings_lookback_days: int = 90  # the verified days read to find those last measured ones


class AlertStore(ReadingLog, QuarantineLog, Protocol):
    """What alerts read of the store."""


@dataclass(frozen=True, slots=True)
class Recent:
    """What one read of the meters tells: each meter's newest reading time, and each
    cumulative meter's register drops within the data window (subject -> drops)."""

    last_reading_ms: dict[str, int | None]
    drops: dict[str, list[Drop]]


def recent_readings(
    store: ReadingLog, registry: Registry, now_ms: int, factor: float, window_ms: int
) -> Recent:
    """One read of every meter, looking back no further than needed: ``factor`` expected
    intervals to tell fresh from stale (and the last reading before them), and for a
    cumulative meter the data window, for the drops of its register in it."""
    maths: dict[str, MeterMaths] = {}
    ranges: list[MeterRange] = []
    for rm in registry.meters():
        lookback = int(factor * expected_interval_ms(rm.meter.max_gap_s))
        if rm.meter.kind is MeterKind.CUMULATIVE:
            lookback = max(lookback, window_ms)
            k = rm.key
            maths[meter_subject(k.park, k.tenant, k.meter)] = MeterMaths.of(rm.meter)
        ranges.append(MeterRange(rm.key, now_ms - lookback, now_ms + 1))
    out = Recent({}, {})
    for data in store.read_ranges(ranges):
        k = data.range.key
        subject = meter_subject(k.park, k.tenant, k.meter)
        out.last_reading_ms[subject] = _last(data)
        m = maths.get(subject)
        if m is not None:
            points = ([data.before] if data.before is not None else []) + list(data.points)
            found = [
                d
                for d in drops(points, rollover=m.rollover, replacements=m.replacements)
                if d.end_ms > now_ms - window_ms
            ]
            if found:
                out.drops[subject] = found
    return out


def _last(data: RangeData) -> int | None:
    if data.points:
        return data.points[-1][0]
    return data.before[0] if data.before is not None else None


def exchange_observations(
    exchanges: ExchangeRepository,
    now_ms: int,
    policy: AlertPolicy,
    tracked: dict[str, tuple[str, str | None]],
) -> list[Observation]:
    """The running exchanges against their projections, from their verified days."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    start = today - timedelta(days=policy.savings_lookback_days)
    days: dict[str, list[DaySavings]] = {}
    for row in exchanges.savings(start=start):
        days.setdefault(row.exchange, []).append(row)
    return underperformance_observations(
        exchanges.metered(),
        days,
        policy.underperforming_share,
        policy.underperforming_days,
        tracked,
    )


def evaluate_alerts(
    repo: AlertRepository,
    store: AlertStore,
    registry: Registry,
    run: RunResult | None,
    now_ms: int,
    policy: AlertPolicy = AlertPolicy(),
    exchanges: ExchangeRepository | None = None,
    parks: Collection[str] | None = None,
    fence: Fence | None = None,
) -> list[Applied]:
    """One evaluation of every condition; returns the alerts that changed. ``exchanges``:
    where the running exchanges and their verified days are (none: not evaluated).

    ``parks``: a replica's leased parks (``registry`` already of them only). Only their
    subjects are observed or cleared: another replica's would otherwise be seen as gone. The
    alerts about the system itself (park ``ALL_PARKS``) are observed only when ``parks``
    names it too, by one replica. ``fence`` may refuse the write (the lease lost)."""
    kinds = [SURPLUS, OPPORTUNITY, METER_STALE, QUARANTINE_RATE, COUNTER_RESET, SPIKE, INGEST_LAG]
    tracked = repo.tracked([k.name for k in (*kinds, EXCHANGE_UNDERPERFORMING)])
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
    if exchanges is not None:
        observations += exchange_observations(
            exchanges, now_ms, policy, tracked.get(EXCHANGE_UNDERPERFORMING.name, {})
        )
    window = policy.data_window_ms
    factor = max(policy.stale_factor, policy.lag_factor)
    try:
        seen = recent_readings(store, registry, now_ms, factor, window)
        recent = store.quarantined(
            since_ms=now_ms - QUARANTINE_WINDOW_MS, limit=_QUARANTINE_READ_LIMIT
        )
        spikes = store.quarantined(
            OUT_OF_RANGE, since_ms=now_ms - window, limit=_QUARANTINE_READ_LIMIT
        )
    except StoreUnavailable as exc:
        # Nothing is known of the meters while the store is down: they keep their state.
        observations.append(store_observation(str(exc)))
    else:
        last = seen.last_reading_ms
        observations.append(store_observation(None))
        lag = ingest_lag_observations(
            registry, last, now_ms, policy.lag_factor, tracked.get(INGEST_LAG.name, {})
        )
        stale = stale_observations(
            registry, last, now_ms, policy.stale_factor, tracked.get(METER_STALE.name, {})
        )
        observations += inhibited_by_lag(stale, lag)
        observations += quarantine_observations(
            registry,
            recent,
            QUARANTINE_WINDOW_MS,
            policy.quarantine_per_hour,
            tracked.get(QUARANTINE_RATE.name, {}),
        )
        observations += counter_observations(
            registry, seen.drops, window, tracked.get(COUNTER_RESET.name, {})
        )
        observations += spike_observations(registry, spikes, window, tracked.get(SPIKE.name, {}))
        observations += lag
    if parks is not None:  # what the others' parks observe (or clear) is theirs to write
        observations = [o for o in observations if o.park in parks]
    applied = repo.apply(observations, now_ms, fence)
    for a in applied:
        for step in a.transitions:
            log.info(
                "alert %s",
                step.event.value,
                extra={"alert_id": a.alert.id, "kind": a.alert.kind, "subject": a.alert.subject},
            )
    return applied
