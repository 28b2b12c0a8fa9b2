"""Charts drawn here, as inline SVG text: the printed report needs no script, no CDN and no
network, and Chromium prints SVG as vectors. Pure string building."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from service.report.assemble import Bar

_W, _H = 680, 220
_PAD_L, _PAD_B, _PAD_T = 90, 30, 12
_BAR = "#2f6f4f"
_GHOST = "#c9d9cf"


def _number(x: float) -> str:
    if abs(x) >= 1e9:
        return f"{x / 1e9:.2f} bn"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f} m"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}" if x == int(x) else f"{x:.2f}"


def daily_bars(points: Sequence[tuple[date, int]], title: str) -> str:
    """The park's dong per day as columns; a day below zero (a loss) hangs below the axis."""
    if not points:
        return ""
    values = [v for _, v in points]
    top, bottom = max(0, *values), min(0, *values)
    span = (top - bottom) or 1
    plot_h = _H - _PAD_B - _PAD_T
    plot_w = _W - _PAD_L - 10
    zero_y = _PAD_T + plot_h * top / span
    step = plot_w / len(points)
    parts = [_open(title)]
    for i, (day, v) in enumerate(points):
        h = plot_h * abs(v) / span
        y = zero_y - h if v >= 0 else zero_y
        x = _PAD_L + i * step
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}"'
            f' height="{h:.1f}" fill="{_BAR}"><title>{day} {v:,}</title></rect>'
        )
    for value, y in ((top, _PAD_T), (bottom, _PAD_T + plot_h)):
        parts.append(_tick(_number(value), y))
    parts.append(
        f'<line x1="{_PAD_L}" y1="{zero_y:.1f}" x2="{_W - 10}" y2="{zero_y:.1f}"'
        ' stroke="#333" stroke-width="1"/>'
    )
    first, last = points[0][0], points[-1][0]
    parts.append(_text(_PAD_L, _H - 8, first.isoformat(), "start"))
    parts.append(_text(_W - 10, _H - 8, last.isoformat(), "end"))
    parts.append("</svg>")
    return "".join(parts)


def projection_bars(bars: Sequence[Bar], title: str, realised: str, projected: str) -> str:
    """Per exchange, the realised quantity over its projected one (a ghost bar behind)."""
    shown = [b for b in bars if b.projected]
    if not shown:
        return ""
    row_h = 26
    height = _PAD_T + row_h * len(shown) + 34
    plot_w = _W - _PAD_L - 70
    parts = [_open(title, height)]
    for i, b in enumerate(shown):
        assert b.projected is not None
        scale = max(b.projected, b.realised) or 1.0
        y = _PAD_T + i * row_h
        pw = plot_w * b.projected / scale
        rw = plot_w * max(b.realised, 0.0) / scale
        share = b.realised / b.projected
        parts.append(_text(_PAD_L - 6, y + 15, b.exchange, "end"))
        parts.append(
            f'<rect x="{_PAD_L}" y="{y + 3}" width="{pw:.1f}" height="16" fill="{_GHOST}"/>'
            f'<rect x="{_PAD_L}" y="{y + 7}" width="{rw:.1f}" height="8" fill="{_BAR}"/>'
        )
        parts.append(_text(_PAD_L + plot_w + 6, y + 15, f"{share:.0%}", "start"))
    legend_y = height - 12
    parts.append(
        f'<rect x="{_PAD_L}" y="{legend_y - 8}" width="10" height="8" fill="{_BAR}"/>'
        + _text(_PAD_L + 14, legend_y, escape(realised), "start")
        + f'<rect x="{_PAD_L + 110}" y="{legend_y - 10}" width="10" height="12" fill="{_GHOST}"/>'
        + _text(_PAD_L + 124, legend_y, escape(projected), "start")
    )
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int = _H) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_W} {height}"'
        f' width="{_W}" height="{height}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
    )


def _tick(label: str, y: float) -> str:
    return _text(_PAD_L - 6, y + 4, label, "end")


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'
