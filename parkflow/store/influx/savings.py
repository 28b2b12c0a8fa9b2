"""Exchanges' realised savings in InfluxDB: one ``savings`` point per exchange and local day.

    savings,exchange=<id>,park=<p> quantity=<float>,coverage=<float>,supplier_vnd=<int>i,
        receiver_vnd=<int>i,park_vnd=<int>i,water_m3=<float>,co2e_t=<float>,
        landfill_t=<float>,disagrees=<0|1>i <day_ms>

Same series and timestamp is the same point, so a recomputed day replaces its point. Money is
an integer field: dashboards sum dong without float drift.
"""

from __future__ import annotations

from collections.abc import Sequence

from parkflow.errors import StoreRejected
from parkflow.store.influx.http import InfluxHttp
from parkflow.store.influx.influxql import ms_to_ns_bound, quote_ident, quote_literal
from parkflow.store.influx.lineprotocol import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    FieldValue,
    LineProtocolError,
    format_line,
)
from parkflow.store.savings_rows import SAVINGS_FIELDS, SavingsPoint

SAVINGS = "savings"
_INTEGER = frozenset({"supplier_vnd", "receiver_vnd", "park_vnd", "disagrees"})


def savings_line(p: SavingsPoint) -> str:
    if not MIN_TIME_MS <= p.day_ms <= MAX_TIME_MS:
        raise LineProtocolError(f"savings day outside InfluxDB's range: {p.day_ms}")
    fields: dict[str, FieldValue] = {}
    for name in SAVINGS_FIELDS:
        value = getattr(p, name)
        fields[name] = int(value) if name in _INTEGER else float(value)
    return format_line(SAVINGS, {"exchange": p.exchange, "park": p.park}, fields, p.day_ms)


class InfluxSavings:
    _http: InfluxHttp

    def _post_lines(self, lines: Sequence[str], precision: str) -> None: ...

    def write_savings(self, points: Sequence[SavingsPoint]) -> None:
        try:
            lines = [savings_line(p) for p in points]
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write savings to InfluxDB: {exc}") from exc
        if not lines:
            return
        self._http.ensure_database()
        self._post_lines(lines, "ms")

    def savings_points(self, park: str | None, start_ms: int, end_ms: int) -> list[SavingsPoint]:
        if start_ms >= end_ms or start_ms > MAX_TIME_MS or end_ms <= MIN_TIME_MS:
            return []
        q = (
            f"SELECT {', '.join(quote_ident(f) for f in SAVINGS_FIELDS)}"
            f" FROM {self._http.measurement(SAVINGS)}"
            f" WHERE time >= {ms_to_ns_bound(start_ms)} AND time < {ms_to_ns_bound(end_ms)}"
        )
        if park is not None:
            q += f' AND "park" = {quote_literal(park)}'
        q += ' GROUP BY "park", "exchange"'
        out: list[SavingsPoint] = []
        for s in self._http.select(q):
            tags = s.get("tags") or {}
            col = {name: i for i, name in enumerate(s["columns"])}
            for row in s["values"]:
                v = {f: row[col[f]] for f in SAVINGS_FIELDS}
                out.append(
                    SavingsPoint(
                        park=tags["park"],
                        exchange=tags["exchange"],
                        day_ms=int(row[col["time"]]),
                        quantity=float(v["quantity"]),
                        coverage=float(v["coverage"]),
                        supplier_vnd=int(v["supplier_vnd"]),
                        receiver_vnd=int(v["receiver_vnd"]),
                        park_vnd=int(v["park_vnd"]),
                        water_m3=float(v["water_m3"]),
                        co2e_t=float(v["co2e_t"]),
                        landfill_t=float(v["landfill_t"]),
                        disagrees=bool(v["disagrees"]),
                    )
                )
        out.sort(key=lambda p: (p.park, p.exchange, p.day_ms))
        return out
