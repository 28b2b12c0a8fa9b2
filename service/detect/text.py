"""Numbers and hour ranges as people read them in an explanation."""

from __future__ import annotations

from collections.abc import Iterable


def fmt_qty(x: float) -> str:
    """182.4 -> '182', 12.34 -> '12.3', 0.456 -> '0.456', 15234 -> '15,234'."""
    a = abs(x)
    if a >= 100:
        return f"{round(x):,}"
    if a >= 10:
        return _trim(f"{x:.1f}")
    if a >= 1:
        return _trim(f"{x:.2f}")
    if a == 0:
        return "0"
    return _trim(f"{x:.3g}")


def fmt_vnd(x: float) -> str:
    """Money the way a park manager reads it: '1.23 bn VND', '45.6 million VND', '12,000 VND'."""
    a = abs(x)
    if a >= 1e9:
        return f"{_trim(f'{x / 1e9:.2f}')} bn VND"
    if a >= 1e6:
        return f"{_trim(f'{x / 1e6:.1f}')} million VND"
    return f"{round(x):,} VND"


def fmt_hours(hours: Iterable[int]) -> str:
    """Local clock hours as ranges: {22, 23, 0, 1} -> '22:00-02:00' (wrapping past midnight)."""
    hs = sorted(set(hours))
    if not hs:
        return ""
    if len(hs) == 24:
        return "around the clock"
    runs: list[list[int]] = []
    for h in hs:
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 23:
        runs[0] = runs.pop() + runs[0]
    return ", ".join(f"{r[0]:02d}:00-{(r[-1] + 1) % 24:02d}:00" for r in runs)


def _trim(s: str) -> str:
    return s.rstrip("0").rstrip(".") if "." in s else s
