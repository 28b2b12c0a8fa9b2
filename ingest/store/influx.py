"""InfluxStore: readings and quarantine in InfluxDB over the v1 HTTP API.

Only ``/write``, ``/query`` and ``/ping`` are used, so the same code talks to InfluxDB 1.x and
to the v1-compatible endpoints of 2.x/3.x (``token`` then authenticates). The point layout is
documented in ``ingest.store.lineprotocol`` and docs/schema.md.

Errors are mapped where httpx meets us: anything that may succeed later without changing the
data (connection refused, timeouts, 5xx, 429, 401/403, 404 database not found, ...) is a
``RetryableWriteError`` so that nothing is acknowledged and dropped because of an outage or an
operator mistake; only a rejection of the points themselves (HTTP 400: unparsable point, field
type conflict, partial write; 413: body too large) is a ``PermanentWriteError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from ingest.errors import PermanentWriteError, RetryableWriteError, StoreError
from ingest.model import Direction, Reading, Rejection, WriteBatch
from ingest.store.base import ReadingQuery, Store
from ingest.store.lineprotocol import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    QUARANTINE,
    READING,
    READING_TAGS,
    LineProtocolError,
    QuarantineClock,
    decode_payload,
    reading_line,
    rejection_line,
)

_QUERY_CHUNK_ROWS = 10_000


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


Series = dict[str, Any]


class InfluxStore(Store):
    """Store over the InfluxDB v1 HTTP API with one shared, thread-safe ``httpx.Client``.

    ``max_points`` and ``max_body_bytes`` split big batches into several requests (InfluxDB's
    default body limit is 25 MB and large requests stall its write path). A batch is only
    acknowledged when every request succeeded; a retried batch rewrites the same points, which
    is harmless because readings are keyed by their timestamp and a failed batch's quarantine
    timestamps are remembered so that retrying the very same batch does not duplicate them.
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
        create_database: bool = False,
    ) -> None:
        if token is not None and (username is not None or password is not None):
            raise ValueError("give either a token or a username/password, not both")
        if max_points < 1 or max_body_bytes < 1:
            raise ValueError("max_points and max_body_bytes must be positive")
        self.database = database
        self.retention_policy = retention_policy
        self.max_points = max_points
        self.max_body_bytes = max_body_bytes
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
        self._lock = threading.Lock()
        self._failed: tuple[WriteBatch, list[str], list[str]] | None = None
        self._create_database = create_database

    # -- writing -----------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        with self._lock:
            failed = self._failed
        retry = failed is not None and (failed[0] is batch or failed[0] == batch)
        if failed is not None and retry:
            readings, rejections = failed[1], failed[2]
        else:
            readings, rejections = self._lines(batch)
        try:
            if self._create_database:
                self._ensure_database()
            self._post_lines(readings, "ms")
            self._post_lines(rejections, "ns")
        except RetryableWriteError:
            with self._lock:
                self._failed = (batch, readings, rejections)
            raise
        if retry:
            with self._lock:
                self._failed = None

    def _lines(self, batch: WriteBatch) -> tuple[list[str], list[str]]:
        """Format the whole batch before sending anything: a bad point fails it up front."""
        try:
            readings = [reading_line(r) for r in batch.readings]
            rejections = [
                rejection_line(r, self._clock.stamp(r.received_ms)) for r in batch.rejections
            ]
        except LineProtocolError as exc:
            raise PermanentWriteError(f"cannot write to InfluxDB: {exc}") from exc
        return readings, rejections

    def _chunks(self, lines: Sequence[str]) -> Iterator[bytes]:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            data = line.encode("utf-8")
            if chunk and (len(chunk) >= self.max_points or size + len(data) > self.max_body_bytes):
                yield b"\n".join(chunk)
                chunk, size = [], 0
            chunk.append(data)
            size += len(data) + 1
        if chunk:
            yield b"\n".join(chunk)

    def _post_lines(self, lines: Sequence[str], precision: str) -> None:
        params = {"db": self.database, "precision": precision}
        if self.retention_policy is not None:
            params["rp"] = self.retention_policy
        for body in self._chunks(lines):
            self._request("POST", "/write", params=params, content=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange, with every failure mapped to a parkflow write error."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryableWriteError(f"InfluxDB {path} timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise RetryableWriteError(f"InfluxDB {path} unreachable: {exc!r}") from exc
        if response.is_success:
            return response
        message = _error_message(response)
        error = f"InfluxDB {path} answered {response.status_code}: {message}"
        if response.status_code in (400, 413):
            raise PermanentWriteError(error)
        raise RetryableWriteError(error)

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
            raise RetryableWriteError(
                f"InfluxDB {q!r}: unexpected answer {response.text[:200]!r}"
            ) from exc
        for result in results:
            if "error" in result:  # e.g. a user without admin rights: an operator problem
                raise RetryableWriteError(f"InfluxDB {q!r} failed: {result['error']}")
        with self._lock:
            self._create_database = False

    # -- reading -----------------------------------------------------------------------------

    def _measurement(self, name: str) -> str:
        if self.retention_policy is None:
            return quote_ident(name)
        return f"{quote_ident(self.retention_policy)}.{quote_ident(name)}"

    def _select(self, q: str) -> list[Series]:
        """Run one SELECT (chunked, so a server ``max-row-limit`` cannot truncate it)."""
        if self._create_database:
            try:
                self._ensure_database()
            except RetryableWriteError as exc:
                raise StoreError(str(exc)) from exc
        params = {
            "db": self.database,
            "q": q,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(_QUERY_CHUNK_ROWS),
        }
        try:
            response = self._request("GET", "/query", params=params)
        except (RetryableWriteError, PermanentWriteError) as exc:
            raise StoreError(f"InfluxDB query failed: {exc}") from exc
        series: list[Series] = []
        # One JSON document per line; not splitlines(): Go leaves U+0085 etc. unescaped.
        for line in response.text.split("\n"):
            if not line.strip():
                continue
            for result in json.loads(line).get("results", []):
                if "error" in result:
                    raise StoreError(f"InfluxDB query failed: {result['error']}")
                series.extend(result.get("series", []))
        return series

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
        out: list[Reading] = []
        for s in self._select(q):
            tags = s.get("tags", {})
            col = {name: i for i, name in enumerate(s["columns"])}
            seq_col = col.get("seq")
            for row in s["values"]:
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
        q += f" ORDER BY time DESC LIMIT {int(limit)}"
        out: list[Rejection] = []
        for s in self._select(q):
            names = s["columns"]
            for row in s["values"]:
                f = dict(zip(names, row, strict=True))
                index = f.get("index")
                out.append(
                    Rejection(
                        reason=f["reason"],
                        detail=f.get("detail") or "",
                        topic=f.get("topic") or "",
                        payload=decode_payload(f.get("payload"), f.get("payload_b64")),
                        received_ms=int(f["received_ms"]),
                        index=None if index is None else int(index),
                        park=f.get("park"),
                        tenant=f.get("tenant"),
                        meter=f.get("meter"),
                    )
                )
        return out

    def quarantine_counts(self) -> dict[str, int]:
        q = f'SELECT count("received_ms") FROM {self._measurement(QUARANTINE)} GROUP BY "reason"'
        counts: dict[str, int] = {}
        for s in self._select(q):
            reason = s.get("tags", {}).get("reason", "")
            counts[reason] = counts.get(reason, 0) + sum(int(row[1]) for row in s["values"])
        return counts

    def ping(self) -> None:
        """Server reachable (and the database created, when asked): ready for writes."""
        self._request("GET", "/ping")
        if self._create_database:
            self._ensure_database()

    def close(self) -> None:
        self._client.close()


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation: the ``error`` of its JSON body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else response.text.strip()[:500]
