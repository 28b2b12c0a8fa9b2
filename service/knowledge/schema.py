"""Resource knowledge as data: substitution rules, prices and emission factors, each with a source.

A park ships no code to change what counts as a match or what a cubic metre is worth: it writes a
YAML override that is merged over the shipped ``default.yaml`` and validated like the registry
(unknown keys are errors; every problem is reported with its file and entry).

Every figure is stored in the unit its source quotes (``per``) and converted to the canonical
unit (m3, kWh, t) with pint, so a figure can be checked against its source as written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from parkflow.errors import ConfigError, UnitError
from parkflow.registry.schema import Coupling, Destination, ResourceName
from parkflow.units import CANONICAL_BY_FAMILY, canonical_unit, factor
from parkflow.yamlfile import load_yaml, message, where, yaml_problem

Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# A family ("waste") or a full resource name ("waste.fly_ash"): the most specific entry wins.
Selector = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")]
_T = TypeVar("_T")
UseName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class KnowledgeError(ConfigError):
    """The knowledge files are unreadable or invalid; carries every problem with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("knowledge", problems)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _per_canonical(value: float, per: str, selector: str) -> float:
    """``value`` quoted per ``per`` unit, re-expressed per canonical unit of the selector's family."""
    return value * factor(canonical_unit(selector), per)


def _check_per(per: str, selector: str) -> None:
    try:
        factor(canonical_unit(selector), per)
    except UnitError as exc:
        raise ValueError(f"per {per!r} does not fit {selector!r}: {exc}") from None


def _finite(*values: float | None) -> None:
    for v in values:
        if v is not None and not math.isfinite(v):
            raise ValueError("figures must be finite")


class Source(_Model):
    """Where a figure comes from. ``assumption: true`` marks a placeholder a park should replace."""

    id: Key
    citation: str
    url: str | None = None
    accessed: date | None = None
    assumption: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _assumptions_say_so(self) -> Source:
        if self.assumption and not self.note:
            raise ValueError("an assumption needs a note saying what to override it with")
        return self


class _MoneyPerUnit(_Model):
    """A dated amount of VND per unit of a resource, with its source; subclasses narrow
    ``resource`` and ``vnd``."""

    resource: str
    vnd: float
    per: str
    as_of: date
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _MoneyPerUnit:
        _finite(self.vnd)
        _check_per(self.per, self.resource)
        return self

    @property
    def vnd_per_unit(self) -> float:
        return _per_canonical(self.vnd, self.per, self.resource)


class Price(_MoneyPerUnit):
    """What a tenant pays to buy a resource today (the avoided cost when a substitute replaces it)."""

    resource: ResourceName
    vnd: float = Field(ge=0)


class DisposalCost(_MoneyPerUnit):
    """What the owner of a stream pays per unit to send it where it goes today (negative: income)."""

    destination: Destination
    resource: Selector


class ResourceEmission(_Model):
    """Emissions from supplying one unit of a resource; avoided when a substitute replaces it.

    ``by_year`` for factors that change every year (the grid), else ``t_co2e``.
    """

    resource: ResourceName
    t_co2e: float | None = Field(default=None, ge=0)
    by_year: dict[int, Annotated[float, Field(ge=0)]] | None = None
    per: str
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ResourceEmission:
        if (self.t_co2e is None) == (self.by_year is None or not self.by_year):
            raise ValueError("give exactly one of t_co2e or a non-empty by_year")
        _finite(self.t_co2e, *(self.by_year or {}).values())
        _check_per(self.per, self.resource)
        return self

    def per_unit(self, year: int) -> tuple[float, int | None]:
        """The factor per canonical unit for ``year`` (latest year not after it, else the earliest),
        and the year actually used."""
        if self.by_year is None:
            return _per_canonical(self.t_co2e or 0.0, self.per, self.resource), None
        years = sorted(self.by_year)
        usable = [y for y in years if y <= year]
        used = usable[-1] if usable else years[0]
        return _per_canonical(self.by_year[used], self.per, self.resource), used


