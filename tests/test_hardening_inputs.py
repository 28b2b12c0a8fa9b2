"""Findings of a hostile tester, one section each: unit strings that stalled the ingestor, timestamp
forms RFC 3339 does not have, YAML files whose repeated keys silently dropped data, and idle
connections that held status-endpoint threads forever.

Pure unit tests of the modules concerned; the one socket test runs the status server in-process.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ingest.parse.json_payload import BAD_TS, MAX_TS_MS, parse_ts
from ingest.status import StatusServer
from parkflow.errors import PayloadError, RegistryError, UnitError
from parkflow.registry import SAMPLE_REGISTRY, load_registry, parse_registry
from parkflow.units import factor
from parkflow.yamlfile import DuplicateKeyError, load_yaml
from service.knowledge import DEFAULT_KNOWLEDGE, KnowledgeError, load_knowledge, parse_knowledge

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- units: a short vocabulary, checked before pint sees it -----------------------------------

# Every unit the registries, knowledge files, simulator and tests use, and the spellings of
# exponents and products the pattern promises.
PROJECT_UNITS = [
    ("m3", "m3", 1.0),
    ("L", "m3", 0.001),
    ("kL", "m3", 1.0),
    ("Nm3", "m3", 1.0),
    ("kWh", "kWh", 1.0),
    ("MWh", "kWh", 1000.0),
    ("GJ", "kWh", 1e9 / 3.6e6),
    ("kW", "kWh/h", 1.0),
    ("MW", "kWh/h", 1000.0),
    ("kWh/h", "kWh/h", 1.0),
    ("m3/h", "m3/h", 1.0),
    ("L/s", "m3/h", 3.6),
    ("Nm3/h", "m3/h", 1.0),
    ("t", "t", 1.0),
    ("kg", "t", 0.001),
    ("t/h", "t/h", 1.0),
    ("kg/h", "t/h", 0.001),
    ("m^3", "m3", 1.0),
    ("km^3", "m3", 1e9),
    ("m^3/h", "m3/h", 1.0),
    ("kW*h", "kWh", 1.0),
    ("kW.h", "kWh", 1.0),
    ("kW·h", "kWh", 1.0),
    ("MW·h", "kWh", 1000.0),
]


@pytest.mark.parametrize(("unit", "target", "expected"), PROJECT_UNITS)
def test_the_project_units_still_convert(unit: str, target: str, expected: float) -> None:
    assert factor(unit, target) == pytest.approx(expected, rel=1e-12)


def test_every_registered_and_knowledge_unit_passes_the_pattern() -> None:
    """The shipped files load: each meter unit and each ``per`` went through factor()."""
    reg = load_registry(SAMPLE_REGISTRY)
    units = {m.meter.unit for m in reg.meters()}
    assert {"m3", "L", "kW", "kWh", "t", "kg"} <= units
    knowledge = load_knowledge()
    assert knowledge.prices  # parsed and validated, every `per` included


PATHOLOGICAL_UNITS = [
    "10**10**7*m",  # stalled the ingestor up to a minute in big-integer arithmetic
    "L" * 40000,  # seconds to tens of seconds: quadratic in pint
    "m3\\",  # accepted as m3
    "m**3",
    "m3**2",
    "2*m",
    "1e3*L",
    "1000L",
    "m3.5",
    "m^-1",
    "m^33",
    "m33",
    "(m3)",
    "m3/",
    "/m3",
    "m3//h",
    "m3**",
    " m3",
    "m3 ",
    "m 3",
    "m3\n",
    "m3\t",
    "m\u00a03",  # a no-break space
    "ｍ3",  # full-width letter
    "m³",  # superscript digit
    "m3_h",
    "m3;h",
    "m3,h",
    "L" * 33,  # over the length limit, however innocent
    "",
    "   ",
]


def _unit_id(unit: str) -> str:
    return repr(unit) if len(unit) <= 20 else f"{unit[:8]!r}...({len(unit)} chars)"


@pytest.mark.parametrize("unit", PATHOLOGICAL_UNITS, ids=_unit_id)
def test_pathological_units_are_refused_before_pint(unit: str) -> None:
    start = time.perf_counter()
    with pytest.raises(UnitError, match=r"^unknown unit .*letters") as info:
        factor(unit, "m3")
    elapsed = time.perf_counter() - start
    print(f"{unit[:20]!r} (len {len(unit)}) refused in {elapsed * 1e3:.3f} ms")
    assert len(str(info.value)) < 400, "the message must not echo a huge unit"


def test_a_pathological_target_is_refused_too() -> None:
    with pytest.raises(UnitError, match=r"^unknown unit .*letters"):
        factor("m3", "10**10**7*m")


def test_factor_keeps_its_cache() -> None:
    factor("L", "m3")
    hits = factor.cache_info().hits
    factor("L", "m3")
    assert factor.cache_info().hits == hits + 1


# --- timestamps: RFC 3339, all of it and nothing else -----------------------------------------

T = 1_795_835_700_000  # 2026-11-28T03:15:00Z
NEW_YEAR_2027 = 1_798_761_600_000  # 2027-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        ("2026-11-28T03:15:00Z", T),
        ("2026-11-28t03:15:00z", T),
        ("2026-11-28 03:15:00Z", T),
        ("2026-11-28T03:15:00+00:00", T),
        ("2026-11-28T03:15:00-00:00", T),  # RFC 3339: UTC, local offset unknown
        ("2026-11-28T10:15:00+07:00", T),
        ("2026-11-28T08:45:00+05:30", T),
        ("2026-11-27T15:15:00-12:00", T),
        ("2026-11-28T17:15:00+14:00", T),
        ("2026-11-28T10:15:00.1+07:00", T + 100),
        ("2026-11-28T10:15:00.12+07:00", T + 120),
        ("2026-11-28T10:15:00.123+07:00", T + 123),
        ("2026-11-28T10:15:00.123456+07:00", T + 123),
        ("2026-11-28T10:15:00.123456789+07:00", T + 123),  # nanoseconds: truncated to the ms
        ("2026-11-28T10:15:00.9999999999999+07:00", T + 999),
        ("2026-11-28T03:15:00.000000000000000000001Z", T),  # any length of fraction
        ("2026-12-31T23:59:60Z", NEW_YEAR_2027),  # a leap second is the next second's instant
        ("2026-12-31T23:59:60.5Z", NEW_YEAR_2027 + 500),
        ("2027-01-01T06:59:60+07:00", NEW_YEAR_2027),  # the same leap second, local time
        ("2026-12-31T18:59:60-05:00", NEW_YEAR_2027),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", MAX_TS_MS),
    ],
)
def test_rfc3339_forms_are_accepted(ts: str, ms: int) -> None:
    assert parse_ts(ts) == ms


@pytest.mark.parametrize(
    "ts",
    [
        "2026-W48-6T10:15:00Z",  # ISO 8601 week date
        "2026-W48-1T10:00:00Z",
        "2026-332T10:15:00Z",  # ordinal date
        "20261128T101500Z",  # basic format
        "20261128T10:15:00Z",
        "2026-11-28T101500Z",
        "2026-11-28T10:15:00+07:00:00",  # offset with seconds
        "2026-11-28T10:15:00+0700",  # offset without a colon
        "2026-11-28T10:15:00+07",  # hour-only offset
        "2026-11-28T10:15+07:00",  # no seconds
        "2026-11-28T10+07:00",
        "2026-11-28T10:15:00",  # no offset
        "2026-11-28",
        "2026-11-28T10:15:00,5+07:00",  # comma decimal mark
        "2026-11-28T10:15:00.+07:00",  # empty fraction
        "2026-11-28T24:00:00Z",
        "2026-11-28T10:60:00Z",
        "2026-11-28T10:15:61Z",
        "2026-11-28T10:15:60Z",  # a leap second only ends a UTC day
        "2026-12-31T23:59:60+07:00",  # 16:59:60 UTC: not a leap second
        "2026-02-29T10:15:00Z",  # not a leap year
        "2026-13-01T10:15:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-28T10:15:00+24:00",
        "2026-11-28T10:15:00+07:60",
        "2026-11-28T10:15:00 +07:00",
        "2026-11-28T10:15:00Z ",
        " 2026-11-28T10:15:00Z",
        "2026-11-28T10:15:00Z\n",
        "2026-11-28TT10:15:00Z",
        "2026-11-28_10:15:00Z",
        "+2026-11-28T10:15:00Z",
        "12026-11-28T10:15:00Z",
        "2026-1-28T10:15:00Z",
        "٢٠٢٦-11-28T10:15:00Z",  # Arabic-Indic digits
        "２０２６-11-28T10:15:00Z",  # full-width digits
        "2026-11-28T10:15:00UTC",
        "2026-11-28T10:15:00+07:00Z",
        "1969-12-31T23:59:59.999Z",  # before the epoch (range, as before)
    ],
)
def test_forms_outside_rfc3339_are_bad_ts(ts: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_ts(ts)
    assert info.value.reason == BAD_TS
    assert "RFC 3339" in info.value.detail or "out of range" in info.value.detail


def test_huge_ts_strings_cost_little_and_are_not_echoed() -> None:
    assert parse_ts("2026-11-28T03:15:00." + "9" * 100_000 + "Z") == T + 999
    for junk in ("x" * 100_000, "2026-11-28T03:15:00." + "9" * 100_000 + "+07"):
        with pytest.raises(PayloadError) as info:
            parse_ts(junk)
        assert info.value.reason == BAD_TS and len(info.value.detail) < 200


def test_integer_epoch_milliseconds_are_unchanged() -> None:
    assert parse_ts(T) == T
    assert parse_ts(0) == 0
    for bad in (-1, MAX_TS_MS + 1, 1.7e12, True):
        with pytest.raises(PayloadError) as info:
            parse_ts(bad)
        assert info.value.reason == BAD_TS


_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
_instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offsets
)


@SETTINGS
@given(
    _instants,
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.booleans(),
)
def test_rfc3339_agrees_with_datetime_arithmetic(
    dt: datetime, sep: str, timespec: str, zulu: bool
) -> None:
    if timespec == "seconds":
        dt = dt.replace(microsecond=0)  # what the text says; "milliseconds" truncates like us
    text = dt.isoformat(sep=sep, timespec=timespec)
    if zulu and dt.utcoffset() == timedelta(0):
        text = text[: -len("+00:00")] + "Z"
    assert parse_ts(text) == (dt - _EPOCH) // timedelta(milliseconds=1)


def test_parse_ts_stays_fast() -> None:
    """It runs per reading: a string ts must cost a few microseconds, not more."""
    samples = ["2026-11-28T10:15:00.123+07:00", "2026-11-28T03:15:00Z"] * 5000
    start = time.perf_counter()
    for s in samples:
        parse_ts(s)
    per = (time.perf_counter() - start) / len(samples)
    print(f"parse_ts: {per * 1e6:.2f} us per string ts")
    assert per < 50e-6  # generous: a slow CI box, not a benchmark


# --- YAML: a repeated key is an error, not a silent overwrite -----------------------------------

DUPLICATE_METERS = """\
version: 1
parks:
  - id: p
    name: P
    tenants:
      - id: a
        name: A
        meters:
          - {id: a-water, resource: water.potable, direction: in, unit: m3, kind: cumulative}
        meters:
          - {id: a-elec, resource: energy.electricity, direction: in, unit: kW, kind: rate}
