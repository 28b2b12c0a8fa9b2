"""YAML files people edit by hand (the registry, the knowledge files), read and checked.

PyYAML's safe loader lets a repeated key silently replace the first one: a second ``meters:``
under a tenant dropped its meters and ``parkflow registry check`` still said OK. These files are
read with a loader that refuses the repeat instead, and both loaders word YAML problems alike.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

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


def message(err: Any) -> str:
    """pydantic's message for one error, without its prefixes; extra keys read as typos."""
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (typo?)"
    return msg


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
