"""Readable validation problems for YAML files checked by pydantic (the registry, knowledge):
where the problem is, by path and entry name, and what it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
