"""The store seam: one write method that the pipeline depends on, plus the reads others need."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.model import Reading, Rejection, WriteBatch


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Which readings to read back; ``None`` means no restriction. Times are epoch ms, end exclusive."""

    park: str | None = None
    tenant: str | None = None
    meter: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


class Store(ABC):
    """Durable storage of readings and quarantined input.

    ``write`` returns only when everything in the batch is durable; it raises
    ``RetryableWriteError`` or ``PermanentWriteError`` otherwise. Writing the same reading
    again (same park, tenant, meter, ts_ms) replaces it: the store is idempotent.
    """

    @abstractmethod
    def write(self, batch: WriteBatch) -> None: ...

    @abstractmethod
    def readings(self, query: ReadingQuery) -> list[Reading]:
        """Readings sorted by (park, tenant, meter, ts_ms)."""

    @abstractmethod
    def quarantined(
        self, reason: str | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> list[Rejection]:
        """Most recent first."""

    @abstractmethod
    def quarantine_counts(self) -> dict[str, int]:
        """Quarantined records by reason."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``RetryableWriteError`` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def write_many(self, batches: Sequence[WriteBatch]) -> None:
        for batch in batches:
            self.write(batch)
