"""CSV history import: same validation as MQTT, rejects quarantined with the row's text."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ingest.csv_rows import CsvFileError, CsvMapping
from ingest.importer import ImportSummary, import_csv
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import ReadingQuery, SqliteStore

REG = load_registry(SAMPLE_REGISTRY)
CSV = """timestamp;reading
01/11/2026 00:00;1000,5
01/11/2026 00:15;1001,0
01/11/2026 00:30;not a number
yesterday;1002
01/11/2026 00:45;NaN
01/11/2026 01:00;1003,5
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "export.csv"
    p.write_text(text, encoding="utf-8")
    return p


HCM_MIDNIGHT_20_NOV = "2026-11-19T17:00:00Z"  # 2026-11-20 00:00 in Ho Chi Minh City (UTC+7)


def _ms(iso: str) -> int:
    return int(pd.Timestamp(iso).timestamp() * 1000)


def _quarantine(store: SqliteStore) -> dict[int | None, tuple[str, bytes]]:
    """What the import quarantined, by line number: (reason, raw row)."""
    rejections = store.quarantined()
    messages = store.quarantined_messages(rejections)
    return {q.index: (q.reason, messages[q.message_id].payload) for q in rejections}


def _stored(store: SqliteStore, meter: str = "mf-pallets") -> list[tuple[int, float]]:
    return [(r.ts_ms, r.value) for r in store.readings(ReadingQuery(meter=meter))]


def _pallets(path: Path, store: SqliteStore, **kwargs: Any) -> ImportSummary:
    return import_csv(path, store, REG, "songlam", "mekong-foods", "mf-pallets", **kwargs)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PARKFLOW_SQLITE_PATH": str(tmp_path / "cli.sqlite"),
        "PARKFLOW_REGISTRY": str(SAMPLE_REGISTRY),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "parkflow.cli", *args], env=env, capture_output=True, text=True
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "s.sqlite")
    yield s
    s.close()


