"""Fast look-ups over a validated registry, as the ingestor and detection need them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from parkflow.errors import ConfigError
from parkflow.model import PHYSICAL_LIMIT, MeterKey
from parkflow.registry.schema import Meter, Park, RegistryFile, Tenant


@dataclass(frozen=True, slots=True)
class ResolvedMeter:
    """A meter with everything the hot path needs precomputed."""

    park: Park
    tenant: Tenant
    meter: Meter
    to_canonical: float  # multiply a value in meter.unit by this
    value_min: float = -math.inf  # the meter's plausible range, in its own unit, within
    value_max: float = math.inf  # PHYSICAL_LIMIT whatever the registry says

    @property
    def key(self) -> MeterKey:
        return MeterKey(self.park.id, self.tenant.id, self.meter.id)


class Registry:
    def __init__(self, model: RegistryFile) -> None:
        self.model = model
        self.parks: dict[str, Park] = {p.id: p for p in model.parks}
        self._meters: dict[tuple[str, str, str], ResolvedMeter] = {}
        self._owner: dict[tuple[str, str], str] = {}  # (park, meter) -> tenant
        self._tenants: set[tuple[str, str]] = set()
        for p in model.parks:
            for t in p.tenants:
                self._tenants.add((p.id, t.id))
                for m in t.meters:
                    to_canonical = m.to_canonical
                    limit = PHYSICAL_LIMIT / to_canonical
                    self._meters[(p.id, t.id, m.id)] = ResolvedMeter(
                        p,
                        t,
                        m,
                        to_canonical,
                        -limit if m.min is None else max(m.min, -limit),
                        limit if m.max is None else min(m.max, limit),
                    )
                    self._owner[(p.id, m.id)] = t.id

    def meter(self, park: str, tenant: str, meter: str) -> ResolvedMeter | None:
        return self._meters.get((park, tenant, meter))

    def has_tenant(self, park: str, tenant: str) -> bool:
        return (park, tenant) in self._tenants

    def owner_of(self, park: str, meter: str) -> str | None:
        """The tenant that owns a meter id in a park, to tell a wrong topic from an unknown meter."""
        return self._owner.get((park, meter))

    def meters(self) -> list[ResolvedMeter]:
        return list(self._meters.values())

    def only(self, parks: Iterable[str]) -> Registry:
        """The registry of some of its parks: what one shard (a park's broker and its
        ingestors) serves. An id the registry does not hold is a configuration error, not an
        empty shard that would accept nothing and say nothing."""
        wanted = self.require_parks(parks)
        return Registry(
            self.model.model_copy(update={"parks": [p for p in self.model.parks if p.id in wanted]})
        )

    def require_parks(self, parks: Iterable[str]) -> set[str]:
        """``parks``, every one of them in the registry (``ConfigError`` naming those not)."""
        wanted = set(parks)
        unknown = sorted(wanted - self.parks.keys())
        if unknown:
            raise ConfigError("settings", [f"park {p!r} is not in the registry" for p in unknown])
        return wanted

    def tenant_ids(self, park: str) -> list[str]:
        return [t.id for t in self.parks[park].tenants] if park in self.parks else []
