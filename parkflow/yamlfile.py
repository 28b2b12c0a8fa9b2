"""YAML files people edit by hand (the registry, the knowledge files), read and checked.

PyYAML's safe loader lets a repeated key silently replace the first one: a second ``meters:``
under a tenant dropped its meters and ``parkflow registry check`` still said OK. These files are
read with a loader that refuses the repeat instead.

Both loaders go through the same steps (read the file, parse the YAML, validate with pydantic)
and take them here, so a person fixing either file sees every problem worded alike, as
``file: where: what``; each loader only says which error to raise and how to name its entries.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from parkflow.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping holds one key twice; ``problem_mark`` is the second occurrence."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated within one mapping.

    A mapping's own keys may still override what a ``<<: *anchor`` merge brings in: that is
    how YAML spells an override, so only the keys written in the mapping itself are compared.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[Node] = set()

    def flatten_mapping(self, node: MappingNode) -> None:
        # Compared here, before the first flattening rewrites node.value with the merged pairs
        # (a merged-in node is flattened again each time it is merged; it is checked once).
        if node not in self._checked:
            self._checked.add(node)
            self._refuse_repeated_keys(node)
        super().flatten_mapping(node)

    def _refuse_repeated_keys(self, node: MappingNode) -> None:
        seen: dict[Hashable, Node] = {}
        for key_node, _ in node.value:
            # Scalar keys only: a key that is itself a mapping or list is rare enough, and
            # building it here could recurse into the mapping being built.
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node)
            if not isinstance(key, Hashable):
                continue  # the base constructor reports an unhashable key itself
            first = seen.setdefault(key, key_node)
            if first is not key_node:
                at = first.start_mark
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first on line {at.line + 1}, column {at.column + 1})",
                    key_node.start_mark,
                )


def load_yaml(text: str) -> Any:
    """The document in ``text``, as ``yaml.safe_load`` reads it but refusing repeated keys;
    raises ``yaml.YAMLError`` (``DuplicateKeyError`` for a repeat)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # safe: a SafeLoader subclass


def yaml_problem(exc: yaml.YAMLError) -> str:
    """``line L, column C: what`` for a YAML error, as the loaders report problems."""
    mark = getattr(exc, "problem_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, DuplicateKeyError):
        return f"{at}: {problem}"
    return f"{at}: YAML syntax: {problem}"


# Readable validation problems for those files, checked by pydantic: where the problem is,
# by path and entry name, and what it is.

NameOf = Callable[[dict[str, Any]], str | None]


def entry_id(node: dict[str, Any]) -> str | None:
    return str(node["id"]) if "id" in node else None


# The allowed values a refused choice lists ("Input should be 'in' or 'out'"), as pydantic
# words them for a Literal or an enum.
_CHOICE_ERRORS = ("literal_error", "enum")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")

Alias = Callable[[str], str | None]


def message(err: Any, alias: Alias | None = None) -> str:
    """pydantic's message for one error, without its prefixes; extra keys read as typos; a
    refused choice names what was written and the allowed value it most likely meant."""
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (typo?)"
    elif err["type"] in _CHOICE_ERRORS and isinstance(err.get("input"), str):
        allowed = _QUOTED.findall(str(err.get("ctx", {}).get("expected", "")))
        msg = f"{msg}, not {err['input']!r}"
        guess = suggestion(err["input"], allowed, alias)
        if guess is not None:
            msg += f": did you mean {guess!r}?"
    return msg


def suggestion(value: str, allowed: list[str], alias: Alias | None = None) -> str | None:
    """The allowed value ``value`` most likely stands for: a known synonym first (``alias``),
    then the closest spelling, compared in lower case; ``None`` when nothing is close."""
    meant = alias(value) if alias is not None else None
    if meant is not None and meant in allowed:
        return meant
    by_folded = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(value.lower(), list(by_folded), n=1)
    return by_folded[close[0]] if close else None


def where(data: Any, loc: tuple[Any, ...], name_of: NameOf = entry_id) -> str:
    """A path such as ``parks[0] (hp).tenants[1] (dye).meters[0].unit``, naming each entry."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict):
                name = name_of(node)
                if name:
                    parts.append(f" ({name})")
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


# The steps from a file to a validated model. Each raises the error ``fail`` builds from the
# problems found, so the registry and the knowledge files keep their own error classes.

Fail = Callable[[list[str]], ConfigError]
# Which file a value at a location came from: one file, or a function for merged files.
Origin = str | Callable[[tuple[Any, ...]], str]
_M = TypeVar("_M", bound=BaseModel)


def read_text(path: str | Path, fail: Fail) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail([f"{path}: cannot read: {exc}"]) from exc


def load_mapping(
    text: str, source: str, fail: Fail, *, shape: str = "a mapping", empty_ok: bool = False
) -> dict[str, Any]:
    """The YAML mapping in ``text``; ``shape`` words what the top level must be, ``empty_ok``
    reads an empty document as an empty mapping."""
    try:
        data = load_yaml(text)  # a repeated key is an error: it would silently drop entries
    except yaml.YAMLError as exc:
        raise fail([f"{source}: {yaml_problem(exc)}"]) from exc
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise fail([f"{source}: top level must be {shape}"])
    return data


def validate_model(
    model: type[_M],
    data: dict[str, Any],
    fail: Fail,
    origin: Origin,
    name_of: NameOf = entry_id,
    context: dict[str, Any] | None = None,
    alias: Alias | None = None,
) -> _M:
    """``data`` validated as ``model``, or ``fail`` with one problem per pydantic error;
    ``alias`` maps the file's known synonyms to the values they stand for."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = [
            problem_at(origin, data, tuple(e["loc"]), message(e, alias), name_of)
            for e in exc.errors()
        ]
        raise fail(problems) from exc


def problem_at(
    origin: Origin, data: Any, loc: tuple[Any, ...], what: str, name_of: NameOf = entry_id
) -> str:
    """``file: where: what`` for a problem at ``loc`` in ``data``."""
    source = origin if isinstance(origin, str) else origin(loc)
    return f"{source}: {where(data, loc, name_of)}: {what}"
