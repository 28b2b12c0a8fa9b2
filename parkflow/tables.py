"""Plain-text tables of detection results for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def _table(rows: Sequence[dict[str, Any]], columns: dict[str, str], explain: bool) -> str:
    if not rows:
        return "(none)"
    frame = pd.DataFrame([{title: _get(r, key) for key, title in columns.items()} for r in rows])
    text = frame.to_string(index=False, float_format=_number)
    if explain:
        text += "\n\n" + "\n\n".join(f"- {r['id']}: {r['explanation']}" for r in rows)
    return text


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.1f}"


def _get(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def surpluses_table(rows: Sequence[dict[str, Any]], explain: bool = False) -> str:
    columns = {
        "tenant": "tenant",
        "meter": "meter",
        "resource": "resource",
        "kind": "kind",
        "p50_per_day": "P50/day",
        "p90_per_day": "P90/day",
        "unit": "unit",
        "days_present": "days",
        "days": "of",
    }
    return _table(rows, columns, explain)


def opportunities_table(rows: Sequence[dict[str, Any]], explain: bool = False) -> str:
    columns = {
        "rank": "#",
        "from_tenant": "from",
        "to_tenant": "to",
        "rule": "rule",
        "matched_per_day": "matched/day",
        "demand_unit": "unit",
        "distance_m": "m",
        "value.park_vnd_per_year": "VND/yr (park)",
        "value.water_saved_m3_per_year": "water m3/yr",
        "value.co2e_avoided_t_per_year": "tCO2e/yr",
        "legal_status": "legal",
    }
    return _table(rows, columns, explain)
