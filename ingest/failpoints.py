"""Failpoints: named places where a test can make the ingestor die, to prove nothing is lost.

Set ``PARKFLOW_FAILPOINTS="after_write=3"`` and the process SIGKILLs itself the 3rd time it
passes ``hit("after_write")``. Unset (production), ``hit`` is one dict look-up.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _parse(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in spec.split(","):
        name, _, nth = part.strip().partition("=")
        if name:
            out[name] = int(nth or "1")
    return out


_ARMED = _parse(os.environ.get("PARKFLOW_FAILPOINTS", ""))


def hit(name: str) -> None:
    nth = _ARMED.get(name)
    if nth is None:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= nth:
        os.kill(os.getpid(), signal.SIGKILL)
