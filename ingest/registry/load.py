"""Load and validate a registry YAML file, collecting every problem with where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.errors import RegistryError
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
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryError(source, [f"{source}: {where}: YAML syntax: {problem}"]) from exc
    if not isinstance(data, dict):
        raise RegistryError(source, [f"{source}: top level must be a mapping with 'parks'"])
    try:
        model = RegistryFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_where(data, e['loc'])}: {_message(e)}" for e in exc.errors()]
        raise RegistryError(source, problems) from exc
    return Registry(model)


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (typo?)"
    return msg


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """A readable path such as ``parks[0] (park 'hp').tenants[1] (tenant 'dye').meters[0].unit``."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and "id" in node:
                parts.append(f" ({node['id']!s})")
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"
