"""When to try a failed delivery again, and when to give up on an endpoint. Pure.

Full jitter (a delay drawn uniformly between zero and an exponentially growing, capped
ceiling) spreads the retries of many notifications that failed together, such as every alert
for a receiver that was down for an hour, instead of sending them back in one burst when it
returns. An endpoint is not retried for ever: once it has failed for ``disable_after_s`` without
one success it is disabled and the operator is told, so a tenant's dead URL costs a bounded
amount of work and someone hears of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = 5.0  # the first retry's ceiling
    cap_s: float = 3600.0  # no ceiling above this, however many attempts failed
    disable_after_s: float = 3 * 86400.0  # failing this long without a success: disabled

    def __post_init__(self) -> None:
        for name in ("base_s", "cap_s", "disable_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be at least base_s ({self.base_s})")


def ceiling(policy: BackoffPolicy, attempt: int) -> float:
    """The largest delay after the ``attempt``-th failure (0 for the first)."""
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    # 2**attempt overflows a float near 1024; the cap is reached long before that.
    return min(policy.cap_s, policy.base_s * 2.0 ** min(attempt, 1000))


def delay(policy: BackoffPolicy, attempt: int, u: float, after: float | None = None) -> float:
    """Seconds to wait after the ``attempt``-th failure, ``u`` uniform in [0, 1) the jitter.
    A receiver's own ``after`` (Retry-After) is honoured when it asks for longer."""
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must be in [0, 1), not {u!r}")
    wait = u * ceiling(policy, attempt)
    if after is not None and math.isfinite(after) and after > wait:
        wait = after
    return wait


def expired(policy: BackoffPolicy, failing_since: datetime, now: datetime) -> bool:
    """Whether an endpoint failing since ``failing_since`` has failed long enough to disable."""
    return now - failing_since >= timedelta(seconds=policy.disable_after_s)
