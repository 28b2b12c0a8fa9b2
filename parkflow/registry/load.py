"""Load and validate a registry YAML file, collecting every problem with where it is."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from parkflow.errors import RegistryError
from parkflow.registry.registry import Registry
from parkflow.registry.schema import RegistryFile
from parkflow.yamlfile import load_yaml, message, where, yaml_problem


def load_registry(path: str | Path) -> Registry:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(source, [f"{source}: cannot read: {exc}"]) from exc
    return parse_registry(text, source)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    try:
        data = load_yaml(text)  # a repeated key is an error: it would silently drop entries
    except yaml.YAMLError as exc:
        raise RegistryError(source, [f"{source}: {yaml_problem(exc)}"]) from exc
    if not isinstance(data, dict):
        raise RegistryError(source, [f"{source}: top level must be a mapping with 'parks'"])
    try:
        model = RegistryFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {where(data, tuple(e['loc']))}: {message(e)}" for e in exc.errors()]
        raise RegistryError(source, problems) from exc
    return Registry(model)
