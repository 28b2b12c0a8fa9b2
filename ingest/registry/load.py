"""Load and validate a registry YAML file, collecting every problem with where it is."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ingest.errors import RegistryError
from ingest.problems import message, where
from ingest.registry.registry import Registry
from ingest.registry.schema import RegistryFile


def load_registry(path: str | Path) -> Registry:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(source, [f"{source}: cannot read: {exc}"]) from exc
    return parse_registry(text, source)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryError(source, [f"{source}: {at}: YAML syntax: {problem}"]) from exc
    if not isinstance(data, dict):
        raise RegistryError(source, [f"{source}: top level must be a mapping with 'parks'"])
    try:
        model = RegistryFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {where(data, tuple(e['loc']))}: {message(e)}" for e in exc.errors()]
        raise RegistryError(source, problems) from exc
    return Registry(model)
