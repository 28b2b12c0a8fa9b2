"""The park's report as rows, assembled from what is stored: the exchanges' pipeline and
moves, their verified days of savings, the park's tenants and the criteria. Pure.

Each figure is said once. The park's money is the sum of each exchange's park line (the
baseline less the costs, the transfer price cancelling); a tenant's row is the sum of its
shares of those lines, so tenants' rows add up to the park's and are never added to it.

"Operating in the period": an exchange that held the operating or verified stage at some
moment of the period (its moves say when) and whose registered dates overlap it; its two
tenants take part. Stages are counted as they stood at the period's end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from service.exchanges.pipeline import Move, Stage
from service.exchanges.repository import Entry
from service.exchanges.savings import DaySavings, park_total, summed
from service.report.criteria import CriteriaFile
from service.report.period import Period
from service.report.texts import LABELS

RUNNING = frozenset({Stage.OPERATING, Stage.VERIFIED})
NOT_MEASURABLE = "not_measurable"

Value = int | float | str


@dataclass(frozen=True, slots=True)
class Row:
    """One figure: ``section``/``item`` are keys (labels are in ``texts.py``, or the
    criterion's own text for ``criteria``); ``exchange`` and ``party`` say whose it is."""

    section: str
    item: str
    value: Value
    unit: str = ""
    exchange: str = ""
    party: str = ""
    source: str = ""
    labels: tuple[str, str] = ("", "")


@dataclass(frozen=True, slots=True)
class Bar:
    exchange: str
    unit: str
    realised: float
    projected: float | None


@dataclass(frozen=True, slots=True)
class Report:
    park: str
    park_name: str
    period: Period
    rows: list[Row]
    daily_park_vnd: list[tuple[date, int]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)


def stage_at(moves: Sequence[Move], at_ms: int) -> Stage | None:
    """The stage an exchange stood at just before ``at_ms`` (None: not created yet)."""
    stage = None
    for m in sorted(moves, key=lambda m: m.at_ms):
        if m.at_ms >= at_ms:
            break
        stage = m.to_stage
    return stage


def stages_held(moves: Sequence[Move], start_ms: int, end_ms: int) -> set[Stage]:
    """Every stage the exchange stood at during ``[start_ms, end_ms)``."""
    held: set[Stage] = set()
    first = stage_at(moves, start_ms + 1)
    if first is not None:
        held.add(first)
    held |= {m.to_stage for m in moves if start_ms <= m.at_ms < end_ms}
    return held


def _overlaps(entry: Entry, period: Period) -> bool:
    r = entry.registration
    if r is None:
        return False
    last = period.end - timedelta(days=1)
    return r.start <= last and (r.end is None or r.end >= period.start)


def _labels(section: str, item: str) -> tuple[str, str]:
    return LABELS[(section, item)]


def _round(x: float, digits: int) -> float:
    return round(x, digits) if math.isfinite(x) else x


def assemble(
    park: str,
    park_name: str,
    tenants: Sequence[str],
    period: Period,
    entries: Sequence[Entry],
    moves: Mapping[str, Sequence[Move]],
    days: Sequence[DaySavings],
    criteria: CriteriaFile,
    day_ms: Mapping[date, int],
) -> Report:
    """``day_ms``: the UTC instant of the park's local midnight of ``period.start`` and
    ``period.end`` (moves are timed in UTC ms, days are local)."""
    start_ms, end_ms = day_ms[period.start], day_ms[period.end]
    entries = [e for e in entries if e.park == park]
    days = [d for d in days if d.park == park and period.start <= d.day < period.end]
    rows: list[Row] = []

    def add(section: str, item: str, value: Value, unit: str = "", **kw: str) -> None:
        rows.append(Row(section, item, value, unit, labels=_labels(section, item), **kw))

    last = period.end - timedelta(days=1)
    add("meta", "park", park)
    add("meta", "period", period.label)
    add("meta", "first_day", period.start.isoformat())
    add("meta", "last_day", last.isoformat())
    add("meta", "tenants", len(tenants), "tenants", source="registry")

    at_end = {e.id: stage_at(moves.get(e.id, ()), end_ms) for e in entries}
    for stage in Stage:
        n = sum(1 for s in at_end.values() if s is stage)
        add("stages", stage.value, n, "exchanges", source="exchange_moves")

    running = [
        e
        for e in entries
        if _overlaps(e, period) and stages_held(moves.get(e.id, ()), start_ms, end_ms) & RUNNING
    ]
    by_exchange: dict[str, list[DaySavings]] = {}
    for d in days:
        by_exchange.setdefault(d.exchange, []).append(d)
    party_vnd: dict[str, int] = {}
    projected_vnd = 0
    projected_of_realised = 0  # the park's dong of the exchanges that have a projection
    bars: list[Bar] = []
    for e in sorted(running, key=lambda e: e.id):
        reg = e.registration
        assert reg is not None
        ex_days = by_exchange.get(e.id, [])
        proj = e.pipeline.projection
        s = summed(e.id, period.label, ex_days, proj)
        with_data = sum(1 for d in ex_days if d.hours_measured > 0)
        src = f"exchange_savings: {s.days} days computed, {with_data} with metered data"
        add("exchanges", "quantity", _round(s.quantity, 6), reg.unit, exchange=e.id, source=src)
        add("exchanges", "coverage", round(s.coverage, 4), "share", exchange=e.id, source=src)
        add("exchanges", "gap_days", s.days_with_gaps, "days", exchange=e.id, source=src)
        add("exchanges", "disagreeing_days", s.disagreeing_days, "days", exchange=e.id, source=src)
        add("exchanges", "park_vnd", s.park_vnd, "VND", exchange=e.id, source=src)
        add(
            "exchanges",
            "supplier_vnd",
            s.supplier_vnd,
            "VND",
            exchange=e.id,
            party=reg.supplier,
            source=src,
        )
        add(
            "exchanges",
            "receiver_vnd",
            s.receiver_vnd,
            "VND",
            exchange=e.id,
            party=reg.receiver,
            source=src,
        )
        add("exchanges", "water_m3", _round(s.water_m3, 6), "m3", exchange=e.id, source=src)
        add("exchanges", "co2e_t", _round(s.co2e_t, 6), "tCO2e", exchange=e.id, source=src)
        add("exchanges", "landfill_t", _round(s.landfill_t, 6), "t", exchange=e.id, source=src)
        if s.projected_quantity is not None:
            psrc = "frozen projection" if e.pipeline.frozen else "projection (not yet agreed)"
            add(
                "exchanges",
                "projected_quantity",
                _round(s.projected_quantity, 6),
                reg.unit,
                exchange=e.id,
                source=psrc,
            )
            share = s.realised_share
            add(
                "exchanges",
                "realised_share",
                "" if share is None else round(share, 4),
                "share",
                exchange=e.id,
                source=psrc,
            )
            projected_vnd += s.projected_park_vnd or 0
            projected_of_realised += s.park_vnd
        party_vnd[reg.supplier] = party_vnd.get(reg.supplier, 0) + s.supplier_vnd
        party_vnd[reg.receiver] = party_vnd.get(reg.receiver, 0) + s.receiver_vnd
        bars.append(Bar(e.id, reg.unit, s.quantity, s.projected_quantity))

    for tenant in sorted(party_vnd):
        add(
            "parties",
            "savings_vnd",
            party_vnd[tenant],
            "VND",
            party=tenant,
            source="exchange_savings (the tenant's shares of the park's lines)",
        )

    total = park_total(period.label, days)
    participating = sorted({t for e in running for t in _parties(e)} & set(tenants))
    share = len(participating) / len(tenants) if tenants else 0.0
    psrc = f"exchange_savings: {len(days)} exchange-days computed"
    add("park", "park_vnd", total.park_vnd, "VND", source=psrc)
    add("park", "water_m3", _round(total.water_m3, 6), "m3", source=psrc)
    add("park", "co2e_t", _round(total.co2e_t, 6), "tCO2e", source=psrc)
    add("park", "landfill_t", _round(total.landfill_t, 6), "t", source=psrc)
    add("park", "operating_exchanges", len(running), "exchanges", source="exchange_moves")
    add(
        "park",
        "participating_tenants",
        len(participating),
        "tenants",
        source="exchange_moves, registry: " + ", ".join(participating),
    )
    add("park", "participation_share", round(share, 4), "share", source="exchange_moves, registry")
    if projected_vnd:
        add("park", "projected_park_vnd", projected_vnd, "VND", source="frozen projections")
        add(
            "park",
            "realised_share_vnd",
            round(projected_of_realised / projected_vnd, 4),
            "share",
            source="frozen projections",
        )

    metrics: dict[str, tuple[Value, str, str]] = {
        "operating_exchanges": (len(running), "exchanges", "exchange_moves"),
        "participation_share": (round(share, 4), "share", "exchange_moves, registry"),
        "water_reused_m3": (_round(total.water_m3, 6), "m3", psrc),
        "landfill_diverted_t": (_round(total.landfill_t, 6), "t", psrc),
        "co2e_avoided_t": (_round(total.co2e_t, 6), "tCO2e", psrc),
        "park_savings_vnd": (total.park_vnd, "VND", psrc),
    }
    for c in criteria.criteria:
        cited = "; ".join(f"{s} ({criteria.source(s).accessed})" for s in c.sources)
        if c.metric is None:
            value: Value = NOT_MEASURABLE
            unit, figure = "", ""
        else:
            value, unit, figure = metrics[c.metric]
        over = f"; figure: {figure}, over {period.label}" if figure else ""
        source = f"{c.status.value}: {cited}{over}"
        rows.append(
            Row("criteria", c.id, value, unit, source=source, labels=(c.text.en, c.text.vi))
        )

    daily: dict[date, int] = {}
    for d in days:
        daily[d.day] = daily.get(d.day, 0) + d.park_vnd
    return Report(park, park_name, period, rows, sorted(daily.items()), bars)


def _parties(e: Entry) -> tuple[str, ...]:
    r = e.registration
    return (r.supplier, r.receiver) if r else ()
