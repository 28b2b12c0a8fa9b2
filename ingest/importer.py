"""``parkflow import``: backfill one meter's history from a CSV export, with the same checks.

Each row goes through the same validation as a reading that came over MQTT (units, range,
time limits); rows that fail are quarantined with the row's own text and the line it starts
on, so the operator can find it in the file. Writes are batched and idempotent, so an
interrupted import can simply be run again.

The file is read record by record with the ``csv`` module, streaming: a quoted field may hold
a line break, so a record is not a line, and only a reader that sees the raw lines each record
consumed can quarantine exactly that record's text under its own line number.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from ingest.parse.json_payload import BAD_SHAPE, BAD_TS, BAD_VALUE, NOT_FINITE, RawReading
from ingest.validate import Limits, Validator, quarantined_message
from parkflow.errors import InputError, PayloadError
from parkflow.model import QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.registry import Registry
from parkflow.store.base import Store
from parkflow.topics import topic_for


@dataclass(frozen=True, slots=True)
class CsvMapping:
    ts_column: str = "ts"
    value_column: str = "value"
    unit: str | None = None  # unit of the values; default: the meter's registered unit
    timezone: str = "Asia/Ho_Chi_Minh"  # for timestamps without an offset
    ts_format: str | None = None  # strptime format; default: inferred
    delimiter: str = ","
    decimal: str = "."
    # Vietnamese exports write dd/mm/yyyy, so 01/02/2026 is 1 February unless told otherwise.
    # Dates that start with the year (2026-02-01, 2026/02/01) are year-month-day either way.
    dayfirst: bool = True
    encoding: str | None = None  # None: UTF-16 or UTF-8 as a byte order mark says, else UTF-8


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


class CsvFileError(InputError):
    """The file cannot be read as CSV at all (encoding, missing column, unclosed quote)."""


class _Row(NamedTuple):
    line: int  # 1-based line of the file the record starts on
    raw: str  # the record's text as in the file, inner line breaks included
    ts: str
    value: str  # with the decimal mark already made a point
    problem: str | None  # why the record has no usable fields, if it has none


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
    try:  # here, not at the first local time of some chunk, and as bad input, not a KeyError
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {mapping.timezone!r}, e.g. Asia/Ho_Chi_Minh") from None
    validator = Validator(registry, limits or Limits())
    topic = topic_for(park, tenant, meter)
    rm = validator.resolve(topic)  # raises PayloadError for an unknown meter
    source = f"import:{Path(path).name}"
    summary = ImportSummary()
    stored_ts: list[npt.NDArray[np.int64]] = []
    stored_lines: list[npt.NDArray[np.int64]] = []
    for chunk in _chunks(path, mapping, chunk_rows):
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


def count_rows(path: str | Path, mapping: CsvMapping | None = None) -> int:
    """The rows ``import_csv`` will read, for a progress total: counted by the same reader, so
    blank lines and multi-line records count as they will, and an undecodable file fails here
    with the same message before anything is written."""
    return sum(len(chunk) for chunk in _chunks(path, mapping or CsvMapping(), 100_000))


def _rejection(
    reason: str,
    detail: str,
    source: str,
    row: _Row,
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


def _chunks(path: str | Path, mapping: CsvMapping, chunk_rows: int) -> Iterator[list[_Row]]:
    """Lists of rows, nothing coerced yet, each with its raw text and starting line."""
    delimiter = _delimiter(path, mapping.delimiter)
    codec, skip = _codec(path, mapping.encoding)
    with open(path, "rb") as binary:
        binary.seek(skip)
        text = io.TextIOWrapper(binary, encoding=codec, newline="")
        records = _records(text, delimiter)
        try:
            header = next(records, None)
            if header is None:
                raise CsvFileError(f"{path}: empty file, expected a header line")
            _, header_text, names = header
            for col in (mapping.ts_column, mapping.value_column):
                if col not in names:
                    hint = (
                        "; it looks like UTF-16 without a byte order mark: pass --encoding utf-16"
                        if "\x00" in header_text
                        else ""
                    )
                    raise CsvFileError(f"{path}: no column {col!r}; columns are {names}{hint}")
            ts_i, value_i = names.index(mapping.ts_column), names.index(mapping.value_column)
            chunk: list[_Row] = []
            for line, raw, fields in records:
                if len(fields) == len(names):
                    value = fields[value_i]
                    if mapping.decimal != ".":
                        value = value.replace(mapping.decimal, ".")
                    chunk.append(_Row(line, raw, fields[ts_i], value, None))
                else:
                    problem = f"{len(fields)} field(s) where the header has {len(names)}"
                    chunk.append(_Row(line, raw, "", "", problem))
                if len(chunk) >= chunk_rows:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        except UnicodeDecodeError as exc:
            offset, line = _first_undecodable(path, codec, skip)
            name = "UTF-8" if codec == "utf-8" else codec
            hint = (
                "if the file is in another encoding, say which, e.g. --encoding latin-1 (or"
                " cp1258, the Vietnamese Windows code page)"
                if mapping.encoding is None
                else f"is {mapping.encoding!r} the file's encoding?"
            )
            raise CsvFileError(
                f"{path}: not valid {name} at byte {offset} (line {line}); {hint}"
            ) from exc
        except csv.Error as exc:  # an unclosed quote runs on until the field is too large
            raise CsvFileError(f"{path}: not readable as CSV: {exc} (an unclosed quote?)") from exc


def _records(text: TextIO, delimiter: str) -> Iterator[tuple[int, str, list[str]]]:
    """(starting line, raw text, fields) of each record that is not blank.

    ``csv.reader`` pulls lines from the iterator only as it needs them to finish a record, so
    the lines taken between two records are exactly the later record's text."""
    taken: list[str] = []
    lines_read = 0

    def lines() -> Iterator[str]:
        nonlocal lines_read
        for line in text:
            lines_read += 1
            taken.append(line)
            yield line

    start = 1
    for fields in csv.reader(lines(), delimiter=delimiter):
        # One line break ends a record: one inside it is quoted, so followed by the quote.
        raw = (taken[0] if len(taken) == 1 else "".join(taken)).rstrip("\r\n")
        taken.clear()
        if raw.strip():
            yield start, raw, fields
        start = lines_read + 1