"""


def test_registry_refuses_a_repeated_key_with_its_place() -> None:
    with pytest.raises(RegistryError) as info:
        parse_registry(DUPLICATE_METERS, "park.yaml")
    assert info.value.problems == [
        "park.yaml: line 10, column 9: duplicate key 'meters' (first on line 8, column 9)"
    ]


def test_registry_file_with_a_repeated_key_fails_registry_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from parkflow.cli import main

    path = tmp_path / "park.yaml"
    path.write_text(DUPLICATE_METERS, encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert info.value.problems == [
        f"{path}: line 10, column 9: duplicate key 'meters' (first on line 8, column 9)"
    ]
    assert main(["registry", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'meters'" in err and "OK" not in err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 1\nparks: []\nparks: []\n", "line 3, column 1: duplicate key 'parks'"),
        ("a: {x: 1, x: 2}\n", "line 1, column 11: duplicate key 'x' (first on line 1, column 5)"),
        ("a:\n  - {1: a, 0x1: b}\n", "duplicate key 1"),  # the same int, spelled twice
        ("a: 1\n'a': 2\n", "line 2, column 1: duplicate key 'a'"),
    ],
)
def test_repeated_keys_in_any_mapping_are_refused(text: str, problem: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "r.yaml")
    (got,) = info.value.problems
    assert got.startswith("r.yaml: ") and problem in got, got


def test_merge_keys_may_still_be_overridden() -> None:
    """``<<: *base`` then an explicit key is YAML's way to override, not a repeat."""
    data = load_yaml("base: &b {x: 1, y: 2}\nmore:\n  <<: *b\n  x: 3\n")
    assert data == {"base": {"x": 1, "y": 2}, "more": {"x": 3, "y": 2}}
    # A mapping that overrides its own merge and is merged in turn is checked once, before
    # PyYAML rewrites it (what it then makes of the nested merge is PyYAML's, as safe_load).
    nested = "b: &b {x: 1}\nm: &m\n  <<: *b\n  x: 2\nt:\n  <<: *m\n  y: 3\nu: {<<: *m}\n"
    assert load_yaml(nested) == yaml.safe_load(nested)
    with pytest.raises(DuplicateKeyError):
        load_yaml("base: &b {x: 1}\nmore:\n  <<: *b\n  x: 3\n  x: 4\n")