def test_import_validates_converts_and_quarantines(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    mapping = CsvMapping(
        ts_column="timestamp",
        value_column="reading",
        unit="L",  # the export is in litres; the meter is registered in m3
        ts_format="%d/%m/%Y %H:%M",
        delimiter=";",
        decimal=",",
    )
    summary = import_csv(
        _write(tmp_path, CSV), store, REG, "songlam", "thep-an", "thep-water", mapping
    )
    assert summary.rows == 6
    assert summary.stored == 3
    assert dict(summary.rejected) == {"bad_value": 1, "bad_ts": 1, "not_finite": 1}
    rows = store.readings(ReadingQuery(meter="thep-water"))
    # 01/11/2026 00:00 in Ho Chi Minh City is 2026-10-31T17:00Z
    assert [r.ts_ms for r in rows] == [1793466000000, 1793466900000, 1793469600000]
    assert [round(r.value, 6) for r in rows] == [1.0005, 1.001, 1.0035]  # litres -> m3
    quarantined = {q.reason: q for q in store.quarantined()}
    assert _quarantine(store)[5] == ("bad_ts", b"yesterday;1002")  # line 5 of the file
    assert quarantined["bad_value"].topic == "import:export.csv"
    store.close()


def test_import_twice_stores_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    path = _write(
        tmp_path, "ts,value\n2026-11-01T00:00:00Z,5\n2026-11-01T01:00:00+07:00,6\nnever,7\n"
    )
    for _ in range(2):
        import_csv(path, store, REG, "songlam", "mekong-foods", "mf-pallets")
    assert len(store.readings(ReadingQuery(meter="mf-pallets"))) == 2
    assert [(q.index, q.reason) for q in store.quarantined()] == [(4, "bad_ts")]  # not twice
    store.close()


def test_cli_import_reports_summary_and_rejects_unknown_meter(tmp_path: Path) -> None:
    path = _write(tmp_path, "ts,value\n2026-11-01T00:00:00Z,5\n1793462400000,-1\n")
    env = {
        "PARKFLOW_SQLITE_PATH": str(tmp_path / "cli.sqlite"),
        "PARKFLOW_REGISTRY": str(SAMPLE_REGISTRY),
        "PATH": "/usr/bin:/bin",
    }
    cmd = [sys.executable, "-m", "parkflow.cli", "import", str(path), "--quiet"]
    ok = subprocess.run(
        [*cmd, "--meter", "songlam/mekong-foods/mf-pallets"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "2 rows: 1 stored, 1 rejected" in ok.stdout
    assert "out_of_range: 1" in ok.stdout
    bad = subprocess.run(
        [*cmd, "--meter", "songlam/thep-an/nope"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "not registered" in bad.stderr


@pytest.mark.parametrize("chunk_rows", [2, 20_000])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_blank_lines_and_multiline_fields_keep_each_rows_text_and_line(
    tmp_path: Path, store: SqliteStore, eol: str, chunk_rows: int
) -> None:
    lines = [
        "ts,value",  # 1
        "",  # 2: blank, not a row
        "2026-11-01T00:00:00Z,5",  # 3
        "2026-11-01T01:00:00Z,-1",  # 4: out of range (pallets are never negative)
        '"2026-11-01',  # 5: a quoted field holding a line break...
        'T02:00:00Z",7',  # 6  ...ends here: one row, unreadable time
        "   ",  # 7: blank
        "yesterday,8",  # 8
        "2026-11-01T03:00:00Z,9",  # 9
        "",
    ]
    path = tmp_path / "export.csv"
    path.write_bytes(eol.join(lines).encode())
    summary = _pallets(path, store, chunk_rows=chunk_rows)
    assert summary.rows == 5  # blank lines are not rows; the two-line record is one
    assert summary.stored == 2
    assert _stored(store) == [(_ms("2026-11-01T00:00Z"), 5.0), (_ms("2026-11-01T03:00Z"), 9.0)]
    assert _quarantine(store) == {
        4: ("out_of_range", b"2026-11-01T01:00:00Z,-1"),
        5: ("bad_ts", f'"2026-11-01{eol}T02:00:00Z",7'.encode()),
        8: ("bad_ts", b"yesterday,8"),
    }
    assert summary.examples["bad_ts"].startswith("line 5:")


@pytest.mark.parametrize(
    ("text", "dayfirst", "expected"),
    [
        ("20-11-2026", True, HCM_MIDNIGHT_20_NOV),  # `-2026` is no UTC offset
        ("20/11/2026", True, HCM_MIDNIGHT_20_NOV),
        ("01/02/2026 10:15", True, "2026-02-01T03:15:00Z"),  # 1 February, local time
        ("01/02/2026 10:15", False, "2026-01-02T03:15:00Z"),  # 2 January
        ("2026-11-20", True, HCM_MIDNIGHT_20_NOV),  # ISO is year-month-day whatever dayfirst
        ("2026-01-02 10:00", True, "2026-01-02T03:00:00Z"),
        ("2026/01/02 10:00", True, "2026-01-02T03:00:00Z"),
        ("2026-11-20T10:15:00+07:00", True, "2026-11-20T03:15:00Z"),
        ("2026-11-20 10:15Z", True, "2026-11-20T10:15:00Z"),
        ("20/11/2026 10:15:30-02:00", True, "2026-11-20T12:15:30Z"),
        ("20/11/2026 10:15 UTC", True, "2026-11-20T10:15:00Z"),
    ],
)
def test_dates_day_first_and_offsets_only_after_a_time_of_day(
    tmp_path: Path, store: SqliteStore, text: str, dayfirst: bool, expected: str
) -> None:
    summary = _pallets(
        _write(tmp_path, f"ts,value\n{text},1\n"), store, mapping=CsvMapping(dayfirst=dayfirst)
    )
    assert dict(summary.rejected) == {}
    assert _stored(store) == [(_ms(expected), 1.0)]


def test_day_first_is_the_default_and_the_cli_can_turn_it_off(tmp_path: Path) -> None:
    assert CsvMapping().dayfirst is True
    helptext = _cli(tmp_path, "import", "--help").stdout
    assert "--no-day-first" in helptext and "default" in helptext.lower()
    path = _write(tmp_path, "ts,value\n01/02/2026 10:15,1\n")
    meter = ["--meter", "songlam/mekong-foods/mf-pallets", "--quiet"]
    off = _cli(tmp_path, "import", str(path), *meter, "--no-day-first")
    assert off.returncode == 0, off.stderr
    store = SqliteStore(tmp_path / "cli.sqlite")
    assert _stored(store) == [(_ms("2026-01-02T03:15:00Z"), 1.0)]
    store.close()
    on = _cli(tmp_path, "import", str(path), *meter)
    assert on.returncode == 0, on.stderr
    store = SqliteStore(tmp_path / "cli.sqlite")
    assert _ms("2026-02-01T03:15:00Z") in [ts for ts, _ in _stored(store)]
    store.close()


VIET = "ts,value,ghi chú\n2026-11-01T00:00:00Z,5,Nhà máy\nhôm qua,6,lỗi\n"


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-16-le", "\ufeff"), ("utf-16-be", "\ufeff"), ("utf-8", "\ufeff")]
)
def test_a_bom_chooses_the_encoding(
    tmp_path: Path, store: SqliteStore, encoding: str, bom: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes((bom + VIET).encode(encoding))
    summary = _pallets(path, store)
    assert (summary.rows, summary.stored) == (2, 1)
    assert _quarantine(store) == {3: ("bad_ts", "hôm qua,6,lỗi".encode())}


def test_a_file_that_does_not_decode_names_file_byte_and_encoding(
    tmp_path: Path, store: SqliteStore
) -> None:
    good = "".join(f"2026-11-01T{h:02d}:{m:02d}:00Z,{h},ok\n" for h in range(24) for m in range(60))
    head = ("ts,value,note\n" + good * 3).encode()  # well past any read buffer
    path = tmp_path / "latin.csv"
    path.write_bytes(head + "2026-11-02T00:00:00Z,1,café\n".encode("latin-1"))
    bad_at = len(head) + len(b"2026-11-02T00:00:00Z,1,caf")
    with pytest.raises(CsvFileError) as caught:
        _pallets(path, store, chunk_rows=1000)
    message = str(caught.value)
    assert "latin.csv" in message and f"byte {bad_at}" in message and "\n" not in message
    assert f"line {2 + 3 * 24 * 60}" in message
    assert "--encoding latin-1" in message
    meter = ["--meter", "songlam/mekong-foods/mf-pallets"]
    for quiet in ([], ["--quiet"]):  # without --quiet the progress bar counts rows first
        run = _cli(tmp_path, "import", str(path), *meter, *quiet)
        assert run.returncode == 2
        assert "Traceback" not in run.stderr
        assert f"latin.csv: not valid UTF-8 at byte {bad_at}" in run.stderr
        assert "--encoding latin-1" in run.stderr
    fixed = _cli(tmp_path, "import", str(path), *meter, "--encoding", "latin-1", "--quiet")
    assert fixed.returncode == 0, fixed.stderr
    assert f"{3 * 24 * 60 + 1} rows: {24 * 60 + 1} stored, 0 rejected" in fixed.stdout


def test_cli_reads_a_utf16_tab_export_with_a_progress_bar_and_refuses_bad_options(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.csv"
    # With a BOM and tabs, as Excel's "Unicode text" writes; the delimiter typed as \t.
    path.write_text(VIET.replace(",", "\t"), encoding="utf-16")
    meter = ["--meter", "songlam/mekong-foods/mf-pallets", "--delimiter", "\\t"]
    run = _cli(tmp_path, "import", str(path), *meter)  # no --quiet: counts the rows first
    assert run.returncode == 0, run.stderr
    assert "2 rows: 1 stored, 1 rejected" in run.stdout
    assert "2/2" in run.stderr  # the bar's total is rows, not lines or undecodable bytes
    for option, value in (
        ("--encoding", "klingon"),
        ("--delimiter", ";;"),
        ("--timezone", "Hanoi"),
    ):
        bad = _cli(tmp_path, "import", str(path), *meter, option, value)
        assert bad.returncode == 2
        assert "Traceback" not in bad.stderr and value in bad.stderr


@pytest.mark.parametrize("chunk_rows", [1, 20_000])
def test_summary_counts_distinct_timestamps_and_names_repeats(
    tmp_path: Path, store: SqliteStore, chunk_rows: int
) -> None:
    path = _write(
        tmp_path,
        "ts,value\n"
        "2026-11-01T00:00:00Z,5\n"  # 2
        "2026-11-01T01:00:00Z,6\n"  # 3
        "2026-11-01T08:00:00+07:00,7\n"  # 4: the same instant as line 3
        "2026-11-01T03:00:00Z,-1\n"  # 5: rejected...
        "2026-11-01T03:00:00Z,9\n",  # 6  ...so this one repeats nothing that was stored
    )
    summary = _pallets(path, store, chunk_rows=chunk_rows)
    assert (summary.rows, summary.stored, summary.repeated) == (5, 3, [(4, 3)])
    assert _stored(store) == [
        (_ms("2026-11-01T00:00Z"), 5.0),
        (_ms("2026-11-01T01:00Z"), 7.0),  # the later row's value
        (_ms("2026-11-01T03:00Z"), 9.0),
    ]
    run = _cli(
        tmp_path, "import", str(path), "--meter", "songlam/mekong-foods/mf-pallets", "--quiet"
    )
    assert "5 rows: 3 stored, 1 rejected" in run.stdout
    assert "1 row repeated an earlier timestamp; the later row's value is kept" in run.stdout
    assert "line 4 (same time as line 3)" in run.stdout


def test_rows_with_the_wrong_number_of_fields_are_quarantined_not_misread(
    tmp_path: Path, store: SqliteStore
) -> None:
    path = _write(
        tmp_path,
        "ts,value\n2026-11-01T00:00:00Z,1,5\n2026-11-01T01:00:00Z\n2026-11-01T02:00:00Z,2\n",
    )
    summary = _pallets(path, store)
    assert (summary.rows, summary.stored) == (3, 1)
    assert _quarantine(store) == {
        2: ("bad_shape", b"2026-11-01T00:00:00Z,1,5"),  # a decimal comma, unquoted?
        3: ("bad_shape", b"2026-11-01T01:00:00Z"),
    }
