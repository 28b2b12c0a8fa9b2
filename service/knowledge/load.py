"""Reading the knowledge files, and merging a park's override over the shipped default.

A park ships no code to change what counts as a match or what a cubic metre is worth: it writes
a YAML override that is merged over the shipped ``default.yaml`` and validated like the registry
(unknown keys are errors). Since a problem may sit in either file, each one is reported with the
file its value came from and the entry it is in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from parkflow.errors import ConfigError
from parkflow.registry.vocabulary import alias_of
from parkflow.yamlfile import Origin, load_mapping, problem_at, read_text, validate_model
from service.knowledge.knowledge import ENTRY_KEYS, Knowledge


class KnowledgeError(ConfigError):
    """The knowledge files are unreadable or invalid; carries every problem with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("knowledge", problems)


DEFAULT_KNOWLEDGE = Path(__file__).with_name("default.yaml")

# Overrides add to these lists rather than replace them.
_APPEND_LISTS = ("disable_rules",)


def load_knowledge(path: str | None = None, override: str | None = None) -> Knowledge:
    """Read the knowledge file (the shipped default when ``path`` is None) and merge a park's
    override over it; raise KnowledgeError naming each problem's file and entry."""
    base_src = str(path) if path is not None else str(DEFAULT_KNOWLEDGE)
    base = _read(Path(base_src))
    if override is None:
        return _validate(base, base_src)
    over = _read(Path(override))
    merged, origin = merge_knowledge(base, over, base_src, str(override))
    return _validate(merged, origin)


def parse_knowledge(text: str, source: str = "<knowledge>") -> Knowledge:
    """Validate knowledge given as YAML text (tests, API uploads)."""
    return _validate(_parse(text, source), source)


def merge_knowledge(
    base: dict[str, Any], over: dict[str, Any], base_src: str, over_src: str
) -> tuple[dict[str, Any], Callable[[tuple[Any, ...]], str]]:
    """Merge ``over`` into ``base``; return the result and a function telling, for a location in
    it, which file the value came from (for error messages).

    An override entry with the same key fields (``ENTRY_KEYS``) as a shipped one replaces it
    whole, so a figure always travels with its own source and date."""
    merged: dict[str, Any] = dict(base)
    list_origin: dict[tuple[str, int], str] = {}
    problems: list[str] = []
    for section, value in over.items():
        if section in ENTRY_KEYS:
            if not isinstance(value, list):
                problems.append(f"{over_src}: {section}: must be a list")
                continue
            merged[section], origins = _merge_list(
                list(base.get(section) or []), value, ENTRY_KEYS[section], base_src, over_src
            )
            list_origin.update({(section, i): o for i, o in enumerate(origins)})
        elif section in _APPEND_LISTS:
            if not isinstance(value, list):
                problems.append(f"{over_src}: {section}: must be a list")
                continue
            merged[section] = list(base.get(section) or []) + value
        elif isinstance(value, dict) and isinstance(base.get(section), dict):
            merged[section] = _deep_merge(base[section], value)
        else:
            merged[section] = value
    if problems:
        raise KnowledgeError(problems)

    def origin(loc: tuple[Any, ...]) -> str:
        if not loc:
            return over_src
        section = loc[0]
        if section in ENTRY_KEYS and len(loc) > 1 and isinstance(loc[1], int):
            return list_origin.get((section, loc[1]), base_src)
        node: Any = over
        for key in loc:
            found = (isinstance(node, dict) and key in node) or (
                isinstance(node, list) and isinstance(key, int) and key < len(node)
            )
            if found:
                node = node[key]
            else:
                return base_src if section in base else over_src
        return over_src

    return merged, origin


def _merge_list(
    base: list[Any], over: list[Any], key: tuple[str, ...], base_src: str, over_src: str
) -> tuple[list[Any], list[str]]:
    def k(entry: Any) -> Any:
        return tuple(entry.get(f) for f in key) if isinstance(entry, dict) else None

    out = list(base)
    origins = [base_src] * len(base)
    index = {k(e): i for i, e in enumerate(out) if k(e) is not None}
    for entry in over:
        ek = k(entry)
        if ek is not None and ek in index:
            out[index[ek]] = entry
            origins[index[ek]] = over_src
        else:
            out.append(entry)
            origins.append(over_src)
            if ek is not None:
                index[ek] = len(out) - 1
    return out, origins


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> dict[str, Any]:
    return _parse(read_text(path, KnowledgeError), str(path))


def _parse(text: str, source: str) -> dict[str, Any]:
    return load_mapping(text, source, KnowledgeError, empty_ok=True)


def _validate(data: dict[str, Any], origin: Origin) -> Knowledge:
    context = {"defer_cross_check": True}  # reported below, each with its file and entry
    knowledge = validate_model(
        Knowledge, data, KnowledgeError, origin, _entry_name, context, alias=alias_of
    )
    cross = knowledge.problems()
    if cross:
        raise KnowledgeError(
            [problem_at(origin, data, loc, msg, _entry_name) for loc, msg in cross]
        )
    return knowledge


def _entry_name(node: dict[str, Any]) -> str | None:
    if "id" in node:
        return repr(str(node["id"]))
    if "destination" in node and "resource" in node:
        return f"{node['destination']}/{node['resource']}"
    if "resource" in node:
        return repr(str(node["resource"]))
    return None
