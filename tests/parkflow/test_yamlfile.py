"""YAML files people edit: a repeated key is an error with its place, not a silent overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parkflow.errors import RegistryError
from parkflow.registry import SAMPLE_REGISTRY, load_registry, parse_registry
from parkflow.yamlfile import DuplicateKeyError, load_yaml
from service.knowledge import DEFAULT_KNOWLEDGE, KnowledgeError, load_knowledge, parse_knowledge

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
