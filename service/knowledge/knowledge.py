"""The knowledge base as one whole: what no single entry can check, and the look-ups matching uses.

A rule naming a transport mode or a source that does not exist, or two prices for one resource,
is only visible with every section at hand, so those checks live here rather than on the
entries. The look-ups are built once because matching asks them for every candidate pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationInfo, model_validator

from parkflow.yamlfile import where
from service.knowledge.entries import (
    DestinationInfo,
    Detection,
    DisposalCost,
    DisposalEmission,
    HeatingValue,
    Key,
    Matching,
    Price,
    ResourceEmission,
    Rule,
    Season,
    Source,
    Tariff,
    TimeOfUse,
    TransportMode,
    _Model,
    most_specific,
)

# List sections and the fields that identify an entry: no two entries of a section may share
# them, and an override entry with the same ones replaces the shipped entry whole.
ENTRY_KEYS: dict[str, tuple[str, ...]] = {
    "sources": ("id",),
    "destinations": ("id",),
    "prices": ("resource", "province"),
    "disposal_costs": ("destination", "resource"),
    "resource_emissions": ("resource",),
    "disposal_emissions": ("destination", "resource"),
    "heating_values": ("resource", "basis"),
    "tariffs": ("resource", "voltage"),
    "transport_modes": ("id",),
    "rules": ("id",),
}


@dataclass(frozen=True)
class _Index:
    sources: dict[str, Source]
    prices: dict[tuple[str, str | None], Price]
    modes: dict[str, TransportMode]
    destinations: dict[str, DestinationInfo]
    emissions: dict[str, ResourceEmission]
    heating: dict[tuple[str, str], HeatingValue]
    tariffs: dict[tuple[str, str], Tariff]


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
    heating_values: list[HeatingValue] = Field(default_factory=list)
    tariffs: list[Tariff] = Field(default_factory=list)
    time_of_use: TimeOfUse | None = None
    seasons: list[Season] = Field(default_factory=list)
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
            prices={(p.resource, _province(p.province)): p for p in self.prices},
            modes={m.id: m for m in self.transport_modes},
            destinations={d.id: d for d in self.destinations},
            emissions={e.resource: e for e in self.resource_emissions},
            heating={(h.resource, h.basis): h for h in self.heating_values},
            tariffs={(t.resource, t.voltage): t for t in self.tariffs},
        )

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Knowledge:
        if info.context and info.context.get("defer_cross_check"):
            return self
        problems = self.problems()
        if problems:
            # No data to name the entries from: the path alone, as where() spells it.
            raise ValueError("; ".join(f"{where(None, loc)}: {msg}" for loc, msg in problems))
        return self

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references that a single entry cannot check: ids, duplicates, units."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        source_ids = {s.id for s in self.sources}
        for section, fields in ENTRY_KEYS.items():
            seen: set[Any] = set()
            for i, e in enumerate(getattr(self, section)):
                key = tuple(getattr(e, f) for f in fields)
                named = tuple(x for x in key if x is not None)  # a default has no province
                k = named[0] if len(named) == 1 else named
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
            for j, src in enumerate(r.legal.sources if r.legal is not None else []):
                if src not in source_ids:
                    out.append(
                        (("rules", i, "legal", "sources", j), f"source {src!r} is not in sources")
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
        for i, season in enumerate(self.seasons):
            if season.source not in source_ids:
                out.append(
                    (("seasons", i, "source"), f"source {season.source!r} is not in sources")
                )
        if self.time_of_use is not None and self.time_of_use.source not in source_ids:
            out.append(
                (
                    ("time_of_use", "source"),
                    f"source {self.time_of_use.source!r} is not in sources",
                )
            )
        for name in ("source", "equipment_source", "finance_source"):
            src = getattr(self.matching, name)
            if src is not None and src not in source_ids:
                out.append((("matching", name), f"source {src!r} is not in sources"))
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

    def price(self, resource: str, province: str | None = None) -> Price | None:
        """The price in the park's province when the knowledge has one, else the default."""
        prices = self.index.prices
        if province is not None and (found := prices.get((resource, _province(province)))):
            return found
        return prices.get((resource, None))

    def disposal_cost(self, destination: str | None, resource: str) -> DisposalCost | None:
        return _for_destination(self.disposal_costs, destination, resource)

    def resource_emission(
        self, resource: str, year: int
    ) -> tuple[float, ResourceEmission | None, int | None]:
        e = self.index.emissions.get(resource)
        if e is None:
            return 0.0, None, None
        value, used = e.per_unit(year)
        return value, e, used

    def tariff(self, resource: str, voltage: str | None) -> Tariff | None:
        """The time-of-use tariff at this voltage (the default voltage when None); None when
        the resource has none or no band schedule is known."""
        if self.time_of_use is None:
            return None
        return self.index.tariffs.get((resource, voltage or self.matching.default_voltage))

    def heating_value(self, resource: str, basis: str) -> HeatingValue | None:
        return self.index.heating.get((resource, basis))

    def disposal_emission(self, destination: str | None, resource: str) -> DisposalEmission | None:
        return _for_destination(self.disposal_emissions, destination, resource)

    def use_names(self) -> set[str]:
        """The in-meter use names this knowledge knows: those its rules replace, and those it
        labels (uses no rule may replace on purpose, such as boiler feed)."""
        named = {u for r in self.rules for u in r.uses or ()}
        return named | {k for k in self.labels if "." not in k}

    def use_meanings(self) -> dict[str, str]:
        """Each known use name in words, with the rules that may replace it (the registry
        reference lists them)."""
        out = {}
        for name in sorted(self.use_names()):
            rules = [r.id for r in self.active_rules() if name in (r.uses or ())]
            by = ", ".join(f"`{r}`" for r in rules) if rules else "no rule: it is never replaced"
            out[name] = (
                f"{self.label(name)}; replaced by {by}" if rules else f"{self.label(name)}; {by}"
            )
        return out

    def label(self, name: str) -> str:
        """A plain-language name for a resource or use (``water.potable`` -> 'potable water')."""
        if name in self.labels:
            return self.labels[name]
        return name.rsplit(".", 1)[-1].replace("_", " ")


def _province(name: str | None) -> str | None:
    """Provinces compared without case or spacing differences ("Dong Nai", "dong nai")."""
    return " ".join(name.casefold().split()) if name is not None else None


_ByDestination = TypeVar("_ByDestination", DisposalCost, DisposalEmission)


def _for_destination(
    entries: list[_ByDestination], destination: str | None, resource: str
) -> _ByDestination | None:
    """The most specific entry for a stream sent to ``destination`` (none when it goes nowhere)."""
    if destination is None:
        return None
    table: dict[str, _ByDestination | None] = {
        e.resource: e for e in entries if e.destination == destination
    }
    return most_specific(table, resource, None)
