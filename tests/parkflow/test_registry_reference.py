"""The registry reference and JSON Schema are generated from the models: the committed
docs/registry.md is what `parkflow registry docs` prints, and the schema agrees with what
validation accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from parkflow.cli import main
from parkflow.model import Direction, MeterKind
from parkflow.registry import SAMPLE_REGISTRY, parse_registry
from parkflow.registry.reference import EXAMPLES, json_schema, reference
from parkflow.registry.schema import Coupling, Destination
from parkflow.registry.vocabulary import (
    ALIASES,
    COUPLING_MEANINGS,
    DESTINATION_MEANINGS,
    DIRECTION_MEANINGS,
    METER_KIND_MEANINGS,
    QCVN40_COLUMN_MEANINGS,
)
from parkflow.yamlfile import load_yaml
from service.knowledge import load_knowledge

DOCS = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    generated = reference(load_knowledge().use_meanings())
    assert DOCS.read_text(encoding="utf-8") == generated, (
        "docs/registry.md is out of date: run `parkflow registry docs > docs/registry.md`"
    )


def test_registry_docs_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "docs"]) == 0
    out = capsys.readouterr().out
    assert out == reference(load_knowledge().use_meanings())
    # Every meter field and every destination is in it, with its meaning.
    for field in json_schema()["$defs"]["Meter"]["properties"]:
        assert f"| `{field}`" in out, field
    for value, meaning in DESTINATION_MEANINGS.items():
        assert f"- `{value}`: {meaning}" in out, value
    assert "suggested for `accumulated`, `counter`" in out
    assert "| energy | kWh | kWh/h | Wh, kWh, MWh" in out


def test_registry_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads(json.dumps(json_schema()))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["parks"]
    for name in ("Park", "Tenant", "Meter", "Use", "Quality", "Location", "Exchange"):
        assert schema["$defs"][name]["additionalProperties"] is False, name


@pytest.mark.parametrize(
    ("meanings", "values"),
    [
        (DESTINATION_MEANINGS, get_args(Destination)),
        (COUPLING_MEANINGS, get_args(Coupling)),
        (DIRECTION_MEANINGS, tuple(d.value for d in Direction)),
        (METER_KIND_MEANINGS, tuple(k.value for k in MeterKind)),
        (QCVN40_COLUMN_MEANINGS, ("A", "B", "C")),
    ],
)
def test_every_allowed_value_has_a_meaning(meanings: dict[str, str], values: tuple[str]) -> None:
    assert sorted(meanings) == sorted(values)
    assert all(meanings.values())


def _choices(prop: dict[str, Any], defs: dict[str, Any]) -> list[Any]:
    for option in prop.get("anyOf", [prop]):
        if "$ref" in option:
            option = defs[option["$ref"].rsplit("/", 1)[-1]]
        if "enum" in option:
            return list(option["enum"])
    return []


def test_every_field_has_a_description_and_every_choice_its_meanings() -> None:
    defs = json_schema()["$defs"]
    for name, node in defs.items():
        for key, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
            choices = _choices(prop, defs)
            if len(choices) > 1:
                assert sorted(prop.get("x-meanings", {})) == sorted(choices), f"{name}.{key}"


def test_aliases_point_at_allowed_values() -> None:
    allowed = {
        v for m in (DESTINATION_MEANINGS, DIRECTION_MEANINGS, METER_KIND_MEANINGS) for v in m
    }
    allowed |= {"trapezoid", "previous"} | load_knowledge().use_names()
    assert {target for target in ALIASES.values()} <= allowed
    assert not set(ALIASES) & allowed  # an allowed value is never taken for another


def _conforms(node: Any, schema: dict[str, Any], defs: dict[str, Any], at: str) -> list[str]:
    """What a small walker finds wrong with ``node`` against the schema: unknown or missing
    keys, and values outside an enumeration (jsonschema is not a dependency)."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"] or schema["anyOf"]
        return _conforms(node, options[0], defs, at) if node is not None else []
    out: list[str] = []
    if "enum" in schema and node not in schema["enum"]:
        out.append(f"{at}: {node!r} not in {schema['enum']}")
    if schema.get("type") == "object":
        props = schema.get("properties", {})
        out += [f"{at}.{k}: not in the schema" for k in node if k not in props]
        out += [f"{at}.{k}: required" for k in schema.get("required", ()) if k not in node]
        for k, v in node.items():
            if k in props:
                out += _conforms(v, props[k], defs, f"{at}.{k}")
    if schema.get("type") == "array":
        for i, item in enumerate(node):
            out += _conforms(item, schema.get("items", {}), defs, f"{at}[{i}]")
    return out


@pytest.mark.parametrize(
    "text",
    [SAMPLE_REGISTRY.read_text(encoding="utf-8")] + [t for _, t in EXAMPLES],
    ids=["sample_park"] + [f"example{i + 1}" for i in range(len(EXAMPLES))],
)
def test_the_sample_park_and_the_examples_conform_to_the_schema(text: str) -> None:
    parse_registry(text)  # valid for the models
    schema = json_schema()
    assert _conforms(load_yaml(text), schema, schema["$defs"], "") == []


def test_the_schema_walker_finds_what_the_models_refuse() -> None:
    schema = json_schema()
    doc = load_yaml(EXAMPLES[0][1])
    meter = doc["parks"][0]["tenants"][0]["meters"][0]
    meter["kind"] = "counter"
    meter["colour"] = "red"
    del meter["unit"]
    found = _conforms(doc, schema, schema["$defs"], "")
    assert len(found) == 3, found
