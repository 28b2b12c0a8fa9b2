"""Plain-text tables for the command line: detection results, quarantine, meters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from parkflow.quarantine import QuarantineRow
    from service.auth import ApiKey
    from service.meters import MeterSummary


def _table(rows: Sequence[dict[str, Any]], columns: dict[str, str], explain: bool) -> str:
    if not rows:
        return "(none)"
    frame = pd.DataFrame([{title: _get(r, key) for key, title in columns.items()} for r in rows])
    # money is integer dong: grouped like the other figures
    ints = {
        c: (lambda v: f"{v:,}") for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])
    }
    text = frame.to_string(index=False, float_format=_number, formatters=ints or None)
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
    "alternatives: rows sharing a surplus or a receiver compete for it, so their sum counts it"
    " more than once; the plan (below) says which run and how much, and its totals are the"
    " park's"
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
        f" (solver: {totals['status']})" + _plan_confidence(totals)
    )


def _plan_confidence(totals: dict[str, Any]) -> str:
    share = totals.get("assumption_share")
    if share is None:
        return ""
    return (
        f"; {share:.0%} of the value rests on assumed figures, P10-P90"
        f" {totals['park_vnd_p10'] / 1e9:,.2f}-{totals['park_vnd_p90'] / 1e9:,.2f} bn VND/yr"
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


def utc_text(ms: int | None) -> str:
    """An instant as the tables and ``--json`` show it: ISO 8601, UTC, to the millisecond."""
    if ms is None:
        return "-"
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def quarantine_table(rows: Sequence[QuarantineRow]) -> str:
    """One line per record; ``source`` is the meter it was attributed to, else the topic."""
    columns = {
        "received": "received (UTC)",
        "reason": "reason",
        "source": "park/tenant/meter or topic",
        "index": "#",
        "detail": "detail",
        "excerpt": "payload",
        "size": "bytes",
    }
    return _text_table(
        [
            {
                "received": utc_text(r.received_ms),
                "reason": r.reason,
                "source": f"{r.park}/{r.tenant}/{r.meter}" if r.meter is not None else r.topic,
                "index": "whole" if r.index is None else r.index,
                "detail": r.detail,
                "excerpt": r.excerpt,
                "size": r.size,
            }
            for r in rows
        ],
        columns,
    )


def _text_table(rows: Sequence[dict[str, Any]], columns: dict[str, str]) -> str:
    """Text left-aligned, numbers right-aligned: the columns read like sentences and figures."""
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(key)) for key in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(key), int | float) or r.get(key) is None for r in rows)
        for key in columns
    ]
    widths = [
        max(len(title), *(len(c[i]) for c in cells)) for i, title in enumerate(columns.values())
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(list(columns.values())), *(line(c) for c in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def meters_table(rows: Sequence[MeterSummary]) -> str:
    columns = {
        "meter": "park/tenant/meter",
        "resource": "resource",
        "kind": "kind",
        "last": "last reading (UTC)",
        "value": "last value",
        "readings": "readings",
        "total": "total",
        "unit": "unit",
        "stale": "stale",
    }
    return _text_table(
        [
            {
                "meter": f"{r.park}/{r.tenant}/{r.meter}",
                "resource": r.resource,
                "kind": str(r.kind),
                "last": utc_text(r.last_ms) if r.last_ms is not None else "never",
                "value": r.last_value,
                "readings": r.readings,
                "total": r.total,
                "unit": r.total_unit
                if r.value_unit == r.total_unit
                else f"{r.total_unit} (values {r.value_unit})",
                "stale": "STALE" if r.stale else "no",
            }
            for r in rows
        ],
        columns,
    )


def rows_table(rows: Sequence[dict[str, Any]]) -> str:
    """Any list of flat rows, their keys as the columns, in the order of the first row."""
    return _text_table(rows, {k: k for k in rows[0]} if rows else {})


SHORT_ID = 8  # characters of an alert id shown; `parkflow alerts show` takes any unique prefix


def alerts_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per alert (``Alert`` fields as a dict), its id shortened."""
    columns = {
        "id": "id",
        "status": "status",
        "severity": "severity",
        "kind": "kind",
        "subject": "subject",
        "tenant": "tenant",
        "opened": "opened (UTC)",
        "by": "acknowledged by",
        "summary": "summary",
    }
    return _text_table(
        [
            {
                **r,
                "id": str(r["id"])[:SHORT_ID],
                "opened": utc_text(r["opened_ms"]),
                "by": r["acknowledged_by"],
            }
            for r in rows
        ],
        columns,
    )


def alert_history_table(rows: Sequence[dict[str, Any]]) -> str:
    """An alert's history, oldest first: who did what, when and why."""
    columns = {
        "at": "at (UTC)",
        "event": "event",
        "change": "status",
        "actor": "by",
        "reason": "reason",
        "muted": "silenced",
        "summary": "summary",
    }
    return _text_table(
        [
            {
                **r,
                "at": utc_text(r["at_ms"]),
                "change": f"{r['from_status'] or 'pending'} -> {r['to_status'] or 'pending'}",
                "muted": "yes" if r["silenced"] else "",
            }
            for r in rows
        ],
        columns,
    )


def silences_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = {
        "id": "id",
        "kind": "kind",
        "subject": "subject",
        "until": "until (UTC)",
        "created_by": "by",
        "reason": "reason",
    }
    return _text_table(
        [
            {
                **r,
                "id": str(r["id"])[:SHORT_ID],
                "kind": r["kind"] or "(any)",
                "subject": r["subject"] or "(any)",
                "until": utc_text(r["until_ms"]),
            }
            for r in rows
        ],
        columns,
    )


def keys_table(rows: Sequence[ApiKey]) -> str:
    """API keys as an operator reviews them: who, what scope, since when; never the key."""
    columns = {
        "id": "id",
        "name": "name",
        "role": "role",
        "scope": "park/tenant",
        "created": "created (UTC)",
        "by": "by",
        "revoked": "revoked (UTC)",
    }
    return _text_table(
        [
            {
                "id": k.id,
                "name": k.name,
                "role": k.role,
                "scope": "/".join(x for x in (k.park or "*", k.tenant) if x),
                "created": utc_text(k.created_ms),
                "by": k.created_by,
                "revoked": utc_text(k.revoked_ms) if k.revoked_ms else "",
            }
            for k in rows
        ],
        columns,
    )


def exchanges_table(rows: Sequence[dict[str, Any]]) -> str:
    """The pipeline: one exchange a line (``service.exchanges.report.entry_row``)."""
    columns = {
        "id": "id",
        "stage": "stage",
        "owner": "owner",
        "supplier": "from",
        "receiver": "to",
        "resource": "resource",
        "barrier": "barrier",
        "legal": "legal",
        "frozen": "baseline frozen",
        "reason": "reason",
    }
    return _text_table(rows, columns)


def savings_table(rows: Sequence[dict[str, Any]]) -> str:
    """Realised savings per exchange and month, the park, the total (``report.savings_rows``)."""
    columns = {
        "exchange": "exchange",
        "period": "period",
        "days": "days",
        "coverage": "coverage",
        "gap_days": "days w/ gaps",
        "quantity": "quantity",
        "supplier_vnd": "supplier VND",
        "receiver_vnd": "receiver VND",
        "park_vnd": "park VND",
        "water_m3": "water m3",
        "co2e_t": "tCO2e",
        "landfill_t": "landfill t",
        "disagreeing_days": "meters disagree",
        "realised/projected": "realised/projected",
    }
    return _text_table(rows, columns)
