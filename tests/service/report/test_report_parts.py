"""The report's pure parts: periods, the criteria data, stages over time, both languages."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from parkflow.errors import InputError
from service.exchanges.pipeline import Move, Stage
from service.report.assemble import stage_at, stages_held
from service.report.criteria import METRICS, CriteriaError, Status, load_criteria
from service.report.period import parse_period
from service.report.render import number
from service.report.texts import LABELS, UI


def test_periods_are_a_month_or_a_year() -> None:
    oct_ = parse_period("2026-10")
    assert (oct_.start, oct_.end, oct_.days) == (date(2026, 10, 1), date(2026, 11, 1), 31)
    dec = parse_period("2026-12")
    assert dec.end == date(2027, 1, 1)
    year = parse_period("2028")
    assert (year.start, year.end, year.days) == (date(2028, 1, 1), date(2029, 1, 1), 366)
    for bad in ("2026-13", "26-10", "October", "2026-1"):
        with pytest.raises(InputError):
            parse_period(bad)


def test_the_criteria_say_how_far_their_text_was_verified() -> None:
    data = load_criteria()
    frameworks = {c.framework.value for c in data.criteria}
    assert frameworks == {"decree_35_2022", "circular_05_2025", "ief_v2"}
    for c in data.criteria:
        assert c.text.en.strip() and c.text.vi.strip() and c.text.en != c.text.vi
        if c.status is not Status.VERIFIED:
            assert c.known and c.known.en.strip() and c.known.vi.strip(), c.id
        for s in c.sources:
            assert data.source(s).accessed.year >= 2025
        assert c.metric is None or c.metric in METRICS
    # no threshold from the secondary source is stated as the law's without saying so
    for c in data.criteria:
        known = c.known.en if c.known else ""
        if "20%" in known or "10%" in known:
            assert c.status is Status.UNVERIFIED or "not" in known
    measurable = {c.metric for c in data.criteria} - {None}
    assert measurable == METRICS  # every figure parkflow fills stands against a criterion
    assert any(c.metric is None for c in data.criteria)


def test_a_criteria_file_without_what_is_known_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nsources: [{id: s, citation: c, accessed: 2026-12-04}]\n"
        "criteria: [{id: x, framework: ief_v2, reference: r, status: unverified,"
        " text: {en: a, vi: b}, sources: [s]}]\n"
    )
    with pytest.raises(CriteriaError) as err:
        load_criteria(path)
    assert "what is known" in "\n".join(err.value.problems)


def test_every_label_exists_in_both_languages() -> None:
    for key, (en, vi) in {**LABELS, **{(k, ""): v for k, v in UI.items()}}.items():
        assert en.strip() and vi.strip(), key
    for stage in Stage:
        assert ("stages", stage.value) in LABELS


def test_stages_over_time() -> None:
    moves = [
        Move(100, "ops", None, Stage.IDENTIFIED),
        Move(200, "ops", Stage.IDENTIFIED, Stage.SCREENED),
        Move(300, "ops", Stage.SCREENED, Stage.UNDER_STUDY),
    ]
    assert stage_at(moves, 100) is None  # created at 100: not yet just before it
    assert stage_at(moves, 250) is Stage.SCREENED
    assert stage_at(moves, 10_000) is Stage.UNDER_STUDY
    assert stages_held(moves, 150, 250) == {Stage.IDENTIFIED, Stage.SCREENED}
    assert stages_held(moves, 400, 500) == {Stage.UNDER_STUDY}
    assert stages_held(moves, 0, 50) == set()


def test_numbers_read_as_each_language_writes_them() -> None:
    assert number(1_234_567, "VND", "en") == "1,234,567 VND"
    assert number(1_234_567, "VND", "vi") == "1.234.567 VND"
    assert number(12.5, "m3", "vi") == "12,5 m3"
    assert number(0.8, "share", "en") == "80.0 %"
