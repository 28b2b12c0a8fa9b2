"""Reading a CSV export record by record, streaming, for ``parkflow import``.

A quoted field may hold a line break, so a record is not a line: only a reader that sees the
raw lines each record consumed can quarantine exactly that record's text under its own line
number. Blank lines are not rows. The encoding follows a byte order mark, else UTF-8, else
what the caller says; a file that does not decode is named with the byte where it fails.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

from parkflow.errors import InputError


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


class CsvFileError(InputError):
    """The file cannot be read as CSV at all (encoding, missing column, unclosed quote)."""


class Row(NamedTuple):
    line: int  # 1-based line of the file the record starts on
    raw: str  # the record's text as in the file, inner line breaks included
    ts: str
    value: str  # with the decimal mark already made a point
    problem: str | None  # why the record has no usable fields, if it has none


def count_rows(path: str | Path, mapping: CsvMapping | None = None) -> int:
    """The rows ``import_csv`` will read, for a progress total: counted by the same reader, so
    blank lines and multi-line records count as they will, and an undecodable file fails here
    with the same message before anything is written."""
    return sum(len(chunk) for chunk in read_chunks(path, mapping or CsvMapping(), 100_000))


def read_chunks(path: str | Path, mapping: CsvMapping, chunk_rows: int) -> Iterator[list[Row]]:
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
            chunk: list[Row] = []
            for line, raw, fields in records:
                if len(fields) == len(names):
                    value = fields[value_i]
                    if mapping.decimal != ".":
                        value = value.replace(mapping.decimal, ".")
                    chunk.append(Row(line, raw, fields[ts_i], value, None))
                else:
                    problem = f"{len(fields)} field(s) where the header has {len(names)}"
                    chunk.append(Row(line, raw, "", "", problem))
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