class DisposalEmission(_Model):
    """Emissions from sending one unit of a stream where it goes today (avoided when it is reused)."""

    destination: Destination
    resource: Selector
    t_co2e: float = Field(ge=0)
    per: str
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> DisposalEmission:
        _finite(self.t_co2e)
        _check_per(self.per, self.resource)
        return self

    @property
    def per_unit(self) -> float:
        return _per_canonical(self.t_co2e, self.per, self.resource)


class DestinationInfo(_Model):
    """How to talk about a destination, and what it means for benefit accounting."""

    @model_validator(mode="after")
    def _verb_has_slot(self) -> DestinationInfo:
        if self.verb.count("{what}") != 1 or self.verb.replace("{what}", "").count("{") > 0:
            raise ValueError("verb needs exactly one {what} and no other braces")
        return self

    id: Destination
    verb: str = Field(
        description="plain-language phrase with {what} for the quantity and stream, e.g."
        " 'sends {what} to landfill'"
    )
    landfill: bool = Field(
        default=False, description="diverting from it counts as landfill diverted"
    )
    displaces: ResourceName | None = Field(
        default=None,
        description="today the stream already displaces this resource (grid export displaces grid"
        " electricity), so that credit is lost when the stream goes elsewhere",
    )


class TransportMode(_Model):
    """Moving a stream between tenants: cost and emissions per unit and km, and losses per km."""

    id: Key
    label: str
    family: Literal["water", "liquid", "energy", "waste", "material", "byproduct"]
    vnd_per_unit_km: float = Field(ge=0)
    t_co2e_per_unit_km: float = Field(default=0.0, ge=0)
    loss_per_km: float = Field(default=0.0, ge=0, lt=1)
    as_of: date
    source: Key

    @model_validator(mode="after")
    def _check(self) -> TransportMode:
        _finite(self.vnd_per_unit_km, self.t_co2e_per_unit_km)
        return self

    @property
    def unit(self) -> str:
        return CANONICAL_BY_FAMILY[self.family]


class Gate(_Model):
    """A quality condition on the supplying stream; unknown quality never passes a gate.

    ``one_of``: the attribute is one of these values. ``at_least``: a fixed minimum.
    ``at_least_demand_plus``: at least the receiver's value (its quality) plus this margin.
    """

    attribute: Literal["qcvn40_column", "temperature_c", "pressure_bar"]
    one_of: list[str] | None = None
    at_least: float | None = None
    at_least_demand_plus: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Gate:
        given = [x is not None for x in (self.one_of, self.at_least, self.at_least_demand_plus)]
        if sum(given) != 1:
            raise ValueError("give exactly one of one_of, at_least, at_least_demand_plus")
        categorical = self.attribute == "qcvn40_column"
        if categorical != (self.one_of is not None):
            raise ValueError(
                "qcvn40_column takes one_of; temperature_c and pressure_bar take at_least"
                " or at_least_demand_plus"
            )
        _finite(self.at_least, self.at_least_demand_plus)
        return self


class Cost(_Model):
    vnd: float = Field(ge=0)
    per: str
    source: Key

    @model_validator(mode="after")
    def _check(self) -> Cost:
        _finite(self.vnd)
        return self


