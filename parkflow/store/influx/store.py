"""InfluxStore: every port in InfluxDB over the v1 HTTP API.

Only ``/write``, ``/query`` and ``/ping`` are used, so the same code talks to InfluxDB 1.x and
to the v1-compatible endpoints of 2.x/3.x (``token`` then authenticates). The point layout is
in ``lineprotocol`` and docs/schema.md; HTTP and its errors in ``http``; writing, reading and
rollups each in a module of their own.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from parkflow.store.influx.http import InfluxHttp
from parkflow.store.influx.lineprotocol import QuarantineClock
from parkflow.store.influx.reads import InfluxReads
from parkflow.store.influx.rollups import InfluxRollups
from parkflow.store.influx.savings import InfluxSavings
from parkflow.store.influx.writes import InfluxWrites
from parkflow.store.ports import Clock, wall_clock_ms


class InfluxStore(InfluxWrites, InfluxReads, InfluxRollups, InfluxSavings):
    """``max_points`` and ``max_body_bytes`` split big batches into several requests (InfluxDB's
    default body limit is 25 MB and large requests stall its write path). A batch is only
    acknowledged when every request succeeded; a retried batch rewrites the same points, which
    is harmless because readings are keyed by their timestamp and quarantine records keep their
    stamps. A redelivered message after a crash gets new stamps; reads keep one record per
    identity."""

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
        if max_points < 1 or max_body_bytes < 1:
            raise ValueError("max_points and max_body_bytes must be positive")
        self.database = database
        self.max_points = max_points
        self.max_body_bytes = max_body_bytes
        self.write_concurrency = write_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._http = InfluxHttp(
            url,
            database,
            retention_policy=retention_policy,
            username=username,
            password=password,
            token=token,
            timeout=timeout,
            create_database=create_database,
        )
        self._clock = QuarantineClock()
        self._wall = clock
        self._writer = uuid.uuid4().hex[:16]  # tags this instance's change markers
        self._lock = threading.Lock()
        self._stamps: OrderedDict[str, int] = OrderedDict()

    @property
    def retention_policy(self) -> str | None:
        return self._http.retention_policy

    def ping(self) -> None:
        self._http.ping()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._http.close()