def test_the_loader_is_still_safe() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']\n")


def test_knowledge_refuses_a_repeated_key_with_its_place() -> None:
    text = (
        "sources:\n"
        "  - {id: s, title: S, url: 'https://example.org', accessed: 2026-01-01}\n"
        "prices: []\n"
        "prices: []\n"
    )
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge(text, "k.yaml")
    assert info.value.problems == [
        "k.yaml: line 4, column 1: duplicate key 'prices' (first on line 3, column 1)"
    ]


def test_knowledge_override_with_a_repeated_key_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "override.yaml"
    path.write_text("disable_rules: [a]\ndisable_rules: [b]\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(override=str(path))
    assert info.value.problems == [
        f"{path}: line 2, column 1: duplicate key 'disable_rules' (first on line 1, column 1)"
    ]


def test_the_shipped_files_have_no_repeated_keys() -> None:
    load_yaml(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    load_yaml(DEFAULT_KNOWLEDGE.read_text(encoding="utf-8"))


# --- the status endpoint: idle connections are closed -------------------------------------------


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return int(resp.status), bytes(resp.read())


def test_status_server_closes_idle_connections_and_keeps_answering() -> None:
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: {"ready": True}, timeout=1)
    server.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            idle.append(s)
        assert _get(server.port, "/healthz") == (200, b'{"alive": true}')
        start = time.monotonic()
        for s in idle:
            assert s.recv(1) == b""  # the server hung up on the silent client
        elapsed = time.monotonic() - start
        print(f"20 idle connections closed after {elapsed:.2f} s")
        assert elapsed < 5
        assert _get(server.port, "/healthz") == (200, b'{"alive": true}')
        code, body = _get(server.port, "/readyz")
        assert code == 200 and json.loads(body) == {"ready": True}
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_status_server_default_timeout_is_five_seconds() -> None:
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: {"ready": True})
    try:
        assert server.httpd.RequestHandlerClass.timeout == 5
    finally:
        server.httpd.server_close()
