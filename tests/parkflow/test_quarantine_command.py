"""``parkflow quarantine``: the records a filter selects, on SQLite and a real InfluxDB, and
the payload shown as a bounded, escaped excerpt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.validate import Validator
from parkflow.cli import EXIT_BAD_INPUT, EXIT_NOTHING, EXIT_OK, main
from parkflow.model import WriteBatch
from parkflow.quarantine import escape, excerpt
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import Store
from parkflow.topics import topic_for

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
REG = load_registry(SAMPLE_REGISTRY)
M1, M2 = REG.meters()[0], next(m for m in REG.meters() if m.tenant != REG.meters()[0].tenant)


def _quarantine(store: Store, topic: str, payload: bytes, received_ms: int) -> None:
    """Through the ingestor's own checks, so the records are what production stores."""
    out = Validator(REG).validate(topic, payload, received_ms)
    assert out.rejections and out.message is not None
    store.write(WriteBatch(tuple(out.readings), tuple(out.rejections), (out.message,)))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert main(["quarantine", "--json", *argv]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    return rows


def test_quarantine_filters_and_shows_an_escaped_excerpt(
    env_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    t1 = topic_for(M1.park.id, M1.tenant.id, M1.meter.id)
    t2 = topic_for(M2.park.id, M2.tenant.id, M2.meter.id)
    _quarantine(env_store, t1, b'{"ts": "yesterday", "value": 1}', T0)
    _quarantine(env_store, t2, b'{"ts": "soon", "value": 2}', T0 + HOUR)
    hostile = b"\x1b[2J\xff\xfe" + "Việt\n".encode() + b"A" * 100_000
    _quarantine(env_store, "ip/nowhere/x/y/readings", hostile, T0 + 2 * HOUR)

    everything = _json(capsys)
    assert [r["received_ms"] for r in everything] == [T0 + 2 * HOUR, T0 + HOUR, T0]
    assert everything[0]["reason"] == "unknown_park" and everything[0]["tenant"] is None
    assert everything[0]["received"] == "2026-01-01T02:00:00.000Z"
    shown = str(everything[0]["excerpt"])
    assert shown.startswith("\\x1b[2J\\xff\\xfeViệt\\nAAA") and shown.endswith("…")
    assert len(shown) == 201 and "\x1b" not in shown and "\n" not in shown
    assert everything[0]["size"] == len(hostile)
    assert everything[2]["excerpt"] == '{"ts": "yesterday", "value": 1}'

    assert [r["tenant"] for r in _json(capsys, "--tenant", M1.tenant.id)] == [M1.tenant.id]
    assert [r["meter"] for r in _json(capsys, "--meter", M2.meter.id)] == [M2.meter.id]
    window = _json(capsys, "--since", "2026-01-01T01:00:00Z", "--until", "2026-01-01T02:00")
    assert [r["received_ms"] for r in window] == [T0 + HOUR]
    # an offset is honoured: 08:00 in Hanoi is 01:00 UTC
    assert len(_json(capsys, "--since", "2026-01-01T08:00+07:00")) == 2
    assert [r["reason"] for r in _json(capsys, "--reason", "unknown_park")] == ["unknown_park"]
    assert len(_json(capsys, "--limit", "1")) == 1
    short = _json(capsys, "--excerpt-chars", "10", "--reason", "unknown_park")
    assert short[0]["excerpt"] == "\\x1b[2J…"  # 7 characters; the next escape takes 4

    assert main(["quarantine", "--tenant", M1.tenant.id]) == EXIT_OK
    table = capsys.readouterr().out
    assert f"{M1.park.id}/{M1.tenant.id}/{M1.meter.id}" in table
    assert '{"ts": "yesterday", "value": 1}' in table and "1 record(s)" in table

    assert main(["quarantine", "--tenant", "nobody"]) == EXIT_NOTHING
    assert "(none)" in capsys.readouterr().out


def test_quarantine_refuses_a_time_it_cannot_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["quarantine", "--since", "last tuesday"])
    assert exc.value.code == EXIT_BAD_INPUT
    assert "ISO date" in capsys.readouterr().err


def test_excerpt_is_bounded_printable_and_says_when_it_was_cut() -> None:
    assert excerpt(b"plain") == "plain"
    assert excerpt(b"tab\there\\") == "tab\\there\\\\"
    assert excerpt(b"\x00\x7f\xc3") == "\\x00\\x7f\\xc3"  # NUL, DEL, a cut UTF-8 sequence
    assert excerpt("ok ✓ \u200b".encode()) == "ok ✓ \\u200b"  # zero-width space escaped
    assert excerpt(b"x" * 10, chars=4) == "xxxx…"
    assert excerpt(b"abc", truncated=True) == "abc…"  # the store kept only the start
    # an escape is never cut in half
    assert escape("ab\x01", chars=4) == "ab…"
    assert len(excerpt(bytes(range(256)) * 1000)) <= 201


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    """``parkflow ... | head``: the command stops quietly when its reader has gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has had enough before the first byte
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "parkflow.cli", "registry", "acl", str(SAMPLE_REGISTRY)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    finally:
        os.close(write_end)
    assert writer.stderr == b""
    assert writer.returncode == EXIT_OK
