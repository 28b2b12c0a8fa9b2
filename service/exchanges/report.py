"""Exchanges and their savings as rows for people: what ``parkflow exchanges`` and
``parkflow savings`` print, and the API will return. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.exchanges.pipeline import Projection
from service.exchanges.repository import Entry
from service.exchanges.savings import PARK, DaySavings, PeriodSavings, monthly, park_total


def entry_row(e: Entry) -> dict[str, Any]:
    p, r = e.pipeline, e.registration
    return {
        "id": e.id,
        "park": e.park,
        "stage": p.stage.value,
        "owner": p.owner,
        "barrier": p.barrier.value if p.barrier else "",
        "legal": p.legal_status,
        "supplier": r.supplier if r else "",
        "receiver": r.receiver if r else "",
        "resource": r.resource if r else "",
        "frozen": "yes" if p.frozen else "",
        "reason": p.reason or "",
    }


def period_row(s: PeriodSavings) -> dict[str, Any]:
    share = s.realised_share
    return {
        "exchange": "park" if s.exchange == PARK else s.exchange,
        "period": s.period,
        "days": s.days,
        "coverage": round(s.coverage, 4),
        "gap_days": s.days_with_gaps,
        "quantity": round(s.quantity, 3),
        "supplier_vnd": s.supplier_vnd,
        "receiver_vnd": s.receiver_vnd,
        "park_vnd": s.park_vnd,
        "water_m3": round(s.water_m3, 3),
        "co2e_t": round(s.co2e_t, 4),
        "landfill_t": round(s.landfill_t, 3),
        "disagreeing_days": s.disagreeing_days,
        "realised/projected": "" if share is None else f"{share:.0%}",
    }


def savings_rows(
    days: Sequence[DaySavings], projections: dict[str, Projection | None]
) -> list[dict[str, Any]]:
    """Per exchange and month (against its frozen projection), then the park per month, then
    the cumulative totals."""
    out: list[dict[str, Any]] = []
    by_exchange: dict[str, list[DaySavings]] = {}
    for d in days:
        by_exchange.setdefault(d.exchange, []).append(d)
    for ex, rows in sorted(by_exchange.items()):
        out += [period_row(m) for m in monthly(rows, projections.get(ex))]
    months: dict[str, list[DaySavings]] = {}
    for d in days:
        months.setdefault(f"{d.day:%Y-%m}", []).append(d)
    out += [period_row(park_total(m, rows)) for m, rows in sorted(months.items())]
    if days:
        out.append(period_row(park_total("total", list(days))))
    return out
