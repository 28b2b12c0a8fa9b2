"""The exception hierarchy of parkflow.

Foreign errors (httpx, sqlite3, paho, pydantic, yaml) are mapped to these at the edge that meets
them, so callers handle a few named cases instead of every library's.
"""

from __future__ import annotations


class ParkflowError(Exception):
    """Base of every error parkflow raises on purpose."""


class RegistryError(ParkflowError):
    """The park registry file is unreadable or invalid; carries every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


class PayloadError(ParkflowError):
    """A message or one reading in it is not acceptable; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str, index: int | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.index = index  # the reading's position in a batch payload, if it is one reading
        super().__init__(f"{reason}: {detail}")


class UnitError(ParkflowError):
    """A unit is unknown or does not convert to the required dimension."""


class StoreError(ParkflowError):
    """A store operation failed."""


class WriteError(StoreError):
    """A write was not accepted; nothing in the batch may be acknowledged."""


class RetryableWriteError(WriteError):
    """The store is down, slow, overloaded or refusing us: try the same batch again later."""


class PermanentWriteError(WriteError):
    """The store rejects the data itself: retrying the same points will never succeed."""
