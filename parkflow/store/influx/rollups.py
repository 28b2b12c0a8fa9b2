"""Day rollups and checkpoints in InfluxDB. The big read, ``day_rollups``, asks for CSV
(``Accept: application/csv``), which pandas parses several times faster than the JSON."""

from __future__ import annotations

import base64
import io
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from parkflow.errors import StoreError, StoreRejected
from parkflow.model import Direction, MeterKey
from parkflow.store.influx.flow_lines import flow_lines, stale_deletes
from parkflow.store.influx.http import InfluxHttp
from parkflow.store.influx.influxql import (
    chunked,
    group_by_meter,
    meters_condition,
    ms_to_ns_bound,
    quote_ident,
    quote_literal,
    series_key,
)
from parkflow.store.influx.lineprotocol import (
    CHECKPOINT,
    MAX_TIME_MS,
    METER_TAGS,
    MIN_TIME_MS,
    PACKED_HOURS_CHARS,
    ROLLUP_DAY,
    ROLLUP_STATE,
    LineProtocolError,
    QuarantineClock,
)
from parkflow.store.influx.rollup_lines import checkpoint_line, rollup_line, unpack_hours
from parkflow.store.ports import Clock
from parkflow.store.rollup_rows import DayRollup, build_rollup_frame, no_hours
from parkflow.timeunits import DAY_MS, HOURS_PER_DAY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_KEYS_PER_STATEMENT = 500
_DELETES_PER_REQUEST = 200


