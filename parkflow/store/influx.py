"""InfluxStore: readings and quarantine in InfluxDB over the v1 HTTP API.

Only ``/write``, ``/query`` and ``/ping`` are used, so the same code talks to InfluxDB 1.x and
to the v1-compatible endpoints of 2.x/3.x (``token`` then authenticates). The point layout is
documented in ``parkflow.store.lineprotocol`` and docs/schema.md.

Errors are mapped where httpx meets us: anything that may succeed later without changing the
data (connection refused, timeouts, 5xx, 429, 401/403, 404 database not found, ...) is a
``StoreUnavailable`` so that nothing is acknowledged and dropped because of an outage or an
operator mistake; only a rejection of the points themselves (HTTP 400: unparsable point, field
type conflict, partial write; 413: body too large) is a ``StoreRejected``.

Reads for the rollup worker are batched: InfluxQL takes several ``;``-separated statements per
request and a tag condition may name hundreds of meters, so a cycle over thousands of meters
costs a few requests, not thousands. The big read, ``day_rollups``, asks for CSV
(``Accept: application/csv``), which pandas parses several times faster than the JSON.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.model import (
    Direction,
    MeterKey,
    QuarantinedMessage,
    Reading,
    Rejection,
    WriteBatch,
    message_id,
)
from parkflow.store.base import (
    Clock,
    DayRollup,
    MeterRange,
    Point,
    RangeData,
    ReadingQuery,
    Store,
    build_rollup_frame,
    dedupe_points,
    wall_clock_ms,
)
from parkflow.store.lineprotocol import (
    CHANGE,
    MAX_TIME_MS,
    METER_TAGS,
    MIN_TIME_MS,
    PACKED_HOURS_CHARS,
    QUARANTINE,
    QUARANTINE_MESSAGE,
    READING,
    READING_TAGS,
    ROLLUP_DAY,
    ROLLUP_STATE,
    LineProtocolError,
    QuarantineClock,
    change_lines,
    decode_payload,
    message_line,
    parse_change_keys,
    reading_lines_by_meter,
    reading_lines_ns,
    rejection_line,
    rollup_line,
    state_line,
    unpack_hours,
)
from parkflow.timeunits import DAY_MS, HOUR_MS, HOURS_PER_DAY

if TYPE_CHECKING:
    import pandas as pd

_QUERY_CHUNK_ROWS = 10_000
_STAMPS_KEPT = 200_000  # quarantine records whose stamp is remembered for rewrites
_KEYS_PER_STATEMENT = 500  # meters named in one WHERE clause
_STATEMENTS_PER_REQUEST = 30
# Neighbours are looked for within these distances of a range first, then without bound.
_NEIGHBOUR_WINDOWS_MS = (2 * HOUR_MS, 2 * DAY_MS)


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + _escape_influxql(name, '"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL single-quoted string literal (tag values in WHERE clauses)."""
    return "'" + _escape_influxql(value, "'") + "'"


def _escape_influxql(text: str, quote: str) -> str:
    # The InfluxQL scanner understands exactly \\, \n, \" and \' inside quotes; a raw newline
    # ends the token with an error.
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def _ms_to_ns_bound(ms: int) -> int:
    return max(MIN_TIME_MS, min(MAX_TIME_MS, ms)) * 1_000_000


def _group_by_meter() -> str:
    return "GROUP BY " + ", ".join(quote_ident(t) for t in METER_TAGS)


def _meters_condition(keys: Sequence[MeterKey]) -> str:
    """A tag condition selecting at least these meters' series (callers drop the rest).

    One ``=~ /^(a|b|...)$/`` per tag: InfluxDB turns such a regex into a set look-up, while an
    ``OR`` of hundreds of ``(park AND tenant AND meter)`` terms costs about 0.1 s a statement.
    The product of the three sets may name a few extra meters; they are filtered out.
    """
    return " AND ".join(
        f"{quote_ident(tag)} =~ /^({'|'.join(_regex_literal(v) for v in sorted(values))})$/"
        for tag, values in (
            ("park", {k.park for k in keys}),
            ("tenant", {k.tenant for k in keys}),
            ("meter", {k.meter for k in keys}),
        )
    )