class Rule(_Model):
    """Which out-streams can replace which metered in-uses, under which gates and coupling.

    ``ratio``: receiver units replaced per supply unit delivered (heating value, yield, heat
    exchanger effectiveness). ``max_demand_share``: at most this share of the receiver's
    demand can be replaced (fly ash in a cement blend). ``coupling``: the time bucket in which
    supply and demand must meet (energy hourly, water daily with a tank, solids weekly).
    """

    id: Key
    description: str
    enabled: bool = True
    supply: list[ResourceName] = Field(min_length=1)
    demand: list[ResourceName] = Field(min_length=1)
    uses: list[UseName] | None = Field(
        default=None,
        description="receiver uses that may be replaced; absent: the whole in-meter",
    )
    gates: list[Gate] = Field(default_factory=list)
    ratio: float = Field(default=1.0, gt=0)
    max_demand_share: float = Field(default=1.0, gt=0, le=1)
    coupling: Coupling
    transport: Key
    max_distance_m: float = Field(gt=0)
    preprocessing: Cost | None = None
    min_matched_per_day: float = Field(
        default=0.0, ge=0, description="smaller matches (receiver units/day) are not proposed"
    )
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Rule:
        _finite(self.ratio, self.max_distance_m, self.min_matched_per_day)
        families = {r.split(".", 1)[0] for r in self.supply}
        if len({CANONICAL_BY_FAMILY.get(f) for f in families}) > 1:
            raise ValueError("supply resources must share one canonical unit")
        families = {r.split(".", 1)[0] for r in self.demand}
        if len({CANONICAL_BY_FAMILY.get(f) for f in families}) > 1:
            raise ValueError("demand resources must share one canonical unit")
        if self.preprocessing is not None:
            _check_per(self.preprocessing.per, self.supply[0])
        return self

    @property
    def supply_unit(self) -> str:
        return canonical_unit(self.supply[0])

    @property
    def demand_unit(self) -> str:
        return canonical_unit(self.demand[0])

    @property
    def preprocessing_vnd_per_unit(self) -> float:
        if self.preprocessing is None:
            return 0.0
        return _per_canonical(self.preprocessing.vnd, self.preprocessing.per, self.supply[0])


class Detection(_Model):
    """When an out-stream counts as a surplus: it must persist, not just show up once."""

    min_present_share: float = Field(
        default=0.6, gt=0, le=1, description="share of the window's days the stream must flow"
    )
    min_hours_per_day: int = Field(
        default=20, ge=1, le=24, description="a day with fewer hours of data is a day without data"
    )
    temporal_deadband: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="temporal surpluses: an hour's excess of generation over own use counts only"
        " above this share of the generation, so meter noise around a balance is no surplus",
    )
    min_p50_per_day: dict[Selector, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="smallest median daily quantity (canonical unit/day), by family or resource",
    )

    def min_p50(self, resource: str) -> float:
        return _most_specific(self.min_p50_per_day, resource, 0.0)


class Matching(_Model):
    routing_factor: float = Field(
        default=1.2, ge=1, description="route length over straight-line distance"
    )
    unknown_distance_m: float = Field(
        default=1000.0, gt=0, description="assumed when a tenant has no location"
    )
    days_per_year: float = Field(default=365.0, gt=0, le=366)
    require_positive_value: bool = True
    max_receivers_per_surplus: int = Field(
        default=5, ge=1, description="best receivers kept per surplus; the rest are counted"
    )
    source: Key


@dataclass(frozen=True)
class _Index:
    sources: dict[str, Source]
    prices: dict[str, Price]
    modes: dict[str, TransportMode]
    destinations: dict[str, DestinationInfo]
    emissions: dict[str, ResourceEmission]


