"""The one place that meets httpx: InfluxDB's v1 HTTP API (``/write``, ``/query``, ``/ping``),
with every failure mapped to parkflow's errors.

Anything that may succeed later without changing the data (connection refused, timeouts, 5xx,
429, 401/403, 404 database not found, ...) is ``StoreUnavailable``, so that nothing is
acknowledged and dropped because of an outage or an operator mistake; only a rejection of the
points themselves (HTTP 400: unparsable point, field type conflict, partial write; 413: body
too large) is ``StoreRejected``. A query InfluxDB cannot run is a plain ``StoreError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import httpx

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.store.influx.influxql import Series, quote_ident

_QUERY_CHUNK_ROWS = 10_000
_STATEMENTS_PER_REQUEST = 30


class InfluxHttp:
    """One shared, thread-safe ``httpx.Client`` for one database (and retention policy)."""

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
        create_database: bool = False,
    ) -> None:
        if token is not None and (username is not None or password is not None):
            raise ValueError("give either a token or a username/password, not both")
        self.database = database
        self.retention_policy = retention_policy
        headers = {"Authorization": f"Token {token}"} if token is not None else {}
        basic = username is not None or password is not None
        auth = httpx.BasicAuth(username or "", password or "") if basic else None
        self._client = httpx.Client(
            base_url=url.rstrip("/"), timeout=httpx.Timeout(timeout), headers=headers, auth=auth
        )
        self._lock = threading.Lock()
        self._create_database = create_database

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
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

    def ensure_database(self) -> None:
        """Idempotent ``CREATE DATABASE``, sent before the first write or read rather than at
        start-up, so that the service can start while InfluxDB is still down."""
        if not self._create_database:
            return
        q = f"CREATE DATABASE {quote_ident(self.database)}"
        response = self.request("POST", "/query", data={"q": q})
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

    def measurement(self, name: str) -> str:
        if self.retention_policy is None:
            return quote_ident(name)
        return f"{quote_ident(self.retention_policy)}.{quote_ident(name)}"

    def select(self, q: str) -> list[Series]:
        """Run one SELECT (chunked, so a server ``max-row-limit`` cannot truncate it)."""
        return self.select_many([q])[0]

    def query_text(self, q: str) -> str:
        """POST one request of ``;``-separated statements (chunked JSON); the raw answer."""
        return self.query(q, csv=False).text

    def query(self, q: str, csv: bool) -> httpx.Response:
        """POST one request of ``;``-separated statements, answered chunked, JSON or CSV."""
        self.ensure_database()
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
            return self.request("POST", "/query", params=params, data={"q": q}, headers=headers)
        except StoreRejected as exc:  # InfluxDB cannot run this query: no retry helps
            raise StoreError(f"InfluxDB query failed: {exc}") from exc

    def select_many(self, statements: Sequence[str]) -> list[list[Series]]:
        """The series of each statement, in order, sent in as few requests as sensible."""
        out: list[list[Series]] = [[] for _ in statements]
        for first in range(0, len(statements), _STATEMENTS_PER_REQUEST):
            batch = statements[first : first + _STATEMENTS_PER_REQUEST]
            text = self.query_text(";\n".join(batch))
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

    def post_write(self, body: bytes, precision: str) -> None:
        params = {"db": self.database, "precision": precision}
        if self.retention_policy is not None:
            params["rp"] = self.retention_policy
        self.request("POST", "/write", params=params, content=body)

    def ping(self) -> None:
        """Server reachable (and the database created, when asked): ready for writes."""
        self.request("GET", "/ping")
        self.ensure_database()

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
