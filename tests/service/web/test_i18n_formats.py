"""The message catalogue and the number, money and date formats: pure."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from service.web import formats
from service.web.i18n import (
    LANGUAGES,
    MESSAGES,
    choose,
    placeholders,
    resource_name,
    solver_status,
    t,
    term,
)

TEMPLATES = Path(formats.__file__).with_name("templates")


def test_every_key_has_both_languages_with_the_same_placeholders() -> None:
    assert set(LANGUAGES) == {"en", "vi"}
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(texts[lang].strip() for lang in LANGUAGES), key
        assert placeholders(texts["en"]) == placeholders(texts["vi"]), key


def test_every_key_the_templates_use_is_in_the_catalogue() -> None:
    import re

    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\('([a-z0-9_.]+)'""", path.read_text()))
    assert used, "the templates speak through t()"
    families = {k for k in used if k.endswith(".")}  # t('dir.' + x.direction)
    assert used - families - set(MESSAGES) == set()
    assert families == {"dir.", "role.", "status.", "severity.", "lang."}


def test_every_value_a_family_of_keys_is_built_from_has_its_text() -> None:
    from service.alerts.kinds import Severity
    from service.alerts.lifecycle import Status
    from service.exchanges.pipeline import Stage

    values: dict[str, list[str]] = {
        "dir.": ["in", "out"],
        "role.": ["supplier", "receiver"],
        "status.": [s.value for s in Status],
        "severity.": [s.value for s in Severity],
        "stage.": [s.value for s in Stage],
        "lang.": list(LANGUAGES),
    }
    missing = [p + v for p, vs in values.items() for v in vs if p + v not in MESSAGES]
    assert missing == []


def test_parkflows_own_words_have_both_languages() -> None:
    """Every alert kind, legal status and barrier the code knows is translated: a new one
    added without its text fails here, not on a Vietnamese page."""
    from typing import get_args

    from service.alerts.kinds import KINDS
    from service.exchanges.pipeline import Barrier
    from service.knowledge.entries import LegalStatus

    families = {
        "kind": list(KINDS),
        "legal": list(get_args(LegalStatus)),
        "barrier": [b.value for b in Barrier],
    }
    missing = [f"{f}.{v}" for f, vs in families.items() for v in vs if f"{f}.{v}" not in MESSAGES]
    assert missing == []
    assert term("vi", "legal", "conditional") == "được phép có điều kiện"
    assert term("vi", "kind", "meter_stale") == "đồng hồ mất tín hiệu"
    assert term("en", "kind", "meter_stale") == "meter stale"
    assert term("vi", "kind", "brand_new_kind") == "brand_new_kind"  # as recorded
    assert solver_status("vi", "optimal") == "tối ưu"
    assert solver_status("vi", "stopped: time limit") == "dừng: time limit"
    assert solver_status("en", "something else") == "something else"


def test_resources_by_name_vietnamese_when_known_else_the_knowledge_label() -> None:
    from service.knowledge import load_knowledge

    k = load_knowledge()
    assert resource_name("en", "water.potable", k.label("water.potable")) == "potable water"
    assert resource_name("vi", "water.potable", k.label("water.potable")) == "nước sạch"
    assert resource_name("vi", "energy.mystery", k.label("energy.mystery")) == "mystery"
    # every label the shipped knowledge has, has its Vietnamese name
    from service.web.i18n import RESOURCES_VI

    assert set(k.labels) - set(RESOURCES_VI) == set()


def test_vietnamese_is_not_english_where_it_matters() -> None:
    same = [k for k, v in MESSAGES.items() if v["en"] == v["vi"] and not k.startswith("lang.")]
    assert same == ["app", "col.co2_t"]  # a name and a unit
    assert t("vi", "signed_in_as", name="ops") == "Đang đăng nhập: ops"  # "signed in as"
    with pytest.raises(KeyError):
        t("en", "no.such.key")


def test_the_language_comes_from_the_query_then_the_cookie_then_the_browser() -> None:
    assert choose("vi", "en", "en-US") == "vi"
    assert choose(None, "vi", "en") == "vi"
    assert choose("xx", None, "vi-VN,vi;q=0.9,en;q=0.8") == "vi"
    assert choose(None, None, "fr-FR, en;q=0.5") == "en"
    assert choose(None, None, None) == "en"


@pytest.mark.parametrize(
    ("value", "digits", "en", "vi"),
    [
        (1234567.8, 1, "1,234,567.8", "1.234.567,8"),
        (1234567, 0, "1,234,567", "1.234.567"),
        (-0.5, 2, "-0.50", "-0,50"),
        (999.999, 2, "1,000.00", "1.000,00"),
        (None, 0, "–", "–"),
        (float("nan"), 1, "–", "–"),
    ],
)
def test_numbers(value: float | None, digits: int, en: str, vi: str) -> None:
    assert formats.number(value, "en", digits) == en
    assert formats.number(value, "vi", digits) == vi


def test_figures_keep_three_significant_digits_when_small() -> None:
    assert formats.figure(12345.6, "vi") == "12.346"
    assert formats.figure(12.34, "vi") == "12,3"
    assert formats.figure(1.234, "en") == "1.23"
    assert formats.figure(0.01234, "en") == "0.012"
    assert formats.figure(0, "en") == "0"


def test_money_in_compact_dong() -> None:
    assert formats.money(13_074_057_386, "en") == "13.07 bn VND"
    assert formats.money(13_074_057_386, "vi") == "13,07 tỷ đồng"
    assert formats.money(937_000_000, "en") == "937 million VND"
    assert formats.money(937_000_000, "vi") == "937 triệu đồng"
    assert formats.money(-45_000, "vi") == "-45.000 đồng"


def test_dates_day_first_in_vietnamese() -> None:
    assert formats.day(date(2026, 11, 20), "vi") == "20/11/2026"
    assert formats.day(date(2026, 11, 20), "en") == "2026-11-20"
    # 2026-11-19T17:30Z at the park's +07:00 is the 20th, 00:30
    ms = 1_795_109_400_000
    assert formats.moment(ms, "vi", 7 * 3_600_000) == "20/11/2026 00:30"
    vn = formats.zone("Asia/Ho_Chi_Minh", 7 * 3_600_000, "vi")
    assert formats.moment(ms, "vi", 7 * 3_600_000, vn) == "20/11/2026 00:30 giờ Việt Nam"
    assert formats.zone("Asia/Ho_Chi_Minh", 7 * 3_600_000, "en") == "ICT"
    assert formats.zone("Asia/Kolkata", 19_800_000, "en") == "UTC+5:30"
    assert formats.zone(None, -3 * 3_600_000, "en") == "UTC-3"
    assert formats.percent(0.876, "vi") == "88 %"
    assert formats.percent(0.876, "en") == "88%"


def test_months_day_first_in_vietnamese() -> None:
    assert formats.month("2026-11", "vi") == "11/2026"
    assert formats.month("2026-11", "en") == "2026-11"
