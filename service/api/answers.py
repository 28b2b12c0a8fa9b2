"""Answers remembered: a read route's JSON body, kept per request (who asks, the route, its
query) together with the inputs it was made from, and served again while a fresh read of
those inputs finds them the same.

Why: at the portal's hundreds of requests a second, most of an answer's CPU went on turning
the same rows into the same dicts, validating them into response models and writing them as
JSON, again and again between two writes. What is compared instead is what the answer is a
function of, read on every request: the latest run's id (a finished run's rows never change:
its opportunities and plan are read once per run and scope), the consents that introduce the
parties, the rows themselves where nothing cheaper says they changed. The comparison is of
the values, never of a clock or a count, so an answer is never served after its inputs
changed, whichever process changed them.

Memory is bounded: past ``size`` kept answers or ``max_bytes`` of them, all are forgotten and
made again on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel

T = TypeVar("T")

JSON = "application/json"


class Answers:
    def __init__(self, size: int = 4096, max_bytes: int = 64 << 20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._kept: dict[Hashable, tuple[Hashable, bytes]] = {}
        self._bytes = 0
        self._by_run: dict[Hashable, tuple[Hashable, Any]] = {}
        self._lock = threading.Lock()
        self.made = 0  # answers made, not served from memory (for tests and benchmarks)

    def body(
        self, key: Hashable, inputs: Callable[[], Hashable], make: Callable[[], BaseModel]
    ) -> Response:
        """The answer to ``key``: the one kept when it was made of what ``inputs()`` reads
        now, else ``make()``'s model written as JSON, kept when ``inputs()`` read again after
        it finds them unchanged (a write while it was made: the answer is given, not kept)."""
        before = inputs()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == before:
            return Response(kept[1], media_type=JSON)
        body = make().model_dump_json().encode()
        after = inputs()
        with self._lock:
            self.made += 1
            if after == before:
                old = self._kept.pop(key, None)
                self._bytes -= len(old[1]) if old else 0
                if len(self._kept) >= self.size or self._bytes + len(body) > self.max_bytes:
                    self._kept, self._bytes = {}, 0
                self._kept[key] = (before, body)
                self._bytes += len(body)
        return Response(body, media_type=JSON)

    def of_run(self, run_id: Hashable, key: Hashable, read: Callable[[], T]) -> T:
        """What ``read`` gives of a finished run's view (``ResultsDb.view_key``: its rows
        never change once its runs are finished), read once per view and ``key``; a newer
        view's replace an older one's."""
        kept = self._by_run.get(key)
        if kept is not None and kept[0] == run_id:
            value: T = kept[1]
            return value
        value = read()
        with self._lock:
            if len(self._by_run) >= self.size:
                self._by_run = {}
            self._by_run[key] = (run_id, value)
        return value
