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
        "matched_per_day": "alone/day",
        "planned_per_day": "planned/day",
        "demand_unit": "unit",
        "distance_m": "m",
        "value.park_vnd_per_year": "VND/yr (park)",
        "value.water_saved_m3_per_year": "water m3/yr",
        "value.co2e_avoided_t_per_year": "tCO2e/yr",
        "legal_status": "legal",
    }
    return _table(rows, columns, explain)


ALTERNATIVES_NOTE = (
    "alternatives: rows sharing a surplus or a receiver exclude each other; the plan's totals"
    " are below"
)


def with_plan(
    rows: Sequence[dict[str, Any]], plan_rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Ranked rows with what the plan gives each (0 for an alternative it leaves out)."""
    planned = {p["opportunity_id"]: p["matched_per_day"] for p in plan_rows}
    return [{**r, "planned_per_day": planned.get(r["id"], 0.0)} for r in rows]


def plan_totals(totals: dict[str, Any] | None) -> str:
    """One line of the plan's totals: the only sums of opportunities parkflow reports."""
    if totals is None:
        return "the park's plan: none saved with this run (run detection again)"
    capex = totals["capex_vnd"]
    invested = (
        f" (net of the yearly cost of the {capex / 1e9:,.2f} bn VND invested)"
        if capex > 0
        else " (no investment)"
    )
    return (
        f"the park's plan: {totals['n_links']} exchanges,"
        f" {totals['park_vnd_per_year'] / 1e9:,.2f} bn VND/yr for the park{invested},"
        f" {totals['co2e_avoided_t_per_year']:,.0f} t CO2e/yr avoided,"
        f" {totals['water_saved_m3_per_year']:,.0f} m3/yr of water saved,"
        f" {totals['landfill_diverted_t_per_year']:,.0f} t/yr kept out of landfill"
        f" (solver: {totals['status']})"
    )


def plan_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = {
        "rank": "alt #",
        "from_tenant": "from",
        "to_tenant": "to",
        "rule": "rule",
        "matched_per_day": "planned/day",
        "alone_per_day": "alone/day",
        "demand_unit": "unit",
        "build": "build",
        "park_vnd_per_year": "VND/yr (park)",
        "co2e_avoided_t_per_year": "tCO2e/yr",
    }
    build = {True: "yes", False: "no", None: "-"}
    return _table([{**r, "build": build[r.get("built")]} for r in rows], columns, explain=False)