class Knowledge(_Model):
    """The validated knowledge base plus fast look-ups built once."""

    version: Literal[1] = 1
    sources: list[Source]
    labels: dict[str, str] = Field(default_factory=dict)
    destinations: list[DestinationInfo]
    prices: list[Price]
    disposal_costs: list[DisposalCost]
    resource_emissions: list[ResourceEmission]
    disposal_emissions: list[DisposalEmission]
    transport_modes: list[TransportMode]
    rules: list[Rule]
    disable_rules: list[Key] = Field(default_factory=list)
    detection: Detection
    matching: Matching

    @cached_property
    def index(self) -> _Index:
        """Dict look-ups built once (plain attribute access: pydantic private attributes are
        slow on the per-candidate path)."""
        return _Index(
            sources={s.id: s for s in self.sources},
            prices={p.resource: p for p in self.prices},
            modes={m.id: m for m in self.transport_modes},
            destinations={d.id: d for d in self.destinations},
            emissions={e.resource: e for e in self.resource_emissions},
        )

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Knowledge:
        if info.context and info.context.get("defer_cross_check"):
            return self
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(f"{_loc_text(loc)}: {msg}" for loc, msg in problems))
        return self

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references that a single entry cannot check: ids, duplicates, units."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        source_ids = {s.id for s in self.sources}
        keyed: list[tuple[str, list[Any], Any]] = [
            ("sources", self.sources, lambda e: e.id),
            ("destinations", self.destinations, lambda e: e.id),
            ("prices", self.prices, lambda e: e.resource),
            ("disposal_costs", self.disposal_costs, lambda e: (e.destination, e.resource)),
            ("resource_emissions", self.resource_emissions, lambda e: e.resource),
            ("disposal_emissions", self.disposal_emissions, lambda e: (e.destination, e.resource)),
            ("transport_modes", self.transport_modes, lambda e: e.id),
            ("rules", self.rules, lambda e: e.id),
        ]
        for section, entries, key in keyed:
            seen: set[Any] = set()
            for i, e in enumerate(entries):
                k = key(e)
                if k in seen:
                    out.append(((section, i), f"{k!r} is listed twice"))
                seen.add(k)
                src = getattr(e, "source", None)
                if src is not None and src not in source_ids:
                    out.append(((section, i, "source"), f"source {src!r} is not in sources"))
        modes = {m.id: m for m in self.transport_modes}
        for i, r in enumerate(self.rules):
            mode = modes.get(r.transport)
            if mode is None:
                out.append((("rules", i, "transport"), f"transport {r.transport!r} is unknown"))
            elif mode.unit != r.supply_unit:
                out.append(
                    (
                        ("rules", i, "transport"),
                        f"transport {mode.id!r} moves {mode.unit}, the supply is in {r.supply_unit}",
                    )
                )
            if r.preprocessing is not None and r.preprocessing.source not in source_ids:
                out.append(
                    (
                        ("rules", i, "preprocessing", "source"),
                        f"source {r.preprocessing.source!r} is not in sources",
                    )
                )
        rule_ids = {r.id for r in self.rules}
        for i, rid in enumerate(self.disable_rules):
            if rid not in rule_ids:
                out.append((("disable_rules", i), f"rule {rid!r} is unknown"))
        if self.matching.source not in source_ids:
            out.append(
                (("matching", "source"), f"source {self.matching.source!r} is not in sources")
            )
        return out

    # --- look-ups ---------------------------------------------------------------------------

    def active_rules(self) -> list[Rule]:
        off = set(self.disable_rules)
        return [r for r in self.rules if r.enabled and r.id not in off]

    def source(self, source_id: str) -> Source:
        return self.index.sources[source_id]

    def mode(self, mode_id: str) -> TransportMode:
        return self.index.modes[mode_id]

    def destination(self, dest: str | None) -> DestinationInfo | None:
        return self.index.destinations.get(dest) if dest else None

    def price(self, resource: str) -> Price | None:
        return self.index.prices.get(resource)

    def disposal_cost(self, destination: str | None, resource: str) -> DisposalCost | None:
        if destination is None:
            return None
        table: dict[str, DisposalCost | None] = {
            c.resource: c for c in self.disposal_costs if c.destination == destination
        }
        return _most_specific(table, resource, None)

    def resource_emission(
        self, resource: str, year: int
    ) -> tuple[float, ResourceEmission | None, int | None]:
        e = self.index.emissions.get(resource)
        if e is None:
            return 0.0, None, None
        value, used = e.per_unit(year)
        return value, e, used

    def disposal_emission(self, destination: str | None, resource: str) -> DisposalEmission | None:
        if destination is None:
            return None
        table: dict[str, DisposalEmission | None] = {
            e.resource: e for e in self.disposal_emissions if e.destination == destination
        }
        return _most_specific(table, resource, None)

    def label(self, name: str) -> str:
        """A plain-language name for a resource or use (``water.potable`` -> 'potable water')."""
        if name in self.labels:
            return self.labels[name]
        return name.rsplit(".", 1)[-1].replace("_", " ")


