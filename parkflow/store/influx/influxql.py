"""InfluxQL text: quoting, time bounds and the tag conditions that select many meters at once.
Pure: what a query says, not how it is sent."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from parkflow.model import MeterKey
from parkflow.store.influx.lineprotocol import MAX_TIME_MS, METER_TAGS, MIN_TIME_MS

Series = dict[str, Any]  # one series of a /query answer: name, tags, columns, values


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + escape_influxql(name, '"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL single-quoted string literal (tag values in WHERE clauses)."""
    return "'" + escape_influxql(value, "'") + "'"


def escape_influxql(text: str, quote: str) -> str:
    # The InfluxQL scanner understands exactly \\, \n, \" and \' inside quotes; a raw newline
    # ends the token with an error.
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def ms_to_ns_bound(ms: int) -> int:
    return max(MIN_TIME_MS, min(MAX_TIME_MS, ms)) * 1_000_000


def group_by_meter() -> str:
    return "GROUP BY " + ", ".join(quote_ident(t) for t in METER_TAGS)


def meters_condition(keys: Sequence[MeterKey]) -> str:
    """A tag condition selecting at least these meters' series (callers drop the rest).

    One ``=~ /^(a|b|...)$/`` per tag: InfluxDB turns such a regex into a set look-up, while an
    ``OR`` of hundreds of ``(park AND tenant AND meter)`` terms costs about 0.1 s a statement.
    The product of the three sets may name a few extra meters; they are filtered out.
    """
    return " AND ".join(
        f"{quote_ident(tag)} =~ /^({'|'.join(regex_literal(v) for v in sorted(values))})$/"
        for tag, values in (
            ("park", {k.park for k in keys}),
            ("tenant", {k.tenant for k in keys}),
            ("meter", {k.meter for k in keys}),
        )
    )


def regex_literal(value: str) -> str:
    """``value`` matched literally inside an InfluxQL ``/regex/`` (RE2 syntax)."""
    return re.escape(value).replace("/", "\\/")


def series_key(series: Series) -> MeterKey:
    tags = series.get("tags", {})
    return MeterKey(tags["park"], tags["tenant"], tags["meter"])


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
