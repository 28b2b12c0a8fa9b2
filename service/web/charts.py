"""Charts as inline SVG, drawn on the server from the figures themselves. Pure.

Why not a JavaScript library: the pages must work offline and on a phone, and a few bars and
lines need no runtime; the SVG scales with its ``viewBox``, prints, and is what a test can
read back (each mark carries its value in ``data-value``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

Label = Callable[[float], str]

_W = 640
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 8, 8, 18, 28


def _plain(v: float) -> str:
    return f"{v:,.0f}"


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _empty(title: str, no_data: str) -> str:
    return _svg(
        _W,
        60,
        title,
        [f'<text class="empty" x="{_W // 2}" y="35" text-anchor="middle">{escape(no_data)}</text>'],
    )


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def columns(
    items: Sequence[tuple[str, float]],
    title: str,
    label: Label = _plain,
    no_data: str = "no data",
    height: int = 220,
) -> str:
    """Vertical bars, one per (label, value), from a zero baseline (negative values below it):
    months of savings."""
    values = [v for _, v in items if _finite(v)]
    if not values:
        return _empty(title, no_data)
    top, bottom = max(0.0, *values), min(0.0, *values)
    span = (top - bottom) or 1.0
    plot_h = height - _PAD_T - _PAD_B
    zero_y = _PAD_T + plot_h * top / span
    slot = (_W - _PAD_L - _PAD_R) / len(items)
    bar_w = max(2.0, slot * 0.7)
    body = [
        f'<line class="axis" x1="{_PAD_L}" y1="{zero_y:.1f}" x2="{_W - _PAD_R}" y2="{zero_y:.1f}"/>'
    ]
    for i, (name, v) in enumerate(items):
        x = _PAD_L + i * slot + (slot - bar_w) / 2
        value = v if _finite(v) else 0.0
        h = plot_h * abs(value) / span
        y = zero_y - h if value >= 0 else zero_y
        body.append(
            f'<rect class="bar{" neg" if value < 0 else ""}" x="{x:.1f}" y="{y:.1f}"'
            f' width="{bar_w:.1f}" height="{h:.1f}" data-value="{value!r}">'
            f"<title>{escape(name)}: {escape(label(value))}</title></rect>"
        )
        cx = x + bar_w / 2
        body.append(
            f'<text class="value" x="{cx:.1f}" y="{max(y - 4, 12):.1f}"'
            f' text-anchor="middle">{escape(label(value))}</text>'
        )
        body.append(
            f'<text class="label" x="{cx:.1f}" y="{height - 8}"'
            f' text-anchor="middle">{escape(name)}</text>'
        )
    return _svg(_W, height, title, body)


def bars(
    items: Sequence[tuple[str, float]],
    title: str,
    label: Label = _plain,
    no_data: str = "no data",
) -> str:
    """Horizontal bars, longest first as given: tenants' flows of one resource, readable on a
    phone (the names have a line of their own)."""
    values = [abs(v) for _, v in items if _finite(v)]
    if not values:
        return _empty(title, no_data)
    longest = max(values) or 1.0
    row = 34
    height = _PAD_T + row * len(items)
    width = _W - _PAD_L - _PAD_R
    body = []
    for i, (name, v) in enumerate(items):
        value = v if _finite(v) else 0.0
        y = _PAD_T + i * row
        w = width * 0.8 * abs(value) / longest
        body.append(
            f'<text class="label" x="{_PAD_L}" y="{y - 3}">{escape(name)}</text>'
            f'<rect class="bar" x="{_PAD_L}" y="{y}" width="{w:.1f}" height="12"'
            f' data-value="{value!r}"><title>{escape(name)}: {escape(label(value))}</title></rect>'
            f'<text class="value" x="{_PAD_L + w + 4:.1f}" y="{y + 11}">{escape(label(value))}</text>'
        )
    return _svg(_W, height + 4, title, body)


def line(
    points: Sequence[tuple[str, float | None]],
    title: str,
    label: Label = _plain,
    no_data: str = "no data",
    height: int = 180,
) -> str:
    """A series over time, broken where a point is missing (a day without data is not zero):
    a meter's daily totals."""
    values = [v for _, v in points if v is not None and math.isfinite(v)]
    if not values:
        return _empty(title, no_data)
    top, bottom = max(0.0, *values), min(0.0, *values)
    span = (top - bottom) or 1.0
    plot_h = height - _PAD_T - _PAD_B
    step = (_W - _PAD_L - _PAD_R) / max(1, len(points) - 1)

    def y_of(v: float) -> float:
        return _PAD_T + plot_h * (top - v) / span

    runs: list[list[str]] = [[]]
    dots = []
    for i, (name, v) in enumerate(points):
        if not _finite(v):
            runs.append([])
            continue
        assert v is not None
        x, y = _PAD_L + i * step, y_of(v)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="2" data-value="{v!r}">'
            f"<title>{escape(name)}: {escape(label(v))}</title></circle>"
        )
    body = [
        f'<line class="axis" x1="{_PAD_L}" y1="{y_of(0):.1f}" x2="{_W - _PAD_R}" y2="{y_of(0):.1f}"/>',
        f'<text class="value" x="{_PAD_L}" y="12">{escape(label(top))}</text>',
    ]
    body += [f'<polyline class="series" points="{" ".join(r)}"/>' for r in runs if len(r) > 1]
    body += dots
    body.append(f'<text class="label" x="{_PAD_L}" y="{height - 8}">{escape(points[0][0])}</text>')
    body.append(
        f'<text class="label" x="{_W - _PAD_R}" y="{height - 8}"'
        f' text-anchor="end">{escape(points[-1][0])}</text>'
    )
    return _svg(_W, height, title, body)
