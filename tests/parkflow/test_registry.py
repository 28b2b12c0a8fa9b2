"""The park registry: every problem reported with its file, entry and reason; the CLI exits 2 on any."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parkflow.errors import RegistryError
from parkflow.registry import SAMPLE_REGISTRY, load_registry, parse_registry

REPO = Path(__file__).resolve().parents[2]


# --- registry ---------------------------------------------------------------------------------

BAD_REGISTRY = """\
version: 1
parks:
  - id: p1
    name: Park one
    tenants:
      - id: t1
        name: Tenant one
        meters:
          - {id: m-kwh, resource: water.potable, direction: in, unit: kWh, kind: cumulative}
          - {id: m-roll, resource: water.potable, direction: in, unit: m3, kind: delta, rollover: 10}
          - {id: m-range, resource: energy.electricity, direction: in, unit: kW, kind: rate, min: 5, max: 1}
          - {id: m-typo, resource: water.potable, direction: in, unit: m3, kind: cumulative, colour: red}
          - {id: "bad id!", resource: water.potable, direction: in, unit: m3, kind: cumulative}
          - {id: m-kind, resource: water.potable, direction: sideways, unit: m3, kind: gauge}
      - id: t2
        name: Tenant two
        meters:
          - {id: m-int, resource: water.potable, direction: in, unit: m3, kind: cumulative, integration: previous}
