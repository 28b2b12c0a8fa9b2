"""Both log formats carry a record's fields: the text one too, as ``key=value``."""

from __future__ import annotations

import json
import logging

from parkflow.logs import JsonFormatter, TextFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "parkflow.ingest.mqtt", "levelno": 30})
    record.levelname, record.msg = "WARNING", "mqtt connect failed"
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_text_lines_carry_the_fields_quoted_when_needed() -> None:
    line = TextFormatter().format(
        _record(broker="10.0.0.5:1883", reason="ConnectionRefusedError: refused", retry_in_s=4)
    )
    assert line.endswith(
        "parkflow.ingest.mqtt: mqtt connect failed broker=10.0.0.5:1883"
        ' reason="ConnectionRefusedError: refused" retry_in_s=4'
    )
    assert TextFormatter().format(_record()).endswith("mqtt connect failed")


def test_json_lines_carry_the_same_fields() -> None:
    out = json.loads(JsonFormatter().format(_record(broker="b:1", retry_in_s=2)))
    assert (out["msg"], out["level"], out["broker"], out["retry_in_s"]) == (
        "mqtt connect failed",
        "warning",
        "b:1",
        2,
    )
