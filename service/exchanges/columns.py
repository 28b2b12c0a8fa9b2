"""Verified days as columns: one array per ``DaySavings`` field, an element per (exchange, day).

A year of a thousand exchanges is 365,000 days. As row objects, building the fresh ones,
reading the stored ones and comparing them pair by pair was most of a recomputation; as
columns the valuation fills them at once, the stored ones are read at once, and the days that
differ are found by comparing arrays. Only those become ``DaySavings``, to be written.

A column holds what the row's field holds: ids as str objects, ``day`` as datetime64[D],
counts and dong as int64 (the database's BIGINT), the rest float64, and beside each field a
row may leave unset (``factor_year``, ``check_quantity``, ``loss``) a bool column saying
where it is set. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import DTypeLike

from service.exchanges.savings import DaySavings

_OPTIONAL = ("factor_year", "check_quantity", "loss")


@dataclass(frozen=True, slots=True)
class SavingsColumns:
    exchange: np.ndarray  # object: str
    park: np.ndarray  # object: str
    day: np.ndarray  # datetime64[D]
    hours_measured: np.ndarray  # int64
    coverage: np.ndarray  # float64
    quantity: np.ndarray  # float64
    supplier_vnd: np.ndarray  # int64
    receiver_vnd: np.ndarray  # int64
    park_vnd: np.ndarray  # int64
    water_m3: np.ndarray  # float64
    co2e_t: np.ndarray  # float64
    landfill_t: np.ndarray  # float64
    factor_year: np.ndarray  # int64, 0 where unset
    check_quantity: np.ndarray  # float64, 0.0 where unset
    loss: np.ndarray  # float64, 0.0 where unset
    disagrees: np.ndarray  # bool
    unpriced_hours: np.ndarray  # int64
    factor_year_set: np.ndarray  # bool
    check_quantity_set: np.ndarray  # bool
    loss_set: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.day)

    def take(self, which: np.ndarray) -> SavingsColumns:
        """The rows at the positions ``which``, still as columns."""
        return SavingsColumns(**{name: getattr(self, name)[which] for name in _ROW_FIELDS})

    def rows(self, which: np.ndarray | None = None) -> list[DaySavings]:
        """The rows (those at the positions ``which``, in that order), as the dataclass."""
        picked = [
            (c if which is None else c[which])
            for c in (getattr(self, name) for name in _ROW_FIELDS)
        ]
        values = [c.astype(object).tolist() if c.dtype.kind == "M" else c.tolist() for c in picked]
        at = {name: i for i, name in enumerate(_ROW_FIELDS)}
        for name in _OPTIONAL:
            given = values[at[f"{name}_set"]]
            values[at[name]] = [
                v if s else None for v, s in zip(values[at[name]], given, strict=True)
            ]
        n = len(DAY_FIELDS)
        return [DaySavings(*row[:n]) for row in zip(*values, strict=True)]


DAY_FIELDS = tuple(f.name for f in fields(DaySavings))
_ROW_FIELDS = (*DAY_FIELDS, *(f"{name}_set" for name in _OPTIONAL))
_INT = (
    "hours_measured",
    "supplier_vnd",
    "receiver_vnd",
    "park_vnd",
    "factor_year",
    "unpriced_hours",
)
_BOOL = ("disagrees", *(f"{name}_set" for name in _OPTIONAL))


def _dtype(name: str) -> DTypeLike:
    if name in ("exchange", "park"):
        return object
    if name == "day":
        return "datetime64[D]"
    if name in _INT:
        return np.int64
    if name in _BOOL:
        return bool
    return np.float64


def from_lists(columns: dict[str, Sequence[object]]) -> SavingsColumns:
    """Columns from one sequence per ``DaySavings`` field (as a driver returns them: a day as
    a date or as ISO text, a flag as a bool or 0/1; None where an optional field is unset)."""
    out: dict[str, np.ndarray] = {}
    for name in DAY_FIELDS:
        values = columns[name]
        if name in _OPTIONAL:
            given = np.array([v is not None for v in values], dtype=bool)
            out[f"{name}_set"] = given
            values = [0 if v is None else v for v in values]
        out[name] = np.array(values, dtype=_dtype(name))
    return SavingsColumns(**out)


def from_rows(rows: Sequence[DaySavings]) -> SavingsColumns:
    return from_lists({name: [getattr(r, name) for r in rows] for name in DAY_FIELDS})


def concat(parts: Sequence[SavingsColumns]) -> SavingsColumns:
    if not parts:
        return from_lists({name: [] for name in DAY_FIELDS})
    if len(parts) == 1:
        return parts[0]
    return SavingsColumns(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _ROW_FIELDS}
    )


def differing(fresh: SavingsColumns, stored: SavingsColumns) -> np.ndarray:
    """Which of ``fresh``'s rows differ from the stored row of the same (exchange, day), or
    have none: the rows' ``!=``, field by field (an unset field equals only an unset one)."""
    out = np.ones(len(fresh), dtype=bool)
    if not len(fresh) or not len(stored):
        return out
    ids = {x: i for i, x in enumerate(dict.fromkeys(fresh.exchange.tolist()))}
    first = min(fresh.day.min(), stored.day.min())
    span = int((max(fresh.day.max(), stored.day.max()) - first).astype(np.int64)) + 1

    def keys(c: SavingsColumns) -> np.ndarray:
        # an exchange fresh lacks is code -1: its keys are negative, never a fresh one's
        code = np.array([ids.get(x, -1) for x in c.exchange.tolist()], dtype=np.int64)
        offset: np.ndarray = (c.day - first).astype(np.int64)
        out: np.ndarray = code * span + offset
        return out

    stored_keys = keys(stored)
    order = np.argsort(stored_keys, kind="stable")
    sorted_keys = stored_keys[order]
    fresh_keys = keys(fresh)
    at = np.minimum(np.searchsorted(sorted_keys, fresh_keys), len(sorted_keys) - 1)
    found = sorted_keys[at] == fresh_keys
    j = order[at]
    same = found
    for name in DAY_FIELDS:
        a, b = getattr(fresh, name), getattr(stored, name)[j]
        if name in _OPTIONAL:
            sa, sb = getattr(fresh, f"{name}_set"), getattr(stored, f"{name}_set")[j]
            same = same & (sa == sb) & (~sa | (a == b))
        else:
            same = same & (a == b)
    out[:] = ~same
    return out
