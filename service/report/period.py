"""A reporting period as an operator writes it: a month (``2026-10``) or a year (``2026``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from parkflow.errors import InputError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: date  # first day
    end: date  # the day after the last

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def parse_period(text: str) -> Period:
    m = _MONTH.match(text.strip())
    if m:
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise InputError(f"{text!r}: a month is 01-12")
        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return Period(f"{year:04d}-{month:02d}", date(year, month, 1), end)
    y = _YEAR.match(text.strip())
    if y:
        year = int(y[1])
        return Period(f"{year:04d}", date(year, 1, 1), date(year + 1, 1, 1))
    raise InputError(f"{text!r}: give a month (2026-10) or a year (2026)")
