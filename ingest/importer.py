"""``parkflow import``: backfill one meter's history from a CSV export, with the same checks.

Each row goes through the same validation as a reading that came over MQTT (units, range,
time limits); rows that fail are quarantined with the row's own text and the line it starts
on, so the operator can find it in the file. Writes are batched and idempotent, so an
interrupted import can simply be run again.

Reading the file is ``ingest.csv_rows``; here are the checks, the time zones and the summary.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from ingest.csv_rows import CsvFileError, CsvMapping, Row, read_chunks
from ingest.parse.json_payload import BAD_SHAPE, BAD_TS, BAD_VALUE, NOT_FINITE, RawReading
from ingest.validate import Limits, Validator, quarantined_message
from parkflow.errors import PayloadError
from parkflow.model import QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.registry import Registry
from parkflow.store.ports import ReadingSink
from parkflow.topics import topic_for


@dataclass
class ImportSummary:
    rows: int = 0  # records in the file after the header; blank lines are not rows
    stored: int = 0  # distinct timestamps stored: what the meter's history really gained
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    first_ms: int | None = None
    last_ms: int | None = None
    # (line, line of the earlier stored row with the same instant), in file order: the store
    # keeps one reading per instant, the later row's, so these rows did not add to ``stored``.
    repeated: list[tuple[int, int]] = field(default_factory=list)


def import_csv(
    path: str | Path,
    store: ReadingSink,
    registry: Registry,
    park: str,
    tenant: str,
    meter: str,
    mapping: CsvMapping | None = None,
    limits: Limits | None = None,
    chunk_rows: int = 20_000,
    progress: Callable[[int], object] | None = None,
) -> ImportSummary:
    mapping = mapping or CsvMapping()
    try:  # here, not at the first local time of some chunk, and as bad input, not a KeyError
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CsvFileError(
            f"unknown time zone {mapping.timezone!r}, e.g. Asia/Ho_Chi_Minh"
        ) from None
    validator = Validator(registry, limits or Limits())
    topic = topic_for(park, tenant, meter)
    rm = validator.resolve(topic)  # raises PayloadError for an unknown meter
    source = f"import:{Path(path).name}"
    summary = ImportSummary()
    stored_ts: list[npt.NDArray[np.int64]] = []
    stored_lines: list[npt.NDArray[np.int64]] = []
    for chunk in read_chunks(path, mapping, chunk_rows):
        received_ms = int(time.time() * 1000)
        ts_ms, ts_ok = _timestamps([row.ts for row in chunk], mapping)
        texts = pd.Series([row.value for row in chunk], dtype=object)
        values = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float)
        readings: list[Reading] = []
        lines: list[int] = []
        rejections: list[Rejection] = []
        messages: dict[str, QuarantinedMessage] = {}  # rows with the same text share one
        for i, row in enumerate(chunk):
            try:
                if row.problem is not None:
                    raise PayloadError(BAD_SHAPE, row.problem)
                if not ts_ok[i]:
                    raise PayloadError(BAD_TS, "unreadable timestamp")
                v = values[i]
                if math.isnan(v) and not _is_nan_text(row.value):
                    raise PayloadError(BAD_VALUE, "value is not a number")
                if not math.isfinite(v):
                    raise PayloadError(NOT_FINITE, "value is not finite")
                item = RawReading(None, ts_ms[i], float(v), mapping.unit, None)
                readings.append(validator.check(item, rm, received_ms))
                lines.append(row.line)
            except PayloadError as exc:
                detail = f"line {row.line}: {exc.detail}"
                summary.rejected[exc.reason] += 1
                summary.examples.setdefault(exc.reason, detail)
                rejection, message = _rejection(
                    exc.reason, detail, source, row, received_ms, park, tenant, meter
                )
                rejections.append(rejection)
                messages.setdefault(message.message_id, message)
        store.write(WriteBatch(tuple(readings), tuple(rejections), tuple(messages.values())))
        summary.rows += len(chunk)
        if readings:
            stored_ts.append(np.array([r.ts_ms for r in readings], dtype=np.int64))
            stored_lines.append(np.array(lines, dtype=np.int64))
            lo = min(r.ts_ms for r in readings)
            hi = max(r.ts_ms for r in readings)
            summary.first_ms = lo if summary.first_ms is None else min(summary.first_ms, lo)
            summary.last_ms = hi if summary.last_ms is None else max(summary.last_ms, hi)
        if progress:
            progress(len(chunk))
    if stored_ts:
        summary.stored, summary.repeated = _repeats(
            np.concatenate(stored_ts), np.concatenate(stored_lines)
        )
    return summary


def _rejection(
    reason: str,
    detail: str,
    source: str,
    row: Row,
    received_ms: int,
    park: str,
    tenant: str,
    meter: str,
) -> tuple[Rejection, QuarantinedMessage]:
    """The row quarantined as a message of its own, the file's name as topic and its line as
    index: the identity comes from those and the row's text, so importing the same file again
    finds the records already there instead of adding copies."""
    message = quarantined_message(source, row.raw.encode(), received_ms, park, tenant, meter)
    rejection = Rejection(
        reason, detail, source, received_ms, message.message_id, row.line, park, tenant, meter
    )
    return rejection, message


def _repeats(
    ts_ms: npt.NDArray[np.int64], lines: npt.NDArray[np.int64]
) -> tuple[int, list[tuple[int, int]]]:
    """Distinct instants, and each stored row that repeated an earlier row's instant with the
    line of the first one. Arrays (16 bytes a row) rather than a dict, as files can be long."""
    order = np.argsort(ts_ms, kind="stable")  # rows come in file order: ties stay in it
    ts, ln = ts_ms[order], lines[order]
    first = np.ones(len(ts), dtype=bool)
    first[1:] = ts[1:] != ts[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(ts)), 0))
    repeated = sorted(zip(ln[~first].tolist(), ln[group_start][~first].tolist(), strict=True))
    return int(first.sum()), repeated


_OFFSET = r".*\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ].*)?"
_YEAR_FIRST = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\D.*)?"
_EPOCH = pd.Timestamp(0, tz="UTC")


def _timestamps(texts: list[str], mapping: CsvMapping) -> tuple[list[int], list[bool]]:
    """Epoch milliseconds, times with an offset, or local times in ``mapping.timezone``.

    Grouped by shape before parsing, because pandas infers one format per call from the first
    value: year-first dates must never meet ``dayfirst`` (it reads 2026-01-02 10:00 as
    1 February), and a time with an offset must not be localised."""
    text = pd.Series(texts, dtype=object).str.strip()
    ms = pd.Series(float("nan"), index=text.index)
    epoch = text.str.fullmatch(r"\d{10,16}")
    if epoch.any():
        ms[epoch] = text[epoch].astype("int64").astype(float)
    # No time spans a line break or holds a control character; dateutil, pandas' fallback
    # when it cannot infer a format, would still find a date in one.
    readable = ~epoch & ~text.str.contains(r"[\x00-\x1f\x7f]", regex=True)
    offset = readable & text.str.fullmatch(_OFFSET)
    naive = readable & ~offset
    zones = ((offset, None), (naive, mapping.timezone))
    groups: list[tuple[pd.Series[bool], str | None, bool, str | None]]
    if mapping.ts_format is not None:
        groups = [(mask, mapping.ts_format, False, zone) for mask, zone in zones]
    else:
        iso = text.str.fullmatch(_ISO)
        year_first = ~iso & text.str.fullmatch(_YEAR_FIRST)
        shapes = (
            (iso, "ISO8601", False),
            (year_first, None, False),
            (~iso & ~year_first, None, mapping.dayfirst),
        )
        groups = [
            (mask & shape, fmt, dayfirst, zone)
            for mask, zone in zones
            for shape, fmt, dayfirst in shapes
        ]
    for mask, fmt, dayfirst, zone in groups:
        if mask.any():
            ms[mask] = _instants(text[mask], fmt, dayfirst, zone)
    ok = ms.notna().tolist()
    return [int(v) if good else 0 for v, good in zip(ms.tolist(), ok, strict=True)], ok


def _instants(text: pd.Series, fmt: str | None, dayfirst: bool, zone: str | None) -> pd.Series:
    """Epoch ms of times with an offset (``zone`` None) or local to ``zone``; NaN if unreadable."""
    try:
        stamps = pd.to_datetime(
            text, format=fmt, dayfirst=dayfirst, utc=zone is None, errors="coerce"
        )
    except (ValueError, TypeError):  # zoned and unzoned times mixed: one at a time, then
        if len(text) == 1:
            return pd.Series([math.nan], index=text.index)
        one_by_one = [
            _instants(text.iloc[i : i + 1], fmt, dayfirst, zone) for i in range(len(text))
        ]
        return pd.Series(pd.concat(one_by_one), index=text.index)
    if stamps.dt.tz is None:
        assert zone is not None
        stamps = stamps.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return (stamps - _EPOCH) / pd.Timedelta(milliseconds=1)


def _is_nan_text(text: str) -> bool:
    return text.strip().lower().lstrip("+-") in {"nan", "inf", "infinity"}