def _delimiter(path: str | Path, given: str) -> str:
    """One character, as the ``csv`` module needs; ``\\t`` as typed in a shell means a tab,
    the delimiter of Excel's UTF-16 "Unicode text" exports."""
    delimiter = "\t" if given in ("\\t", "tab") else given
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise CsvFileError(
            f"{path}: the delimiter must be one character, not a quote or line break; got {given!r}"
        )
    return delimiter


_BOMS = (  # UTF-32 LE first: its mark begins with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _codec(path: str | Path, requested: str | None) -> tuple[str, int]:
    """The codec to read the file with, and how many bytes of byte order mark to skip first.

    The mark is skipped rather than left to a ``-sig`` codec so that byte offsets in errors
    are offsets in the file."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    bom = next(((name, len(mark)) for mark, name in _BOMS if head.startswith(mark)), None)
    if requested is None:
        return bom or ("utf-8", 0)
    try:
        name = codecs.lookup(requested).name
    except LookupError:
        raise CsvFileError(f"{path}: unknown encoding {requested!r}") from None
    family = name.removesuffix("-sig")
    if bom and (bom[0] == family or bom[0].startswith(family + "-")):
        return bom  # utf-16 asked, and the mark says which byte order
    return family if family == "utf-8" else name, 0


def _first_undecodable(path: str | Path, codec: str, skip: int) -> tuple[int, int]:
    """Byte offset and line of the first byte that does not decode; only on the error path.

    ``TextIOWrapper`` reports positions within the block it was decoding, so the file is
    decoded again here, tracking where each block starts."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset, breaks, tail = skip, 0, ""
    with open(path, "rb") as fh:
        fh.seek(skip)
        while True:
            block = fh.read(1 << 16)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                text = codecs.decode((pending + block)[: exc.start], codec, "replace")
                return offset - len(pending) + exc.start, breaks + _line_breaks(tail, text) + 1
            breaks += _line_breaks(tail, text)
            tail = text[-1:] or tail
            if not block:
                return offset, breaks + 1  # decodes after all: point at the end
            offset += len(block)


def _line_breaks(before: str, text: str) -> int:
    """Line breaks in ``text`` as the reader counts them (\\r\\n, \\n or \\r), not counting a
    \\n that completes a \\r\\n begun at the end of the previous block."""
    n = len(re.findall(r"\r\n|\r|\n", text))
    return n - 1 if before == "\r" and text.startswith("\n") else n


# An offset counts only after a time of day: in `20-11-2026` the `-2026` is the year.
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
