"""The exception hierarchy of parkflow, small on purpose.

Foreign errors (httpx, sqlite3, paho, pydantic, yaml) are mapped to these at the one edge that
meets each library, so callers handle a few named cases instead of every library's, and the
command line turns each kind into one exit code (``parkflow.cli``):

    ParkflowError
    ├── ConfigError          a file or setting a person wrote is wrong        exit 2
    │   ├── RegistryError    the park registry
    │   └── KnowledgeError   rules, prices, factors (service.knowledge)
    ├── InputError           data given to a command is wrong (a CSV file)   exit 2
    ├── PayloadError         one message or reading is refused (quarantined, never raised out)
    ├── UnitError            a unit is unknown or does not convert
    └── StoreError           a store or database failed                      exit 3
        ├── StoreUnavailable down, slow, refusing us: the same call may succeed later
        └── StoreRejected    the data itself is refused: retrying it never succeeds
"""

from __future__ import annotations


class ParkflowError(Exception):
    """Base of every error parkflow raises on purpose."""


class ConfigError(ParkflowError):
    """A file or setting is unreadable or invalid; carries every problem found, each with the
    place it is at."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


class RegistryError(ConfigError):
    """The park registry file is unreadable or invalid."""


class InputError(ParkflowError):
    """Data handed to a command cannot be read at all (not one bad row: those are quarantined)."""


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
    """A store operation failed (an unexpected answer, a schema newer than this code)."""


class StoreUnavailable(StoreError):
    """The store is down, slow, overloaded or refusing us: try the same call again later.
    Nothing in a failed write may be acknowledged."""


class StoreRejected(StoreError):
    """The store refuses the data itself: retrying the same points will never succeed."""
