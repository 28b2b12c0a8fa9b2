"""Words an integrator reaches for: a refused value says what is allowed and what was meant;
a use name no rule knows is a warning with the nearest known one."""

from __future__ import annotations

from pathlib import Path

import pytest

from parkflow.cli import main
from parkflow.errors import RegistryError
from parkflow.registry import SAMPLE_REGISTRY, parse_registry
from parkflow.registry.vocabulary import alias_of, unknown_uses
from parkflow.yamlfile import suggestion
from service.knowledge import load_knowledge
from tests.support.registries import build, meter, park, tenant

WHERE = "parks[0] (p).tenants[0] (t).meters[0] (m)"


def registry_with(**fields: str | dict[str, str]) -> str:
    """A one-meter registry (an out-meter of wastewater) with some fields replaced."""
    base: dict[str, str | dict[str, str]] = {
        "id": "m",
        "resource": "water.wastewater",
        "direction": "out",
        "unit": "m3",
        "kind": "delta",
    }
    base.update(fields)
    flow = ", ".join(
        f"{k}: {{{', '.join(f'{a}: {b}' for a, b in v.items())}}}"
        if isinstance(v, dict)
        else f"{k}: {v}"
        for k, v in base.items()
    )
    return (
        "parks:\n  - id: p\n    name: P\n    tenants:\n      - id: t\n        name: T\n"
        f"        meters:\n          - {{{flow}}}\n"
    )


def problems_of(text: str) -> list[str]:
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "park.yaml")
    return info.value.problems


@pytest.mark.parametrize(
    ("fields", "field", "allowed", "meant"),
    [
        ({"kind": "counter"}, "kind", "'cumulative', 'delta' or 'rate'", "cumulative"),
        ({"kind": "totaliser"}, "kind", "'cumulative', 'delta' or 'rate'", "cumulative"),
        (
            {"quality": {"qcvn40_column": "QCVN40:2011-A"}},
            "quality.qcvn40_column",
            "'A', 'B' or 'C'",
            "A",
        ),
        (
            {"destination": "sewer_to_central_wwtp"},
            "destination",
            "'sewer_to_wwtp', 'discharged', 'landfill'",
            "sewer_to_wwtp",
        ),
        ({"direction": "outt"}, "direction", "'in' or 'out'", "out"),  # a typo: difflib
        ({"destination": "Landfil"}, "destination", "'open_dump'", "landfill"),
    ],
)
def test_a_refused_value_says_what_is_allowed_and_what_was_meant(
    fields: dict[str, str | dict[str, str]], field: str, allowed: str, meant: str
) -> None:
    [problem] = problems_of(registry_with(**fields))
    written = next(iter(fields.values()))
    written = next(iter(written.values())) if isinstance(written, dict) else written
    assert problem.startswith(f"park.yaml: {WHERE}.{field}: Input should be ")
    assert allowed in problem
    assert f", not {written!r}: did you mean {meant!r}?" in problem


def test_a_value_like_nothing_allowed_gets_no_guess() -> None:
    [problem] = problems_of(registry_with(destination="zzz"))
    assert problem.endswith(", not 'zzz'")
    assert "did you mean" not in problem


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("QCVN40:2011-A", "A"),
        ("QCVN 40:2011/BTNMT column B", "B"),
        ("qcvn40-c", "C"),
        ("Counter", "cumulative"),
        ("sewer to central WWTP", "sewer_to_wwtp"),
        ("QCVN40:2011-D", None),
        ("landfill", None),  # an allowed value is no alias
    ],
)
def test_aliases(word: str, meant: str | None) -> None:
    assert alias_of(word) == meant


def test_an_alias_is_offered_only_where_its_target_is_allowed() -> None:
    # "counter" means cumulative, but where only QCVN columns are allowed it suggests nothing.
    assert suggestion("counter", ["A", "B", "C"], alias_of) is None
    assert suggestion("counter", ["cumulative", "delta"], alias_of) == "cumulative"
    assert suggestion("DELTA", ["cumulative", "delta"]) == "delta"


def test_a_knowledge_file_gets_the_same_suggestions(tmp_path: Path) -> None:
    from service.knowledge import KnowledgeError

    override = tmp_path / "park-knowledge.yaml"
    override.write_text("destinations:\n  - {id: sewer_to_central_wwtp, verb: 'sends {what}'}\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(override=str(override))
    assert any("did you mean 'sewer_to_wwtp'?" in p for p in info.value.problems), (
        info.value.problems
    )


# --- use names: a warning, not an error ---------------------------------------------------------


def test_an_unknown_use_name_is_a_warning_with_the_nearest_known_one() -> None:
    reg = build(
        park(
            "p",
            tenant(
                "t",
                meter(
                    "m1",
                    "water.potable",
                    "in",
                    "m3",
                    "cumulative",
                    uses=[{"name": "cooling_tower_makeup"}],
                ),
                meter(
                    "m2",
                    "water.potable",
                    "in",
                    "m3",
                    "cumulative",
                    uses=[{"name": "cooling_tower_makeup", "share": 0.5}, {"name": "cleaning"}],
                ),
                meter("m3", "water.potable", "in", "m3", "delta", uses=[{"name": "zebra_wash"}]),
            ),
        )
    )
    known = load_knowledge().use_names()
    assert "cooling_makeup" in known and "cleaning" in known
    assert unknown_uses(reg.model, known) == [
        "use 'cooling_tower_makeup' (p/t/m1, p/t/m2) is unknown to the knowledge base:"
        " no substitution rule will replace it: did you mean 'cooling_makeup'?",
        "use 'zebra_wash' (p/t/m3) is unknown to the knowledge base:"
        " no substitution rule will replace it",
    ]
    assert unknown_uses(reg.model, known | {"cooling_tower_makeup", "zebra_wash"}) == []


def test_registry_check_warns_about_unknown_uses_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "park.yaml"
    path.write_text(
        registry_with(
            resource="water.potable",
            direction="in",
            uses="[{name: cooling_tower_makeup}]",
        )
    )
    assert main(["registry", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: OK (1 park(s), 1 tenant(s), 1 meter(s))")
    assert err.splitlines() == [
        f"{path}: warning: use 'cooling_tower_makeup' (p/t/m) is unknown to the knowledge base:"
        " no substitution rule will replace it: did you mean 'cooling_makeup'?"
    ]
    # A park whose knowledge override adds a rule for its own use name hears nothing.
    override = tmp_path / "knowledge.yaml"
    override.write_text("labels:\n  cooling_tower_makeup: cooling-tower make-up\n")
    assert main(["registry", "check", str(path), "--knowledge", str(override)]) == 0
    assert capsys.readouterr().err == ""


def test_the_sample_park_names_uses_no_rule_knows_on_purpose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["registry", "check", str(SAMPLE_REGISTRY)]) == 0
    warned = capsys.readouterr().err
    assert "use 'domestic'" in warned and "use 'laundry'" in warned
    assert "cooling_makeup" not in warned  # a name the rules know
