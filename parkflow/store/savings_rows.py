"""Realised savings as the time-series store keeps them: one point per exchange and
park-local day, for dashboards to chart next to the meters. The operational database holds
the full day (``service/exchanges``); this is the charted part of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SavingsPoint:
    """``day_ms``: the UTC instant of the day's local midnight, as the day rollups'. Money
    in whole dong."""

    park: str
    exchange: str
    day_ms: int
    quantity: float
    coverage: float
    supplier_vnd: int
    receiver_vnd: int
    park_vnd: int
    water_m3: float
    co2e_t: float
    landfill_t: float
    disagrees: bool


SAVINGS_FIELDS = (
    "quantity",
    "coverage",
    "supplier_vnd",
    "receiver_vnd",
    "park_vnd",
    "water_m3",
    "co2e_t",
    "landfill_t",
    "disagrees",
)