class InfluxRollups:
    _http: InfluxHttp
    _clock: QuarantineClock
    _wall: Clock

    def _post_lines(self, lines: Sequence[str], precision: str) -> None: ...

    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        """Each row as its packed ``rollup_day`` point (what detection reads) and as plain
        ``flow_day``/``flow_hour`` points (what dashboards chart, ``flow_lines``).

        The stored rows being replaced are read first, and the plain points they had that the
        new rows do not overwrite are deleted before the write: an hour that lost its data, a
        meter the registry moved to another resource or direction. Deleting first means a
        failed write leaves the old packed row, which a retry replaces again.
        """
        try:
            lines = [line for r in rows for line in (rollup_line(r), *flow_lines(r))]
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write rollups to InfluxDB: {exc}") from exc
        self._http.ensure_database()
        if rows:
            new = {(r.key, r.day_ms): r for r in rows}
            old = self.get_rollups(list(new))
            deletes = [q for o in old for q in stale_deletes(o, new[(o.key, o.day_ms)])]
            for batch in chunked(deletes, _DELETES_PER_REQUEST):
                # DELETE takes no retention policy: it removes the points from every one.
                self._http.query_text(";\n".join(batch))
        self._post_lines(lines, "ms")

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        by_day: dict[int, list[MeterKey]] = {}
        for key, day in dict.fromkeys(wanted):
            by_day.setdefault(day, []).append(key)
        in_range = [d for d in by_day if MIN_TIME_MS <= d <= MAX_TIME_MS]
        keys = list(dict.fromkeys(k for k, d in wanted if MIN_TIME_MS <= d <= MAX_TIME_MS))
        select = (
            'SELECT "resource", "direction", "total", "coverage", "hours"'
            f" FROM {self._http.measurement(ROLLUP_DAY)}"
        )
        statements: list[str] = []
        if in_range and len(keys) < len(in_range):
            # few meters over many days (a meter's month): one time range per chunk of
            # meters, not one statement per day; rows not asked for are dropped below
            lo, hi = ms_to_ns_bound(min(in_range)), ms_to_ns_bound(max(in_range))
            for chunk in chunked(keys, _KEYS_PER_STATEMENT):
                statements.append(
                    f"{select} WHERE ({meters_condition(chunk)})"
                    f" AND time >= {lo} AND time <= {hi} {group_by_meter()}"
                )
        else:
            for day in sorted(in_range):
                for chunk in chunked(by_day[day], _KEYS_PER_STATEMENT):
                    statements.append(
                        f"{select} WHERE ({meters_condition(chunk)})"
                        f" AND time = {ms_to_ns_bound(day)} {group_by_meter()}"
                    )
        wanted_set = set(wanted)
        out: list[DayRollup] = []
        for series in self._http.select_many(statements):
            for s in series:
                key = series_key(s)
                col = {name: i for i, name in enumerate(s["columns"])}
                for row in s["values"]:
                    if (key, int(row[col["time"]])) not in wanted_set:
                        continue  # the tag condition also matches some meters not asked for
                    out.append(
                        DayRollup(
                            key.park,
                            key.tenant,
                            key.meter,
                            row[col["resource"]],
                            Direction(row[col["direction"]]),
                            int(row[col["time"]]),
                            unpack_hours(row[col["hours"]]),
                            float(row[col["total"]]),
                            float(row[col["coverage"]]),
                        )
                    )
        return out

    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        import numpy as np

        fields = ("hours", "total", "coverage", "resource", "direction", *METER_TAGS)
        frame: pd.DataFrame | None = None
        if start_ms < end_ms and start_ms <= MAX_TIME_MS and end_ms > MIN_TIME_MS:
            q = (
                f"SELECT {', '.join(quote_ident(f) for f in fields)}"
                f" FROM {self._http.measurement(ROLLUP_DAY)}"
                f" WHERE time >= {ms_to_ns_bound(start_ms)} AND time < {ms_to_ns_bound(end_ms)}"
            )
            if park is not None:
                q += f' AND "park" = {quote_literal(park)}'
            body = self._http.query(q, csv=True).content
            if body.startswith(b"error"):
                raise StoreError(f"InfluxDB query failed: {body[:500]!r}")
            if body.strip():
                frame = _parse_rollup_csv(body)
        if frame is None or frame.empty:
            return build_rollup_frame(
                park=[], tenant=[], meter=[], resource=[], direction=[],
                day=[], total=[], coverage=[], hours=np.zeros((0, HOURS_PER_DAY)),
            )  # fmt: skip
        packed = frame["hours"]
        if bool((packed.str.len() != PACKED_HOURS_CHARS).any()):
            raise StoreError("InfluxDB rollup_day holds a malformed hours field")
        raw = base64.b64decode("".join(packed.tolist()), validate=True)
        hours = np.frombuffer(raw, dtype="<f8").reshape(len(frame), HOURS_PER_DAY)
        return build_rollup_frame(
            park=frame["park"].to_numpy(),
            tenant=frame["tenant"].to_numpy(),
            meter=frame["meter"].to_numpy(),
            resource=frame["resource"].to_numpy(),
            direction=frame["direction"].to_numpy(),
            day=frame["time"].to_numpy(),
            total=frame["total"].to_numpy(),
            coverage=frame["coverage"].to_numpy(),
            hours=hours,
        )

    def rollup_hours(self, keys: Sequence[MeterKey], start_ms: int, days: int) -> np.ndarray:
        """One CSV query per chunk of meters over the days' time range (the tags selected as
        columns), decoded at once; rows the tag condition matched but not asked for, and
        times that are not one of the days' midnights, are dropped."""
        import numpy as np
        import pandas as pd

        out = no_hours(len(keys), days)
        lo = max(start_ms, MIN_TIME_MS)
        hi = min(start_ms + days * DAY_MS, MAX_TIME_MS + 1)
        if not keys or days <= 0 or lo >= hi:
            return out
        position: dict[tuple[str, str, str], list[int]] = {}
        for i, k in enumerate(keys):
            position.setdefault((k.park, k.tenant, k.meter), []).append(i)
        fields = ", ".join(quote_ident(f) for f in ("hours", *METER_TAGS))
        for chunk in chunked(list(dict.fromkeys(keys)), _KEYS_PER_STATEMENT):
            q = (
                f"SELECT {fields} FROM {self._http.measurement(ROLLUP_DAY)}"
                f" WHERE ({meters_condition(chunk)})"
                f" AND time >= {ms_to_ns_bound(lo)} AND time < {ms_to_ns_bound(hi)}"
            )
            body = self._http.query(q, csv=True).content
            if body.startswith(b"error"):
                raise StoreError(f"InfluxDB query failed: {body[:500]!r}")
            if not body.strip():
                continue
            frame = _parse_csv(body, ("hours", *METER_TAGS))
            offset = frame["time"].to_numpy() - start_ms
            day = offset // DAY_MS
            rows: list[int] = []
            meters: list[int] = []
            for r, (p, t, m, d, aligned) in enumerate(
                zip(
                    frame["park"].tolist(),
                    frame["tenant"].tolist(),
                    frame["meter"].tolist(),
                    day.tolist(),
                    (offset % DAY_MS == 0).tolist(),
                    strict=True,
                )
            ):
                if aligned and 0 <= d < days:
                    for i in position.get((p, t, m), ()):
                        rows.append(r)
                        meters.append(i)
            if not rows:
                continue
            packed = pd.Series(frame["hours"].to_numpy()[rows])
            if bool((packed.str.len() != PACKED_HOURS_CHARS).any()):
                raise StoreError("InfluxDB rollup_day holds a malformed hours field")
            raw = base64.b64decode("".join(packed.tolist()), validate=True)
            hours = np.frombuffer(raw, dtype="<f8").reshape(len(rows), HOURS_PER_DAY)
            out[np.array(meters), day[rows]] = hours
        return out

    def get_checkpoint(self, name: str) -> int | None:
        key = quote_literal(name)
        q = (
            f'SELECT last("value") FROM {self._http.measurement(CHECKPOINT)},'
            f' {self._http.measurement(ROLLUP_STATE)} WHERE "key" = {key}'
        )
        newest: tuple[int, int] | None = None  # (time, value), the newer measurement wins
        for s in self._http.select(q):
            for row in s["values"]:
                if newest is None or int(row[0]) > newest[0]:
                    newest = (int(row[0]), int(row[1]))
        return None if newest is None else newest[1]

    def set_checkpoint(self, name: str, value: int) -> None:
        try:
            line = checkpoint_line(name, value, self._clock.stamp(self._wall()))
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write a checkpoint to InfluxDB: {exc}") from exc
        self._http.ensure_database()
        self._post_lines([line], "ns")


def _parse_rollup_csv(body: bytes) -> pd.DataFrame:
    """InfluxDB's CSV answer for ``rollup_day``; ids stay strings whatever they look like."""
    return _parse_csv(body, ("hours", "resource", "direction", *METER_TAGS), ("total", "coverage"))


def _parse_csv(body: bytes, text: Sequence[str], numbers: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV answer's ``time`` (int64 ms), ``text`` columns as strings whatever they look like,
    ``numbers`` as float64."""
    import pandas as pd

    typed: dict[str, object] = {c: str for c in text}
    typed |= {"time": "int64"} | {c: "float64" for c in numbers}
    try:
        return pd.read_csv(
            io.BytesIO(body),
            encoding="utf-8",
            usecols=list(typed),
            dtype=typed,  # type: ignore[arg-type]
            keep_default_na=False,
            na_filter=False,
        )
    except (ValueError, KeyError) as exc:
        raise StoreError(f"InfluxDB answered unreadable CSV: {exc}; {body[:300]!r}") from exc
