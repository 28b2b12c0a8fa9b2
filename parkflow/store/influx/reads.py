"""Reading InfluxDB back: readings, quarantine, change markers, and the ranges the rollup
worker recomputes, batched: InfluxQL takes several ``;``-separated statements per request and
a tag condition may name hundreds of meters, so a cycle over thousands of meters costs a few
requests, not thousands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parkflow.model import (
    Direction,
    MeterKey,
    Point,
    QuarantinedMessage,
    Reading,
    Rejection,
    dedupe_points,
    message_id,
)
from parkflow.store.influx.http import InfluxHttp
from parkflow.store.influx.influxql import (
    Series,
    chunked,
    group_by_meter,
    meters_condition,
    ms_to_ns_bound,
    quote_ident,
    quote_literal,
    series_key,
)
from parkflow.store.influx.lineprotocol import (
    CHANGE,
    MAX_TIME_MS,
    MIN_TIME_MS,
    QUARANTINE,
    QUARANTINE_MESSAGE,
    READING,
    READING_TAGS,
    decode_payload,
)
from parkflow.store.influx.rollup_lines import parse_change_keys
from parkflow.store.ports import MeterRange, RangeData, ReadingQuery
from parkflow.timeunits import DAY_MS, HOUR_MS

_KEYS_PER_STATEMENT = 500  # meters named in one WHERE clause
# Neighbours are looked for within these distances of a range first, then without bound.
_NEIGHBOUR_WINDOWS_MS = (2 * HOUR_MS, 2 * DAY_MS)


class InfluxReads:
    _http: InfluxHttp

    def readings(self, query: ReadingQuery) -> list[Reading]:
        conditions = [
            f"{quote_ident(tag)} = {quote_literal(value)}"
            for tag, value in (
                ("park", query.park),
                ("tenant", query.tenant),
                ("meter", query.meter),
            )
            if value is not None
        ]
        if query.start_ms is not None:
            if query.start_ms > MAX_TIME_MS:
                return []
            conditions.append(f"time >= {ms_to_ns_bound(query.start_ms)}")
        if query.end_ms is not None:
            if query.end_ms <= MIN_TIME_MS:
                return []
            conditions.append(f"time < {ms_to_ns_bound(query.end_ms)}")
        q = f'SELECT "value", "seq" FROM {self._http.measurement(READING)}'
        if conditions:
            q += " WHERE " + " AND ".join(conditions)
        q += " GROUP BY " + ", ".join(quote_ident(t) for t in READING_TAGS)
        out = [r for s in self._http.select(q) for r in _series_readings(s)]
        out.sort(key=lambda r: (r.park, r.tenant, r.meter, r.ts_ms))
        return out

    def quarantined(
        self,
        reason: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
        *,
        until_ms: int | None = None,
        park: str | None = None,
        tenant: str | None = None,
        meter: str | None = None,
    ) -> list[Rejection]:
        if limit <= 0:
            return []
        conditions = []
        if reason is not None:
            conditions.append(f'"reason" = {quote_literal(reason)}')
        # park, tenant and meter are fields here (their values come from untrusted topics).
        for name, value in (("park", park), ("tenant", tenant), ("meter", meter)):
            if value is not None:
                conditions.append(f"{quote_ident(name)} = {quote_literal(value)}")
        if since_ms is not None:
            if since_ms > MAX_TIME_MS:
                return []
            conditions.append(f"time >= {ms_to_ns_bound(since_ms)}")
        if until_ms is not None:
            if until_ms <= MIN_TIME_MS:
                return []
            # Stamps are received_ms * 1e6 plus under 1e6 ns: this is received_ms < until_ms.
            conditions.append(f"time < {ms_to_ns_bound(until_ms)}")
        q = f"SELECT * FROM {self._http.measurement(QUARANTINE)}"
        if conditions:
            q += " WHERE " + " AND ".join(conditions)
        # A redelivered message may have written its records twice: ask for more, keep one.
        q += f" ORDER BY time DESC LIMIT {2 * int(limit)}"
        out: list[Rejection] = []
        seen: set[str] = set()
        for s in self._http.select(q):
            names = s["columns"]
            for row in s["values"]:
                r = _rejection(dict(zip(names, row, strict=True)))
                if r.rid not in seen:
                    seen.add(r.rid)
                    out.append(r)
        out.sort(key=lambda r: r.received_ms, reverse=True)
        return out[:limit]

    def quarantined_messages(
        self, rejections: Sequence[Rejection]
    ) -> dict[str, QuarantinedMessage]:
        wanted = {r.message_id for r in rejections}
        if not wanted:
            return {}
        lo = min(r.received_ms for r in rejections)
        hi = max(r.received_ms for r in rejections) + 1
        if lo > MAX_TIME_MS or hi <= MIN_TIME_MS:
            return {}
        window = f"time >= {ms_to_ns_bound(lo)} AND time < {ms_to_ns_bound(hi)}"
        out: dict[str, QuarantinedMessage] = {}
        q = f"SELECT * FROM {self._http.measurement(QUARANTINE_MESSAGE)} WHERE {window}"
        for s in self._http.select(q):
            names = s["columns"]
            for row in s["values"]:
                f = dict(zip(names, row, strict=True))
                if f.get("message_id") in wanted:
                    out.setdefault(f["message_id"], _message(f))
        legacy = {w for w in wanted if w.startswith(_LEGACY)}
        if legacy:  # written before messages had records of their own: the payload is inline
            q = f"SELECT * FROM {self._http.measurement(QUARANTINE)} WHERE {window}"
            for s in self._http.select(q):
                names = s["columns"]
                for row in s["values"]:
                    f = dict(zip(names, row, strict=True))
                    mid = _legacy_id(f)
                    if mid in legacy:
                        out.setdefault(mid, _message({**f, "message_id": mid}))
        return out

    def quarantine_counts(self) -> dict[str, int]:
        # Distinct identities, plus the records written before records had one.
        q = (
            'SELECT count(distinct("rid")) AS "distinct", count("rid") AS "with_id",'
            f' count("detail") AS "all" FROM {self._http.measurement(QUARANTINE)} GROUP BY "reason"'
        )
        counts: dict[str, int] = {}
        for s in self._http.select(q):
            reason = s.get("tags", {}).get("reason", "")
            col = {name: i for i, name in enumerate(s["columns"])}
            for row in s["values"]:
                n = int(row[col["distinct"]] or 0) + int(row[col["all"]] or 0)
                n -= int(row[col["with_id"]] or 0)
                counts[reason] = counts.get(reason, 0) + n
        return counts

    # -- change markers ------------------------------------------------------------------------

    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        if until_ms <= after_ms or after_ms >= MAX_TIME_MS or until_ms < MIN_TIME_MS:
            return []
        # Marker times are ns; written in (after_ms, until_ms] means [after+1, until+1) in ms.
        q = (
            f'SELECT "keys" FROM {self._http.measurement(CHANGE)}'
            f" WHERE time >= {ms_to_ns_bound(after_ms + 1)}"
            f" AND time < {ms_to_ns_bound(until_ms + 1)}"
        )
        found: set[tuple[MeterKey, int]] = set()
        for s in self._http.select(q):
            for _, keys in s["values"]:
                found.update(parse_change_keys(keys or "{}"))
        return sorted(found, key=lambda kh: (kh[0].park, kh[0].tenant, kh[0].meter, kh[1]))

    def prune_changes(self, before_ms: int) -> None:
        if before_ms <= MIN_TIME_MS:
            return
        # DELETE takes no retention policy: it removes the markers from every one.
        self._http.query_text(
            f"DELETE FROM {quote_ident(CHANGE)} WHERE time < {ms_to_ns_bound(before_ms)}"
        )

    # -- reads for the rollup worker -----------------------------------------------------------

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        head = f'SELECT "value", "seq" FROM {self._http.measurement(READING)}'
        head += f" WHERE ({meters_condition([key])})"
        by_series = "GROUP BY " + ", ".join(quote_ident(t) for t in READING_TAGS)
        # Grouped by every tag: after a registry change one meter may have several series.
        statements = [
            f"{head} AND time < {ms_to_ns_bound(start_ms)} {by_series} ORDER BY time DESC LIMIT 1",
            f"{head} AND time >= {ms_to_ns_bound(end_ms)} {by_series} LIMIT 1",
        ]
        before_s, after_s = self._http.select_many(statements)
        before = [r for s in before_s for r in _series_readings(s)]
        after = [r for s in after_s for r in _series_readings(s)]
        if start_ms <= MIN_TIME_MS:
            before = []
        if end_ms > MAX_TIME_MS:
            after = []
        return (
            max(before, key=lambda r: r.ts_ms) if before else None,
            min(after, key=lambda r: r.ts_ms) if after else None,
        )

    def read_ranges(self, ranges: Sequence[MeterRange]) -> list[RangeData]:
        """Points and neighbours of many ranges with a few multi-statement requests.

        Ranges with the same bounds share statements (a live cycle asks the same hours of
        thousands of meters). Neighbours are looked for in widening windows, each asked only
        for the ranges still without one: ``last()`` reads every point of its window, so an
        unbounded look-up for every meter would read the whole history each cycle.
        """
        points: list[list[Point]] = [[] for _ in ranges]
        before: list[Point | None] = [None] * len(ranges)
        after: list[Point | None] = [None] * len(ranges)
        groups: dict[tuple[int, int], dict[MeterKey, list[int]]] = {}
        for i, rng in enumerate(ranges):
            groups.setdefault((rng.start_ms, rng.end_ms), {}).setdefault(rng.key, []).append(i)

        m = self._http.measurement(READING)
        asked: list[tuple[str, str, dict[MeterKey, list[int]]]] = []
        for (start, end), by_key in groups.items():
            for chunk in chunked(list(by_key), _KEYS_PER_STATEMENT):
                if end > start:
                    asked.append((
                        f'SELECT "value" FROM {m} WHERE ({meters_condition(chunk)})'
                        f" AND time >= {ms_to_ns_bound(start)} AND time < {ms_to_ns_bound(end)}"
                        f" {group_by_meter()}",
                        "points",
                        {k: by_key[k] for k in chunk},
                    ))  # fmt: skip
        inner = 0
        for outer in (*_NEIGHBOUR_WINDOWS_MS, None):
            for (start, end), by_key in groups.items():
                lacking = [k for k, idx in by_key.items() if before[idx[0]] is None]
                if start - inner > MIN_TIME_MS:
                    low = "" if outer is None else f"time >= {ms_to_ns_bound(start - outer)} AND "
                    for chunk in chunked(lacking, _KEYS_PER_STATEMENT):
                        asked.append((
                            f'SELECT last("value") FROM {m} WHERE ({meters_condition(chunk)})'
                            f" AND {low}time < {ms_to_ns_bound(start - inner)}"
                            f" {group_by_meter()}",
                            "before",
                            {k: by_key[k] for k in chunk},
                        ))  # fmt: skip
                lacking = [k for k, idx in by_key.items() if after[idx[0]] is None]
                if end + inner <= MAX_TIME_MS:
                    high = "" if outer is None else f" AND time < {ms_to_ns_bound(end + outer)}"
                    for chunk in chunked(lacking, _KEYS_PER_STATEMENT):
                        asked.append((
                            f'SELECT first("value") FROM {m} WHERE ({meters_condition(chunk)})'
                            f" AND time >= {ms_to_ns_bound(end + inner)}{high}"
                            f" {group_by_meter()}",
                            "after",
                            {k: by_key[k] for k in chunk},
                        ))  # fmt: skip
            self._collect(asked, points, before, after)
            asked = []
            if outer is not None:
                inner = outer
        return [
            RangeData(rng, before[i], tuple(dedupe_points(points[i])), after[i])
            for i, rng in enumerate(ranges)
        ]

    def _collect(
        self,
        asked: Sequence[tuple[str, str, dict[MeterKey, list[int]]]],
        points: list[list[Point]],
        before: list[Point | None],
        after: list[Point | None],
    ) -> None:
        if not asked:
            return
        answers = self._http.select_many([q for q, _, _ in asked])
        for (_, kind, owners), series in zip(asked, answers, strict=True):
            for s in series:
                idx = owners.get(series_key(s), [])
                got = [(int(row[0]), float(row[1])) for row in s["values"] if row[1] is not None]
                if not got:
                    continue
                for i in idx:
                    if kind == "points":
                        points[i].extend(got)
                    elif kind == "before":
                        found = before[i]
                        before[i] = max(got) if found is None else max(found, *got)
                    else:
                        found = after[i]
                        after[i] = min(got) if found is None else min(found, *got)


_LEGACY = "legacy-"


def _rejection(f: dict[str, Any]) -> Rejection:
    """A ``quarantine`` point; one written before records had an identity gets one from its
    timestamp (and its payload, inline then, is read by ``quarantined_messages``)."""
    index = f.get("index")
    mid = f.get("message_id") or _legacy_id(f)
    return Rejection(
        reason=f["reason"],
        detail=f.get("detail") or "",
        topic=f.get("topic") or "",
        received_ms=int(f["received_ms"]),
        message_id=mid,
        index=None if index is None else int(index),
        park=f.get("park"),
        tenant=f.get("tenant"),
        meter=f.get("meter"),
    )


def _legacy_id(f: dict[str, Any]) -> str:
    raw = decode_payload(f.get("payload"), f.get("payload_b64"))
    return f"{_LEGACY}{f['time']}-{message_id(f.get('topic') or '', raw)[:12]}"


def _message(f: dict[str, Any]) -> QuarantinedMessage:
    payload = decode_payload(f.get("payload"), f.get("payload_b64"))
    size = f.get("size")
    return QuarantinedMessage(
        message_id=f["message_id"],
        topic=f.get("topic") or "",
        received_ms=int(f["received_ms"]),
        payload=payload,
        size=len(payload) if size is None else int(size),
        park=f.get("park"),
        tenant=f.get("tenant"),
        meter=f.get("meter"),
    )


def _series_readings(series: Series) -> list[Reading]:
    """Readings of one series grouped by all reading tags, with columns time, value, seq."""
    tags = series.get("tags", {})
    col = {name: i for i, name in enumerate(series["columns"])}
    seq_col = col.get("seq")
    out = []
    for row in series["values"]:
        seq = None if seq_col is None else row[seq_col]
        out.append(
            Reading(
                park=tags["park"],
                tenant=tags["tenant"],
                meter=tags["meter"],
                resource=tags["resource"],
                direction=Direction(tags["direction"]),
                ts_ms=int(row[col["time"]]),
                value=float(row[col["value"]]),
                seq=None if seq is None else int(seq),
            )
        )
    return out
