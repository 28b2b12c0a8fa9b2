"""An opportunity's figures as the projection an exchange carries until agreement (then its
frozen baseline). Saved opportunities are JSON (``service/results.py``); this reads the one
shape both the CLI and the API hand over."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parkflow.errors import InputError
from service.exchanges.pipeline import Projection


def projection_of(opportunity: Mapping[str, Any]) -> Projection:
    """Quantities in the supplier's unit (what is metered at the exchange), money per year in
    integer dong as matching booked it."""
    try:
        value = opportunity["value"]
        return Projection(
            quantity_per_day=float(opportunity["supply_used_per_day"]),
            park_vnd_per_year=int(value["park_vnd_per_year"]),
            supplier_vnd_per_year=int(value["supplier_vnd_per_year"]),
            receiver_vnd_per_year=int(value["receiver_vnd_per_year"]),
            co2e_t_per_year=float(value["co2e_avoided_t_per_year"]),
            water_m3_per_year=float(value["water_saved_m3_per_year"]),
            landfill_t_per_year=float(value["landfill_diverted_t_per_year"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an opportunity's figures: missing or bad {exc}") from exc