"""

EXPECTED_PROBLEMS = [
    ("parks[0] (p1).tenants[0] (t1).meters[0] (m-kwh)", "unit 'kWh'"),
    ("parks[0] (p1).tenants[0] (t1).meters[1] (m-roll)", "rollover applies to cumulative"),
    ("parks[0] (p1).tenants[0] (t1).meters[2] (m-range)", "min 5.0 is above max 1.0"),
    ("parks[0] (p1).tenants[0] (t1).meters[3] (m-typo).colour", "unknown key"),
    ("parks[0] (p1).tenants[0] (t1).meters[4] (bad id!).id", "String should match pattern"),
    ("parks[0] (p1).tenants[0] (t1).meters[5] (m-kind).direction", "'in' or 'out'"),
    ("parks[0] (p1).tenants[0] (t1).meters[5] (m-kind).kind", "'cumulative'"),
    ("parks[0] (p1).tenants[1] (t2).meters[0] (m-int)", "integration applies to rate"),
]


def test_registry_reports_every_problem_with_file_entry_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    problems = info.value.problems
    assert len(problems) == len(EXPECTED_PROBLEMS), "\n".join(problems)
    for where, reason in EXPECTED_PROBLEMS:
        hits = [p for p in problems if p.startswith(f"{path}: {where}: ") and reason in p]
        assert hits, f"no problem for {where} mentioning {reason!r} in:\n" + "\n".join(problems)


def _replaced(kind: str, replacements: str) -> str:
    return (
        "parks:\n  - id: p1\n    name: P\n    tenants:\n      - id: a\n        name: A\n"
        "        meters:\n          - {id: m, resource: water.potable, direction: in, unit: m3,"
        f" kind: {kind}, replaced: [{replacements}]}}\n"
    )


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            "parks:\n  - id: p1\n    name: P\n    tenants:\n"
            "      - {id: a, name: A, meters: [{id: m, resource: water.x, direction: in,"
            " unit: m3, kind: delta}]}\n"
            "      - {id: b, name: B, meters: [{id: m, resource: water.x, direction: in,"
            " unit: m3, kind: delta}]}\n",
            "parks[0] (p1)",
            "meter id 'm' is used twice in the park",
        ),
        (
            "parks:\n  - {id: p1, name: P, tenants: [{id: a, name: A}, {id: a, name: B}]}\n",
            "parks[0] (p1)",
            "tenant id 'a' is used twice",
        ),
        (
            "parks:\n  - {id: p1, name: P}\n  - {id: p1, name: Q}\n",
            "(top level)",
            "park id 'p1' is used twice",
        ),
        ("parks:\n  - {id: p1}\n", "parks[0] (p1).name", "Field required"),
        (
            _replaced("delta", "{at: 2025-03-04T10:00:00+07:00}"),
            "parks[0] (p1).tenants[0] (a).meters[0] (m)",
            "replaced applies to cumulative meters only",
        ),
        (
            _replaced("cumulative", "{at: 2025-03-04 10:00:00}"),
            "parks[0] (p1).tenants[0] (a).meters[0] (m).replaced[0].at",
            "timezone",
        ),
        (
            _replaced("cumulative", "{at: 2025-03-04T10:00:00+07:00}, {at: 2025-03-04T03:00:00Z}"),
            "parks[0] (p1).tenants[0] (a).meters[0] (m)",
            "replaced lists 2025-03-04T10:00:00+07:00 twice",
        ),
        (
            _replaced("cumulative", "{at: 2025-03-04T10:00:00+07:00, initial_reading: .nan}"),
            "parks[0] (p1).tenants[0] (a).meters[0] (m).replaced[0].initial_reading",
            "finite",
        ),
        ("version: 2\nparks: []\n", "version", "Input should be 1"),
        ("parks:\n  - id: [unclosed\n", "line ", "YAML syntax"),
        ("- just\n- a list\n", "", "top level must be a mapping"),
    ],
)
def test_registry_problem_messages(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = tmp_path / "reg.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert any(p.startswith(f"{path}: {where}") and reason in p for p in info.value.problems), (
        info.value.problems
    )


def test_registry_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RegistryError) as info:
        load_registry(missing)
    assert info.value.problems[0].startswith(f"{missing}: cannot read")
    with pytest.raises(RegistryError) as info:
        parse_registry("parks: [", "inline.yaml")
    assert info.value.problems[0].startswith("inline.yaml: line ")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkflow.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_registry_check_command(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    bad = _cli("registry", "check", str(path))
    assert bad.returncode == 2, bad  # bad input, as from every command
    lines = bad.stderr.strip().splitlines()
    assert lines[-1] == f"{path}: {len(EXPECTED_PROBLEMS)} problem(s)"
    for where, reason in EXPECTED_PROBLEMS:
        assert any(where in line and reason in line for line in lines), (where, bad.stderr)
    good = _cli("registry", "check", str(SAMPLE_REGISTRY))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{SAMPLE_REGISTRY}: OK (1 park(s), ")


@pytest.mark.parametrize(
    "command",
    [
        ["registry", "check", "{path}"],
        ["registry", "acl", "{path}"],
        ["registry", "partition", "{path}"],
        ["ingest", "--registry", "{path}"],
        ["detect", "--registry", "{path}"],
        ["rebuild-rollups", "--registry", "{path}"],
        ["import", "x.csv", "--meter", "a/b/c", "--registry", "{path}"],
    ],
)
def test_the_same_bad_registry_exits_2_from_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    run = _cli(*(part.format(path=path) for part in command))
    assert run.returncode == 2, run.stderr
    assert f"{path}: {len(EXPECTED_PROBLEMS)} problem(s)" in run.stderr
    assert "Traceback" not in run.stderr


def test_ingest_without_a_registry_refuses_to_start() -> None:
    run = _cli("ingest")
    assert run.returncode == 2
    assert "no park registry: set PARKFLOW_REGISTRY or pass --registry" in run.stderr


@pytest.mark.parametrize(
    ("derived", "base_direction", "reason"),
    [
        ("{meter: gas, per_unit: 0.3}", "out", "derived_from 'gas' is not an in-meter"),
        ("{meter: elsewhere, per_unit: 0.3}", "in", "'elsewhere' is not a meter of tenant 'a'"),
        ("{meter: gas, per_unit: 0}", "in", "greater than 0"),
    ],
)
def test_a_stream_is_derived_only_from_its_own_tenants_intake(
    derived: str, base_direction: str, reason: str
) -> None:
    text = f"""
parks:
  - id: p1
    name: P
    tenants:
      - id: a
        name: A
        meters:
          - {{id: gas, resource: energy.natural_gas, direction: {base_direction}, unit: kWh, kind: delta}}
          - {{id: flue, resource: energy.waste_heat, direction: out, unit: kWh, kind: delta, derived_from: {derived}}}
      - id: b
        name: B
        meters:
          - {{id: elsewhere, resource: energy.natural_gas, direction: in, unit: kWh, kind: delta}}
"""
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "reg.yaml")
    assert any(reason in p for p in info.value.problems), info.value.problems
    if base_direction == "in":  # the same entry, pointing at its own intake, loads
        ok = parse_registry(text.replace(derived, "{meter: gas, per_unit: 0.3}"), "reg.yaml")
        flue = ok.meter("p1", "a", "flue")
        assert flue is not None and flue.meter.derived_from is not None
