"""Surplus detection: which out-streams persist, and how much of them is free, from rollups."""

from service.detect.fuels import kwh_factors
from service.detect.panel import Panel, build_panels_from_days, window_bounds
from service.detect.surplus import Streams, Surplus, available_streams, find_surpluses, surplus_id

__all__ = [
    "Panel",
    "Streams",
    "Surplus",
    "available_streams",
    "build_panels_from_days",
    "find_surpluses",
    "kwh_factors",
    "surplus_id",
    "window_bounds",
]
