"""``parkflow import``: backfill one meter's history from a CSV export, with the same checks.

Each row goes through the same validation as a reading that came over MQTT (units, range,
time limits); rows that fail are quarantined with the row's text and the reason. Writes are
batched and idempotent, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ingest.errors import PayloadError
from ingest.model import Rejection, WriteBatch
from ingest.parse.json_payload import BAD_TS, BAD_VALUE, NOT_FINITE, RawReading
from ingest.registry import Registry
from ingest.store.base import Store
from ingest.validate import Limits, Validator, topic_for


@dataclass(frozen=True, slots=True)
class CsvMapping:
    ts_column: str = "ts"
    value_column: str = "value"
    unit: str | None = None  # unit of the values; default: the meter's registered unit
    timezone: str = "Asia/Ho_Chi_Minh"  # for timestamps without an offset
    ts_format: str | None = None  # strptime format; default: inferred
    delimiter: str = ","
    decimal: str = "."


@dataclass
class ImportSummary:
    rows: int = 0
    stored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    first_ms: int | None = None
    last_ms: int | None = None


def import_csv(
    path: str | Path,
    store: Store,
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
    validator = Validator(registry, limits or Limits())
    topic = topic_for(park, tenant, meter)
    rm = validator.resolve(topic)  # raises PayloadError for an unknown meter
    source = f"import:{Path(path).name}"
    summary = ImportSummary()
    for chunk, lines in _chunks(path, mapping, chunk_rows):
        received_ms = int(time.time() * 1000)
        ts_ms, ts_ok = _timestamps(chunk[mapping.ts_column], mapping)
        values = pd.to_numeric(chunk[mapping.value_column], errors="coerce").to_numpy(dtype=float)
        readings = []
        rejections = []
        for i in range(len(chunk)):
            row_no = summary.rows + i + 2  # 1-based, after the header line
            try:
                if not ts_ok[i]:
                    raise PayloadError(BAD_TS, "unreadable timestamp")
                v = values[i]
                if math.isnan(v) and not _is_nan_text(chunk[mapping.value_column].iloc[i]):
                    raise PayloadError(BAD_VALUE, "value is not a number")
                if not math.isfinite(v):
                    raise PayloadError(NOT_FINITE, "value is not finite")
                item = RawReading(None, int(ts_ms[i]), float(v), mapping.unit, None)
                readings.append(validator.check(item, rm, received_ms))
            except PayloadError as exc:
                detail = f"row {row_no}: {exc.detail}"
                summary.rejected[exc.reason] += 1
                summary.examples.setdefault(exc.reason, detail)
                rejections.append(
                    Rejection(
                        exc.reason,
                        detail,
                        source,
                        lines[i].encode(),
                        received_ms,
                        row_no,
                        park,
                        tenant,
                        meter,
                    )
                )
        store.write(WriteBatch(tuple(readings), tuple(rejections)))
        summary.rows += len(chunk)
        summary.stored += len(readings)
        if readings:
            lo = min(r.ts_ms for r in readings)
            hi = max(r.ts_ms for r in readings)
            summary.first_ms = lo if summary.first_ms is None else min(summary.first_ms, lo)
            summary.last_ms = hi if summary.last_ms is None else max(summary.last_ms, hi)
        if progress:
            progress(len(chunk))
    return summary


def _chunks(
    path: str | Path, mapping: CsvMapping, chunk_rows: int
) -> Iterator[tuple[pd.DataFrame, list[str]]]:
    """Chunks of rows as strings (nothing coerced yet), with each row's raw text for quarantine."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        fh.readline()  # the header: `lines` must line up with the data rows
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            sep=mapping.delimiter,
            chunksize=chunk_rows,
            encoding="utf-8-sig",
        )
        for chunk in reader:
            for col in (mapping.ts_column, mapping.value_column):
                if col not in chunk.columns:
                    raise ValueError(
                        f"{path}: no column {col!r}; columns are {list(chunk.columns)}"
                    )
            if mapping.decimal != ".":
                chunk[mapping.value_column] = chunk[mapping.value_column].str.replace(
                    mapping.decimal, ".", regex=False
                )
            lines = [fh.readline().rstrip("\r\n") for _ in range(len(chunk))]
            yield chunk, lines


def _timestamps(column: pd.Series, mapping: CsvMapping) -> tuple[list[int], list[bool]]:
    """Epoch milliseconds, RFC 3339 with an offset, or local times in ``mapping.timezone``."""
    text = column.astype(str).str.strip()
    ms = pd.Series(float("nan"), index=column.index)
    epoch = text.str.fullmatch(r"\d{10,16}")
    if epoch.any():
        ms[epoch] = text[epoch].astype("int64").astype(float)
    offset = ~epoch & text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if offset.any():
        parsed = pd.to_datetime(text[offset], format=mapping.ts_format, utc=True, errors="coerce")
        ms[offset] = _to_ms(parsed)
    naive = ~epoch & ~offset
    if naive.any():
        local = pd.to_datetime(text[naive], format=mapping.ts_format, errors="coerce")
        aware = local.dt.tz_localize(mapping.timezone, ambiguous="NaT", nonexistent="NaT")
        ms[naive] = _to_ms(aware.dt.tz_convert("UTC"))
    ok = ms.notna().tolist()
    return [int(v) if good else 0 for v, good in zip(ms.tolist(), ok, strict=True)], ok


def _to_ms(stamps: pd.Series) -> pd.Series:
    return (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)


def _is_nan_text(text: str) -> bool:
    return text.strip().lower().lstrip("+-") in {"nan", "inf", "infinity"}
