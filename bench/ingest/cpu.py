"""CPU metering: what each process and the whole machine used during a phase (from /proc)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class CpuMeter:
    """CPU seconds (user + system) that processes used between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    @staticmethod
    def read(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def machine() -> float:
        """CPU seconds the whole machine has been busy (all processes, all cores)."""
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return 0.0
        # user nice system idle iowait irq softirq steal ...
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))
        return busy / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.before = {name: self.read(pid) for name, pid in self.pids.items()}
        self.before["bench"] = time.process_time()
        self.before["machine"] = self.machine()

    def stop(self) -> dict[str, float]:
        """Per process; ``others`` is what the rest of the machine used meanwhile (the
        publishers and subscriber report their own CPU and are added by the caller)."""
        out = {name: self.read(pid) - self.before[name] for name, pid in self.pids.items()}
        out["bench"] = time.process_time() - self.before["bench"]
        out["machine"] = self.machine() - self.before["machine"]
        return out


def cpu_report(used: dict[str, float], wall: float, n: int, consumer: str) -> dict[str, Any]:
    """CPU seconds per process, the share of the machine they add up to, and the consumer's
    CPU microseconds per reading."""
    cores = os.cpu_count() or 1
    used = dict(used)
    machine = used.pop("machine", 0.0)
    ours = sum(used.values())
    # Whatever else ran on the machine meanwhile (other benchmarks, test suites, ...): when
    # this is large the figures of the phase are not this code's alone.
    used["others"] = max(0.0, machine - ours)
    return {
        "cpu_s": {k: round(v, 2) for k, v in used.items()},
        "cpu_busy_fraction": round(machine / (wall * cores), 3) if wall > 0 else None,
        "cpu_us_per_reading": (
            round(1e6 * sum(v for k, v in used.items() if k.startswith(consumer)) / n, 1)
            if n
            else None
        ),
    }


def wait_quiet(limit_s: float, busy_below: float = 0.15) -> float:
    """Wait (at most ``limit_s``) for a second in which the machine is nearly idle, so that a
    phase does not start in the middle of someone else's test run. Returns the seconds waited."""
    started = time.monotonic()
    cores = os.cpu_count() or 1
    while time.monotonic() - started < limit_s:
        before = CpuMeter.machine()
        time.sleep(1.0)
        if (CpuMeter.machine() - before) / cores < busy_below:
            break
    return round(time.monotonic() - started, 1)
