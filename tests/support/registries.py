"""Park registries for tests, built as data rather than by editing YAML text: a test says which
meter or exchange differs, and the registry is validated by the same pydantic models as a
park's file, so a mistake in a test's registry fails as it would for an integrator."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from parkflow.registry import Registry
from parkflow.registry.schema import RegistryFile

Doc = dict[str, Any]


def meter(id: str, resource: str, direction: str, unit: str, kind: str, **fields: Any) -> Doc:
    return {
        "id": id,
        "resource": resource,
        "direction": direction,
        "unit": unit,
        "kind": kind,
        **fields,
    }


def tenant(id: str, *meters: Doc, name: str | None = None, **fields: Any) -> Doc:
    return {"id": id, "name": name or id.title(), "meters": list(meters), **fields}


def park(
    id: str,
    *tenants: Doc,
    name: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
    exchanges: Iterable[Mapping[str, Any]] = (),
    link_capex: Iterable[Mapping[str, Any]] = (),
) -> Doc:
    return {
        "id": id,
        "name": name or id.upper(),
        "timezone": timezone,
        "tenants": list(tenants),
        "exchanges": [dict(e) for e in exchanges],
        "link_capex": [dict(c) for c in link_capex],
    }


def build(*parks: Doc) -> Registry:
    return Registry(RegistryFile.model_validate({"version": 1, "parks": list(parks)}))


def changed(doc: Doc, meter_id: str, **fields: Any) -> Doc:
    """A copy of a park with one meter's fields changed (``None`` removes a field)."""
    out = copy.deepcopy(doc)
    for t in out["tenants"]:
        for m in t["meters"]:
            if m["id"] == meter_id:
                for key, value in fields.items():
                    if value is None:
                        m.pop(key, None)
                    else:
                        m[key] = value
                return out
    raise KeyError(f"no meter {meter_id!r} in park {doc['id']!r}")


def with_links(
    doc: Doc,
    exchanges: Iterable[Mapping[str, Any]] = (),
    link_capex: Iterable[Mapping[str, Any]] | None = None,
) -> Doc:
    """A copy of a park with these registered exchanges (and, if given, link capex)."""
    out = copy.deepcopy(doc)
    out["exchanges"] = [dict(e) for e in exchanges]
    if link_capex is not None:
        out["link_capex"] = [dict(c) for c in link_capex]
    return out


def with_equipment(doc: Doc, tenant_id: str, *equipment: Mapping[str, Any]) -> Doc:
    """A copy of a park where one tenant lists this equipment (boilers, heaters)."""
    out = copy.deepcopy(doc)
    for t in out["tenants"]:
        if t["id"] == tenant_id:
            t["equipment"] = [dict(e) for e in equipment]
            return out
    raise KeyError(f"no tenant {tenant_id!r} in park {doc['id']!r}")
