"""CSV history import: same validation as MQTT, rejects quarantined with the row's text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ingest.importer import CsvMapping, import_csv
from ingest.registry import SAMPLE_REGISTRY, load_registry
from ingest.store import ReadingQuery, SqliteStore

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
    assert quarantined["bad_ts"].payload == b"yesterday;1002"
    assert quarantined["bad_ts"].index == 5  # line 5 of the file
    assert quarantined["bad_value"].topic == "import:export.csv"
    store.close()


def test_import_twice_stores_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    path = _write(tmp_path, "ts,value\n2026-11-01T00:00:00Z,5\n2026-11-01T01:00:00+07:00,6\n")
    for _ in range(2):
        import_csv(path, store, REG, "songlam", "mekong-foods", "mf-pallets")
    assert len(store.readings(ReadingQuery(meter="mf-pallets"))) == 2
    store.close()


def test_cli_import_reports_summary_and_rejects_unknown_meter(tmp_path: Path) -> None:
    path = _write(tmp_path, "ts,value\n2026-11-01T00:00:00Z,5\n1793462400000,-1\n")
    env = {"PARKFLOW_SQLITE_PATH": str(tmp_path / "cli.sqlite"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "service.cli", "import", str(path), "--quiet"]
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
