"""What Grafana sends InfluxDB for a panel's raw InfluxQL query: its macros and template
variables substituted as Grafana's InfluxDB data source does, so that tests can run the
committed dashboards' queries against a real InfluxDB."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex`` (its InfluxDB data source applies it to multi-value and
    include-all variables, whose values go into ``=~ /^$var$/``)."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _literally(value: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that puts ``value`` in as it is (backslashes included)."""
    return lambda _match: value


@dataclass(frozen=True)
class Selection:
    """A dashboard's state: the time range (epoch ms), ``$__interval``, and each variable's
    chosen values. ``multi`` names the variables that are multi-value or include All: their
    values are regex-escaped, several as ``(a|b)``; the others are put in as they are."""

    from_ms: int
    to_ms: int
    interval: str
    values: Mapping[str, str | Sequence[str]]
    multi: frozenset[str] = field(default_factory=frozenset)

    def interpolate(self, query: str) -> str:
        out = query.replace("$timeFilter", f"time >= {self.from_ms}ms and time <= {self.to_ms}ms")
        out = out.replace("$__interval", self.interval)
        # longest names first, so $park never eats the start of a $parkway
        for name in sorted(self.values, key=len, reverse=True):
            value = self._value(name)
            out = re.sub(rf"\$\{{{name}\}}|\${name}\b", _literally(value), out)
        if re.search(r"(?<!\\)\$(?!tag_)[A-Za-z_{]", out):
            raise ValueError(f"unsubstituted variable in {out!r}")
        return out

    def _value(self, name: str) -> str:
        value = self.values[name]
        if name not in self.multi:
            if not isinstance(value, str):
                raise ValueError(f"{name} takes one value")
            return value
        values = [value] if isinstance(value, str) else list(value)
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
