"""Payload parsers, chosen by payload format: bytes in, raw readings (or per-reading errors) out.

A parser only checks shape and syntax. Registry, unit and range checks are in ``validate``.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.parse.json_payload import RawReading, parse_json
from parkflow.errors import PayloadError

Parser = Callable[[bytes, int, int], list[RawReading | PayloadError]]

PARSERS: dict[str, Parser] = {"json": parse_json}


def get_parser(data_format: str) -> Parser:
    try:
        return PARSERS[data_format]
    except KeyError:
        raise ValueError(
            f"no parser for payload format {data_format!r}; have {sorted(PARSERS)}"
        ) from None


__all__ = ["PARSERS", "Parser", "PayloadError", "RawReading", "get_parser", "parse_json"]
