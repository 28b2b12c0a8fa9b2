"""Numbers, money and dates as each language writes them. Pure.

Vietnamese groups thousands with a dot and writes the decimal comma (1.234.567,8) and dates
day first (20/11/2026); a park's staff read figures that way in every report they get, so the
pages do too rather than leave them to guess which separator is which.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from service.web.i18n import Language, t

_SEPARATORS: dict[Language, tuple[str, str]] = {"en": (",", "."), "vi": (".", ",")}


def number(value: float | int | None, lang: Language, digits: int = 0) -> str:
    """``value`` with ``digits`` decimals and the language's separators; a dash for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    group, decimal = _SEPARATORS[lang]
    text = f"{value:,.{digits}f}"  # 1,234,567.8
    return text.replace(",", "\0").replace(".", decimal).replace("\0", group)


def figure(value: float | int | None, lang: Language) -> str:
    """A measured quantity with as many decimals as its size warrants (3 significant for
    small ones): 1,234 / 12.3 / 0.123."""
    if value is None:
        return number(None, lang)
    size = abs(value)
    digits = 0 if size >= 100 or size == 0 else 1 if size >= 10 else 2 if size >= 1 else 3
    return number(value, lang, digits)


def money(vnd: float | int | None, lang: Language) -> str:
    """Dong, compact: 13.07 bn VND / 13,07 tỷ đồng; 937 million VND / 937 triệu đồng."""
    if vnd is None:
        return number(None, lang)
    size = abs(vnd)
    if lang == "vi":
        if size >= 1e9:
            return f"{number(vnd / 1e9, lang, 2)} tỷ đồng"
        if size >= 1e6:
            return f"{number(vnd / 1e6, lang, 0)} triệu đồng"
        return f"{number(vnd, lang)} đồng"
    if size >= 1e9:
        return f"{number(vnd / 1e9, lang, 2)} bn VND"
    if size >= 1e6:
        return f"{number(vnd / 1e6, lang, 0)} million VND"
    return f"{number(vnd, lang)} VND"


def day(d: date | None, lang: Language) -> str:
    if d is None:
        return "–"
    return f"{d:%d/%m/%Y}" if lang == "vi" else f"{d:%Y-%m-%d}"


def month(period: str, lang: Language) -> str:
    """A calendar month as stored (YYYY-MM): 11/2026 in Vietnamese."""
    year, _, mm = period.partition("-")
    return f"{mm}/{year}" if lang == "vi" and mm else period


_VIETNAM = frozenset({"Asia/Ho_Chi_Minh", "Asia/Saigon"})


def zone(timezone: str | None, offset_ms: int, lang: Language) -> str:
    """The name of the park's local time, written after each time so that a reader abroad,
    or a log in UTC beside the page, is not an hour or seven off: ICT / giờ Việt Nam, else
    the offset (UTC+7)."""
    if timezone in _VIETNAM:
        return t(lang, "zone.ict")
    sign = "-" if offset_ms < 0 else "+"
    h, m = divmod(abs(offset_ms) // 60_000, 60)
    return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


def moment(ms: int | None, lang: Language, offset_ms: int = 0, zone_name: str = "") -> str:
    """An instant (epoch ms) at the park's offset, to the minute, then the zone's name."""
    if ms is None:
        return "–"
    at = datetime.fromtimestamp(ms / 1000, UTC) + timedelta(milliseconds=offset_ms)
    text = f"{day(at.date(), lang)} {at:%H:%M}"
    return f"{text} {zone_name}" if zone_name else text


def percent(share: float | None, lang: Language) -> str:
    if share is None:
        return "–"
    return f"{number(share * 100, lang)} %" if lang == "vi" else f"{number(share * 100, lang)}%"
