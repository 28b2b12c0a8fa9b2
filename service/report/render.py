"""The report written out: tidy CSV (one figure a row, labels in both languages) and one
printable, self-contained HTML page in the chosen language (inline CSS and SVG, nothing
fetched), which Chromium prints to PDF (``pdf.py``). Pure: text in, text out."""

from __future__ import annotations

import csv
import io
from html import escape

from service.report.assemble import NOT_MEASURABLE, Report, Row, Value
from service.report.charts import daily_bars, projection_bars
from service.report.criteria import CriteriaFile, Framework
from service.report.texts import label, ui, unit_label

CSV_COLUMNS = (
    "section", "item", "exchange", "party", "value", "unit", "source", "label_en", "label_vi",
)  # fmt: skip


def to_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in report.rows:
        w.writerow((r.section, r.item, r.exchange, r.party, r.value, r.unit, r.source, *r.labels))
    return out.getvalue()


def number(value: Value, unit: str, lang: str) -> str:
    """A figure as people read it in ``lang``: 1,234,567 VND / 1.234.567 VND; shares as %."""
    if isinstance(value, str):
        return value
    if unit == "share":
        text = f"{value * 100:,.1f} %"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
    if lang == "vi":  # Vietnamese groups with dots and marks decimals with a comma
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text if unit == "share" else f"{text} {unit_label(unit, lang)}".strip()


_CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; font-size: 10.5pt;
  color: #1d1d1d; margin: 0 auto; max-width: 190mm; }
h1 { font-size: 17pt; margin: 0 0 2mm; color: #1f4f38; }
h2 { font-size: 12.5pt; margin: 7mm 0 2mm; color: #1f4f38; border-bottom: 1px solid #9bb8a6;
  break-after: avoid; }
h3 { font-size: 11pt; margin: 4mm 0 1mm; }
p.meta { margin: 0; color: #444; }
p.note { font-size: 9pt; color: #444; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; break-inside: auto; }
th, td { border: 1px solid #c8d3cc; padding: 1.2mm 1.6mm; vertical-align: top; text-align: left; }
th { background: #eef3f0; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
tr { break-inside: avoid; }
.status-verified { color: #1f6f3f; }
.status-partly_verified { color: #8a6d00; }
.status-unverified { color: #9b2c2c; }
.muted { color: #777; }
svg { max-width: 100%; height: auto; }
ol.sources { font-size: 8.5pt; color: #333; padding-left: 5mm; }
"""


def to_html(report: Report, criteria: CriteriaFile, lang: str) -> str:
    def cell(value: Value, unit: str, whose: str = "") -> str:
        if value == NOT_MEASURABLE:
            return f'<td class="muted">{escape(ui("not_measurable", lang))}</td>'
        text = number(value, unit, lang) + (f" ({whose})" if whose else "")
        return f'<td class="num">{escape(text)}</td>'

    def lab(r: Row) -> str:
        return r.labels[1] if lang == "vi" else r.labels[0]

    def section(name: str) -> list[Row]:
        return [r for r in report.rows if r.section == name]

    h: list[str] = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{escape(ui('title', lang))}: {escape(report.park_name)}"
        f" {escape(report.period.label)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(ui('title', lang))}</h1>",
    ]
    meta = {r.item: r for r in section("meta")}
    h.append(
        f'<p class="meta"><b>{escape(lab(meta["park"]))}:</b> {escape(report.park_name)}'
        f" ({escape(report.park)}) &nbsp; <b>{escape(lab(meta['period']))}:</b>"
        f" {escape(report.period.label)} ({escape(str(meta['first_day'].value))} –"
        f" {escape(str(meta['last_day'].value))}) &nbsp; <b>{escape(lab(meta['tenants']))}:</b>"
        f" {meta['tenants'].value}</p>"
    )
    h.append(f'<p class="note">{escape(ui("method", lang))} {escape(ui("once", lang))}</p>')

    park = section("park")
    h.append(f"<h2>{escape(label('park', '', lang))}</h2><table>")
    h += [f"<tr><th>{escape(lab(r))}</th>{cell(r.value, r.unit)}</tr>" for r in park]
    h.append("</table>")
    h.append(daily_bars(report.daily_park_vnd, ui("chart_daily", lang)))
    if not report.daily_park_vnd:
        h.append(f'<p class="muted">{escape(ui("no_days", lang))}</p>')

    h.append(f"<h2>{escape(label('stages', '', lang))}</h2><table><tr>")
    stages = section("stages")
    h += [f"<th>{escape(lab(r))}</th>" for r in stages]
    h.append("</tr><tr>" + "".join(cell(r.value, "") for r in stages) + "</tr></table>")

    ex_rows = section("exchanges")
    ids = sorted({r.exchange for r in ex_rows})
    if ids:
        items = list(dict.fromkeys(r.item for r in ex_rows))
        h.append(f"<h2>{escape(label('exchanges', '', lang))}</h2><table><tr>")
        h.append(f"<th>{escape(ui('item', lang))}</th>")
        h += [f"<th>{escape(x)}</th>" for x in ids]
        h.append("</tr>")
        for item in items:
            h.append(f"<tr><th>{escape(label('exchanges', item, lang))}</th>")
            for x in ids:
                found = [r for r in ex_rows if r.exchange == x and r.item == item]
                if found:
                    h.append(cell(found[0].value, found[0].unit, found[0].party))
                else:
                    h.append("<td></td>")
            h.append("</tr>")
        h.append("</table>")
        h.append(
            projection_bars(
                report.bars,
                ui("chart_projection", lang),
                ui("realised", lang),
                ui("projected", lang),
            )
        )

    parties = section("parties")
    if parties:
        h.append(f"<h2>{escape(label('parties', '', lang))}</h2><table>")
        h.append(f"<tr><th>{escape(ui('party', lang))}</th><th>{escape(lab(parties[0]))}</th></tr>")
        h += [f"<tr><td>{escape(r.party)}</td>{cell(r.value, r.unit)}</tr>" for r in parties]
        h.append("</table>")

    h.append(f"<h2>{escape(label('criteria', '', lang))}</h2>")
    by_id = {r.item: r for r in section("criteria")}
    for fw in Framework:
        crits = [c for c in criteria.criteria if c.framework is fw]
        if not crits:
            continue
        h.append(f"<h3>{escape(ui(fw.value, lang))}</h3><table><tr>")
        for key in ("reference", "criterion", "status", "value", "source"):
            h.append(f"<th>{escape(ui(key, lang))}</th>")
        h.append("</tr>")
        for c in crits:
            r = by_id[c.id]
            known = (
                f'<br><span class="muted">{escape(ui("known", lang))}:'
                f" {escape(c.known.get(lang))}</span>"
                if c.known
                else ""
            )
            h.append(
                f"<tr><td>{escape(c.reference)}</td><td>{escape(c.text.get(lang))}{known}</td>"
                f'<td class="status-{c.status.value}">{escape(ui(c.status.value, lang))}</td>'
                f"{cell(r.value, r.unit)}<td>{escape(r.source)}</td></tr>"
            )
        h.append("</table>")
    h.append(f'<h2>{escape(ui("sources", lang))}</h2><ol class="sources">')
    for s in criteria.sources:
        url = f" <span>{escape(s.url)}</span>" if s.url else ""
        note = f" {escape(s.note)}" if s.note else ""
        h.append(
            f"<li><b>{escape(s.id)}</b>: {escape(s.citation)}.{url}"
            f" ({escape(ui('accessed', lang))} {s.accessed}).{note}</li>"
        )
    h.append("</ol></body></html>")
    return "\n".join(x for x in h if x)
