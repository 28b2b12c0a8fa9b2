"""The SVG charts, read back as XML: marks proportional to the figures, gaps left as gaps,
every text escaped. Pure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from service.web import charts

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _marks(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(NS + tag))


def test_columns_are_proportional_and_negative_ones_hang_below_the_axis() -> None:
    root = _parse(charts.columns([("2026-09", 100.0), ("2026-10", 50.0), ("2026-11", -25.0)], "x"))
    rects = _marks(root, "rect")
    assert [float(r.get("data-value", "")) for r in rects] == [100.0, 50.0, -25.0]
    heights = [float(r.get("height", "")) for r in rects]
    assert abs(heights[0] / heights[1] - 2) < 0.01 and abs(heights[0] / heights[2] - 4) < 0.01
    axis = float(next(iter(_marks(root, "line"))).get("y1", ""))
    assert float(rects[0].get("y", "")) + heights[0] == axis  # standing on the axis
    assert float(rects[2].get("y", "")) == axis and "neg" in (rects[2].get("class") or "")


def test_bars_label_each_tenant_and_scale_to_the_largest() -> None:
    root = _parse(
        charts.bars([("Thep An", 300.0), ("WWTP", 150.0)], "heat", lambda v: f"{v:g} kWh")
    )
    widths = [float(r.get("width", "")) for r in _marks(root, "rect")]
    assert abs(widths[0] / widths[1] - 2) < 0.01
    texts = [t.text for t in _marks(root, "text")]
    assert "Thep An" in texts and "150 kWh" in texts


def test_a_line_breaks_where_a_day_has_no_data() -> None:
    points = [("d1", 1.0), ("d2", 2.0), ("d3", None), ("d4", 3.0), ("d5", 4.0)]
    root = _parse(charts.line(points, "meter"))
    lines = _marks(root, "polyline")
    assert len(lines) == 2  # d1-d2 and d4-d5, not joined across the gap
    assert [len(p.get("points", "").split()) for p in lines] == [2, 2]
    assert [float(c.get("data-value", "")) for c in _marks(root, "circle")] == [1.0, 2.0, 3.0, 4.0]
    # a higher value is drawn higher (smaller y)
    ys = [float(c.get("cy", "")) for c in _marks(root, "circle")]
    assert ys == sorted(ys, reverse=True)


def test_no_data_is_said_not_drawn_as_zero() -> None:
    for svg in (
        charts.columns([], "t", no_data="không có dữ liệu"),
        charts.line([("d1", None)], "t", no_data="không có dữ liệu"),
        charts.bars([], "t", no_data="không có dữ liệu"),
    ):
        root = _parse(svg)
        assert not _marks(root, "rect") and not _marks(root, "polyline")
        assert "không có dữ liệu" in svg


def test_every_text_is_escaped() -> None:
    evil = '<script>alert(1)</script>"&'
    for svg in (
        charts.columns([(evil, 1.0)], evil),
        charts.bars([(evil, 1.0)], evil),
        charts.line([(evil, 1.0), (evil, 2.0)], evil),
    ):
        assert "<script>" not in svg
        root = _parse(svg)  # still well-formed
        assert root.get("aria-label") == evil