def _most_specific(table: dict[str, _T], resource: str, default: _T) -> _T:
    """The entry for the full resource name, else for its family, else ``default``."""
    if resource in table:
        return table[resource]
    family = resource.split(".", 1)[0]
    return table.get(family, default)


def _loc_text(loc: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for key in loc:
        parts.append(f"[{key}]" if isinstance(key, int) else ("." if parts else "") + str(key))
    return "".join(parts) or "(top level)"


# --- Loading and merging ----------------------------------------------------------------------

DEFAULT_KNOWLEDGE = Path(__file__).with_name("default.yaml")

# List sections and the fields that identify an entry: an override entry with the same key
# replaces the shipped one whole, so a figure always travels with its own source and date.
_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "sources": ("id",),
    "destinations": ("id",),
    "prices": ("resource",),
    "disposal_costs": ("destination", "resource"),
    "resource_emissions": ("resource",),
    "disposal_emissions": ("destination", "resource"),
    "transport_modes": ("id",),
    "rules": ("id",),
}
_APPEND_LISTS = ("disable_rules",)


def load_knowledge(path: str | None = None, override: str | None = None) -> Knowledge:
    """Read the knowledge file (the shipped default when ``path`` is None) and merge a park's
    override over it; raise KnowledgeError naming each problem's file and entry."""
    base_src = str(path) if path is not None else str(DEFAULT_KNOWLEDGE)
    base = _read(Path(base_src))
    if override is None:
        return _validate(base, lambda loc: base_src)
    over = _read(Path(override))
    merged, origin = merge_knowledge(base, over, base_src, str(override))
    return _validate(merged, origin)


def parse_knowledge(text: str, source: str = "<knowledge>") -> Knowledge:
    """Validate knowledge given as YAML text (tests, API uploads)."""
    return _validate(_parse(text, source), lambda loc: source)


def merge_knowledge(
    base: dict[str, Any], over: dict[str, Any], base_src: str, over_src: str
) -> tuple[dict[str, Any], Callable[[tuple[Any, ...]], str]]:
    """Merge ``over`` into ``base``; return the result and a function telling, for a location in
    it, which file the value came from (for error messages)."""
    merged: dict[str, Any] = dict(base)
    list_origin: dict[tuple[str, int], str] = {}
    problems: list[str] = []
    for section, value in over.items():
        if section in _LIST_KEYS:
            if not isinstance(value, list):
                problems.append(f"{over_src}: {section}: must be a list")
                continue
            merged[section], origins = _merge_list(
                list(base.get(section) or []), value, _LIST_KEYS[section], base_src, over_src
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
        if section in _LIST_KEYS and len(loc) > 1 and isinstance(loc[1], int):
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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError([f"{path}: cannot read: {exc}"]) from exc
    return _parse(text, str(path))


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = load_yaml(text)  # a repeated key is an error: it would silently drop entries
    except yaml.YAMLError as exc:
        raise KnowledgeError([f"{source}: {yaml_problem(exc)}"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KnowledgeError([f"{source}: top level must be a mapping"])
    return data


def _validate(data: dict[str, Any], origin: Callable[[tuple[Any, ...]], str]) -> Knowledge:
    try:
        knowledge = Knowledge.model_validate(data, context={"defer_cross_check": True})
    except ValidationError as exc:
        problems = [
            f"{origin(tuple(e['loc']))}: {_where(data, tuple(e['loc']))}: {message(e)}"
            for e in exc.errors()
        ]
        raise KnowledgeError(problems) from exc
    cross = knowledge.problems()
    if cross:
        raise KnowledgeError([f"{origin(loc)}: {_where(data, loc)}: {msg}" for loc, msg in cross])
    return knowledge


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """A path such as ``rules[2] ('steam_to_steam').gates[0].attribute``."""
    return where(data, loc, _entry_name)


def _entry_name(node: dict[str, Any]) -> str | None:
    if "id" in node:
        return repr(str(node["id"]))
    if "destination" in node and "resource" in node:
        return f"{node['destination']}/{node['resource']}"
    if "resource" in node:
        return repr(str(node["resource"]))
    return None