def _regex_literal(value: str) -> str:
    """``value`` matched literally inside an InfluxQL ``/regex/`` (RE2 syntax)."""
    return re.escape(value).replace("/", "\\/")


def _series_key(series: Series) -> MeterKey:
    tags = series.get("tags", {})
    return MeterKey(tags["park"], tags["tenant"], tags["meter"])


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


Series = dict[str, Any]


class InfluxStore(Store):
    """Store over the InfluxDB v1 HTTP API with one shared, thread-safe ``httpx.Client``.

    ``max_points`` and ``max_body_bytes`` split big batches into several requests (InfluxDB's
    default body limit is 25 MB and large requests stall its write path). A batch is only
    acknowledged when every request succeeded; a retried batch rewrites the same points, which
    is harmless because readings are keyed by their timestamp, and each quarantine record keeps
    the stamp it was first written with (a retry or a bisection half rewrites the same point).
    A redelivered message after a crash gets new stamps; reads keep one record per identity.
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        max_points: int = 5000,
        max_body_bytes: int = 8 * 1024 * 1024,
        write_concurrency: int = 3,
        create_database: bool = False,
        clock: Clock = wall_clock_ms,
    ) -> None:
        if token is not None and (username is not None or password is not None):
            raise ValueError("give either a token or a username/password, not both")
        if max_points < 1 or max_body_bytes < 1:
            raise ValueError("max_points and max_body_bytes must be positive")
        self.database = database
        self.retention_policy = retention_policy
        self.max_points = max_points
        self.max_body_bytes = max_body_bytes
        self.write_concurrency = write_concurrency
        self._pool: ThreadPoolExecutor | None = None
        headers = {"Authorization": f"Token {token}"} if token is not None else {}
        basic = username is not None or password is not None
        auth = httpx.BasicAuth(username or "", password or "") if basic else None
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers=headers,
            auth=auth,
        )
        self._clock = QuarantineClock()
        self._wall = clock
        self._writer = uuid.uuid4().hex[:16]  # tags this instance's change markers
        self._lock = threading.Lock()
        self._stamps: OrderedDict[str, int] = OrderedDict()
        self._create_database = create_database

    # -- writing -----------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        groups, records = self._lines(batch)
        if self._create_database:
            self._ensure_database()
        # One request for the whole batch where it fits (every request costs InfluxDB an
        # fsync), change markers last. They are stamped anew at every attempt: a retry must not
        # carry a marker time the rollup worker may already be past.
        tail = [*records, *self._change_lines(batch)]
        if len(groups) == 1:
            self._post_in_order([*groups[0], *tail], "ns")
        else:
            self._post_groups(groups, "ns")
            self._post_in_order(tail, "ns")

    def _lines(self, batch: WriteBatch) -> tuple[list[list[str]], list[str]]:
        """Format the whole batch before sending anything: a bad point fails it up front.

        Readings beyond one request are split into ``write_concurrency`` groups by meter,
        posted at once (InfluxDB spreads concurrent requests over its cores), each group's
        requests in order: two readings of one meter and timestamp are always in one group,
        so the later one received wins, as the store promises.
        """
        readings = batch.readings
        try:
            k = self.write_concurrency
            if len(readings) > self.max_points and k > 1:
                groups = reading_lines_by_meter(readings, k)
            else:
                groups = [reading_lines_ns(readings)]
            records = [
                rejection_line(r, self._stamp(r.rid, r.received_ms)) for r in batch.rejections
            ]
            records += [
                message_line(m, self._stamp("m:" + m.message_id, m.received_ms))
                for m in batch.messages
            ]
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write to InfluxDB: {exc}") from exc
        return groups, records

    def _stamp(self, identity: str, received_ms: int) -> int:
        """The record's timestamp: the one it got the first time this store wrote it, so a
        retry or a bisection half rewrites the same point. A redelivered copy has another
        received_ms, gets a point of its own, and reads keep one per identity."""
        identity = f"{identity}@{received_ms}"
        with self._lock:
            stamp = self._stamps.get(identity)
            if stamp is not None:
                self._stamps.move_to_end(identity)
                return stamp
        stamp = self._clock.stamp(received_ms)
        with self._lock:
            self._stamps[identity] = stamp
            while len(self._stamps) > _STAMPS_KEPT:
                self._stamps.popitem(last=False)
        return stamp

    def _change_lines(self, batch: WriteBatch) -> list[str]:
        """The batch's change markers, stamped with the write time of this attempt."""
        if not batch.readings:
            return []
        written = self._wall()
        try:
            return change_lines(batch.readings, self._writer, lambda: self._clock.stamp(written))
        except LineProtocolError as exc:  # the same ids already passed as reading tags
            raise StoreRejected(f"cannot write to InfluxDB: {exc}") from exc

    def _chunks(self, lines: Sequence[str]) -> Iterator[bytes]:
        """Request bodies of at most ``max_points`` lines and ``max_body_bytes`` bytes."""
        for start in range(0, len(lines), self.max_points):
            part = lines[start : start + self.max_points]
            body = "\n".join(part).encode("utf-8")  # one encode per request, not per line
            if len(body) <= self.max_body_bytes or len(part) == 1:
                yield body
            else:
                yield from self._chunks_by_size(part)

    def _chunks_by_size(self, lines: Sequence[str]) -> Iterator[bytes]:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            data = line.encode("utf-8")
            if chunk and size + len(data) > self.max_body_bytes:
                yield b"\n".join(chunk)
                chunk, size = [], 0
            chunk.append(data)
            size += len(data) + 1
        if chunk:
            yield b"\n".join(chunk)

    def _params(self, precision: str) -> dict[str, str]:
        params = {"db": self.database, "precision": precision}
        if self.retention_policy is not None:
            params["rp"] = self.retention_policy
        return params

    def _post_in_order(self, lines: Sequence[str], precision: str) -> None:
        """Every chunk, one after the other: later points win over earlier ones."""
        params = self._params(precision)
        for body in self._chunks(lines):
            self._request("POST", "/write", params=params, content=body)

    def _post_groups(self, groups: Sequence[Sequence[str]], precision: str) -> None:
        """Groups at once, ``write_concurrency`` at a time, each group in order. Every group is
        tried; a rejected point wins over an outage, so the caller bisects to find it."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.write_concurrency, thread_name_prefix="influx-write"
                )
            pool = self._pool
        futures = [pool.submit(self._post_in_order, g, precision) for g in groups]
        failed = [e for e in (f.exception() for f in futures) if e is not None]
        if failed:
            permanent = [e for e in failed if isinstance(e, StoreRejected)]
            raise (permanent or failed)[0]

    def _post_lines(self, lines: Sequence[str], precision: str) -> None:
        """Points with distinct keys (rollups): chunks at once, the last after the others."""
        if len(lines) <= self.max_points or self.write_concurrency < 2:
            self._post_in_order(lines, precision)
            return
        step = self.max_points
        head = [lines[i : i + step] for i in range(0, len(lines) - step, step)]
        self._post_groups(head, precision)
        self._post_in_order(lines[len(head) * step :], precision)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange, with every failure mapped to a parkflow write error."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"InfluxDB {path} timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB {path} unreachable: {exc!r}") from exc
        if response.is_success:
            return response
        message = _error_message(response)
        error = f"InfluxDB {path} answered {response.status_code}: {message}"
        if response.status_code in (400, 413):
            raise StoreRejected(error)
        raise StoreUnavailable(error)

    def _ensure_database(self) -> None:
        """Idempotent ``CREATE DATABASE``, sent before the first write or read rather than in
        ``__init__`` so that the service can start while InfluxDB is still down."""
        with self._lock:
            if not self._create_database:
                return
        q = f"CREATE DATABASE {quote_ident(self.database)}"
        response = self._request("POST", "/query", data={"q": q})
        try:
            results = response.json().get("results", [])
        except ValueError as exc:
            raise StoreUnavailable(
                f"InfluxDB {q!r}: unexpected answer {response.text[:200]!r}"
            ) from exc
        for result in results:
            if "error" in result:  # e.g. a user without admin rights: an operator problem
                raise StoreUnavailable(f"InfluxDB {q!r} failed: {result['error']}")
        with self._lock:
            self._create_database = False

    # -- reading -----------------------------------------------------------------------------

    def _measurement(self, name: str) -> str:
        if self.retention_policy is None:
            return quote_ident(name)
        return f"{quote_ident(self.retention_policy)}.{quote_ident(name)}"

    def _select(self, q: str) -> list[Series]:
        """Run one SELECT (chunked, so a server ``max-row-limit`` cannot truncate it)."""
        return self._select_many([q])[0]

    def _query_text(self, q: str) -> str:
        """POST one request of ``;``-separated statements (chunked JSON); the raw answer."""
        return self._query(q, csv=False).text

    def _query(self, q: str, csv: bool) -> httpx.Response:
        """POST one request of ``;``-separated statements, answered chunked, JSON or CSV."""
        if self._create_database:
            try:
                self._ensure_database()
            except StoreUnavailable as exc:
                raise StoreError(str(exc)) from exc
        params = {
            "db": self.database,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(_QUERY_CHUNK_ROWS),
        }
        # Uncompressed: gzip costs InfluxDB and us more CPU than the bytes cost a LAN.
        headers = {"Accept-Encoding": "identity"}
        if csv:
            headers["Accept"] = "application/csv"
        try:
            response = self._request(
                "POST", "/query", params=params, data={"q": q}, headers=headers
            )
        except (StoreUnavailable, StoreRejected) as exc:
            raise StoreError(f"InfluxDB query failed: {exc}") from exc
        return response

    def _select_many(self, statements: Sequence[str]) -> list[list[Series]]:
        """The series of each statement, in order, sent in as few requests as sensible."""
        out: list[list[Series]] = [[] for _ in statements]
        for first in range(0, len(statements), _STATEMENTS_PER_REQUEST):
            batch = statements[first : first + _STATEMENTS_PER_REQUEST]
            text = self._query_text(";\n".join(batch))
            # One JSON document per line; not splitlines(): Go leaves U+0085 etc. unescaped.
            for line in text.split("\n"):
                if not line.strip():
                    continue
                for result in json.loads(line).get("results", []):
                    if "error" in result:
                        raise StoreError(f"InfluxDB query failed: {result['error']}")
                    index = first + int(result.get("statement_id", 0))
                    out[index].extend(result.get("series", []))
        return out

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
            conditions.append(f"time >= {_ms_to_ns_bound(query.start_ms)}")
        if query.end_ms is not None:
            if query.end_ms <= MIN_TIME_MS:
                return []
            conditions.append(f"time < {_ms_to_ns_bound(query.end_ms)}")
        q = f'SELECT "value", "seq" FROM {self._measurement(READING)}'
        if conditions:
            q += " WHERE " + " AND ".join(conditions)
        q += " GROUP BY " + ", ".join(quote_ident(t) for t in READING_TAGS)
        out = [r for s in self._select(q) for r in _series_readings(s)]
        out.sort(key=lambda r: (r.park, r.tenant, r.meter, r.ts_ms))
        return out

    def quarantined(
        self, reason: str | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> list[Rejection]:
        if limit <= 0:
            return []
        conditions = []
        if reason is not None:
            conditions.append(f'"reason" = {quote_literal(reason)}')
        if since_ms is not None:
            if since_ms > MAX_TIME_MS:
                return []
            conditions.append(f"time >= {_ms_to_ns_bound(since_ms)}")
        q = f"SELECT * FROM {self._measurement(QUARANTINE)}"
        if conditions:
            q += " WHERE " + " AND ".join(conditions)
        # A redelivered message may have written its records twice: ask for more, keep one.
        q += f" ORDER BY time DESC LIMIT {2 * int(limit)}"
        out: list[Rejection] = []
        seen: set[str] = set()
        for s in self._select(q):
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
        window = f"time >= {_ms_to_ns_bound(lo)} AND time < {_ms_to_ns_bound(hi)}"
        out: dict[str, QuarantinedMessage] = {}
        q = f"SELECT * FROM {self._measurement(QUARANTINE_MESSAGE)} WHERE {window}"
        for s in self._select(q):
            names = s["columns"]
            for row in s["values"]:
                f = dict(zip(names, row, strict=True))
                if f.get("message_id") in wanted:
                    out.setdefault(f["message_id"], _message(f))
        legacy = {w for w in wanted if w.startswith(_LEGACY)}
        if legacy:  # written before messages had records of their own: the payload is inline
            q = f"SELECT * FROM {self._measurement(QUARANTINE)} WHERE {window}"
            for s in self._select(q):
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
            f' count("detail") AS "all" FROM {self._measurement(QUARANTINE)} GROUP BY "reason"'
        )
        counts: dict[str, int] = {}
        for s in self._select(q):
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
            f'SELECT "keys" FROM {self._measurement(CHANGE)}'
            f" WHERE time >= {_ms_to_ns_bound(after_ms + 1)}"
            f" AND time < {_ms_to_ns_bound(until_ms + 1)}"
        )
        found: set[tuple[MeterKey, int]] = set()
        for s in self._select(q):
            for _, keys in s["values"]:
                found.update(parse_change_keys(keys or "{}"))
        return sorted(found, key=lambda kh: (kh[0].park, kh[0].tenant, kh[0].meter, kh[1]))

    def prune_changes(self, before_ms: int) -> None:
        if before_ms <= MIN_TIME_MS:
            return
        # DELETE takes no retention policy: it removes the markers from every one.
        self._query_text(
            f"DELETE FROM {quote_ident(CHANGE)} WHERE time < {_ms_to_ns_bound(before_ms)}"
        )

    # -- reads for the rollup worker -----------------------------------------------------------

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        head = f'SELECT "value", "seq" FROM {self._measurement(READING)}'
        head += f" WHERE ({_meters_condition([key])})"
        by_series = "GROUP BY " + ", ".join(quote_ident(t) for t in READING_TAGS)
        # Grouped by every tag: after a registry change one meter may have several series.
        statements = [
            f"{head} AND time < {_ms_to_ns_bound(start_ms)} {by_series} ORDER BY time DESC LIMIT 1",
            f"{head} AND time >= {_ms_to_ns_bound(end_ms)} {by_series} LIMIT 1",
        ]
        before_s, after_s = self._select_many(statements)
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

        m = self._measurement(READING)
        asked: list[tuple[str, str, dict[MeterKey, list[int]]]] = []
        for (start, end), by_key in groups.items():
            for chunk in _chunks(list(by_key), _KEYS_PER_STATEMENT):
                if end > start:
                    asked.append((
                        f'SELECT "value" FROM {m} WHERE ({_meters_condition(chunk)})'
                        f" AND time >= {_ms_to_ns_bound(start)} AND time < {_ms_to_ns_bound(end)}"
                        f" {_group_by_meter()}",
                        "points",
                        {k: by_key[k] for k in chunk},
                    ))  # fmt: skip
        inner = 0
        for outer in (*_NEIGHBOUR_WINDOWS_MS, None):
            for (start, end), by_key in groups.items():
                lacking = [k for k, idx in by_key.items() if before[idx[0]] is None]
                if start - inner > MIN_TIME_MS:
                    low = "" if outer is None else f"time >= {_ms_to_ns_bound(start - outer)} AND "
                    for chunk in _chunks(lacking, _KEYS_PER_STATEMENT):
                        asked.append((
                            f'SELECT last("value") FROM {m} WHERE ({_meters_condition(chunk)})'
                            f" AND {low}time < {_ms_to_ns_bound(start - inner)}"
                            f" {_group_by_meter()}",
                            "before",
                            {k: by_key[k] for k in chunk},
                        ))  # fmt: skip
                lacking = [k for k, idx in by_key.items() if after[idx[0]] is None]
                if end + inner <= MAX_TIME_MS:
                    high = "" if outer is None else f" AND time < {_ms_to_ns_bound(end + outer)}"
                    for chunk in _chunks(lacking, _KEYS_PER_STATEMENT):
                        asked.append((
                            f'SELECT first("value") FROM {m} WHERE ({_meters_condition(chunk)})'
                            f" AND time >= {_ms_to_ns_bound(end + inner)}{high}"
                            f" {_group_by_meter()}",
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
        answers = self._select_many([q for q, _, _ in asked])
        for (_, kind, owners), series in zip(asked, answers, strict=True):
            for s in series:
                idx = owners.get(_series_key(s), [])
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

    # -- rollups -------------------------------------------------------------------------------

    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        try:
            lines = [rollup_line(r) for r in rows]
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write rollups to InfluxDB: {exc}") from exc
        if self._create_database:
            self._ensure_database()
        self._post_lines(lines, "ms")

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        by_day: dict[int, list[MeterKey]] = {}
        for key, day in dict.fromkeys(wanted):
            by_day.setdefault(day, []).append(key)
        statements: list[str] = []
        for day, keys in sorted(by_day.items()):
            if not MIN_TIME_MS <= day <= MAX_TIME_MS:
                continue
            for chunk in _chunks(keys, _KEYS_PER_STATEMENT):
                statements.append(
                    'SELECT "resource", "direction", "total", "coverage", "hours"'
                    f" FROM {self._measurement(ROLLUP_DAY)} WHERE ({_meters_condition(chunk)})"
                    f" AND time = {_ms_to_ns_bound(day)} {_group_by_meter()}"
                )
        wanted_set = set(wanted)
        out: list[DayRollup] = []
        for series in self._select_many(statements):
            for s in series:
                key = _series_key(s)
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
                f" FROM {self._measurement(ROLLUP_DAY)}"
                f" WHERE time >= {_ms_to_ns_bound(start_ms)} AND time < {_ms_to_ns_bound(end_ms)}"
            )
            if park is not None:
                q += f' AND "park" = {quote_literal(park)}'
            body = self._query(q, csv=True).content
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

    # -- state ---------------------------------------------------------------------------------

    def get_state(self, name: str) -> int | None:
        q = (
            f'SELECT last("value") FROM {self._measurement(ROLLUP_STATE)}'
            f' WHERE "key" = {quote_literal(name)}'
        )
        for s in self._select(q):
            for row in s["values"]:
                return int(row[1])
        return None

    def set_state(self, name: str, value: int) -> None:
        try:
            line = state_line(name, value, self._clock.stamp(self._wall()))
        except LineProtocolError as exc:
            raise StoreRejected(f"cannot write state to InfluxDB: {exc}") from exc
        if self._create_database:
            self._ensure_database()
        self._post_lines([line], "ns")

    def ping(self) -> None:
        """Server reachable (and the database created, when asked): ready for writes."""
        self._request("GET", "/ping")
        if self._create_database:
            self._ensure_database()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()


def _parse_rollup_csv(body: bytes) -> pd.DataFrame:
    """InfluxDB's CSV answer for ``rollup_day``; ids stay strings whatever they look like."""
    import pandas as pd

    text_columns = {c: str for c in ("hours", "resource", "direction", *METER_TAGS)}
    typed = {**text_columns, "time": "int64", "total": "float64", "coverage": "float64"}
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


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation: the ``error`` of its JSON body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else response.text.strip()[:500]
