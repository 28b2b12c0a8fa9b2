"""The park registry: parks, tenants and their meters, as pydantic models.

Unknown keys are errors (a typo must not silently drop a setting); later features extend these
models with new optional fields.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ingest.errors import UnitError
from ingest.model import Direction, MeterKind
from ingest.units import canonical_unit, factor

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
ResourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meter(_Model):
    id: Id
    resource: ResourceName = Field(description="dotted name, e.g. water.potable or energy.steam")
    direction: Direction
    unit: str = Field(description="the unit the gateway reports in, e.g. m3, L, kWh, MWh, kW, t")
    kind: MeterKind
    integration: Literal["trapezoid", "previous"] | None = Field(
        default=None,
        description="rate meters: trapezoid (linear between readings) or previous (step)",
    )
    max_gap_s: float = Field(
        default=3600.0,
        gt=0,
        description="rate meters: gaps longer than this are not integrated (no data, not zero)",
    )
    rollover: float | None = Field(
        default=None,
        gt=0,
        description="cumulative meters: the modulus the register wraps at (100000 for 5 digits)",
    )
    min: float | None = Field(
        default=None, description="lowest plausible value, in the meter's unit"
    )
    max: float | None = Field(
        default=None, description="highest plausible value, in the meter's unit"
    )
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Meter:
        rate = self.kind is MeterKind.RATE
        try:
            factor(self.unit, canonical_unit(self.resource, rate=rate))
        except UnitError as exc:
            what = "a rate unit such as kW or m3/h" if rate else "a quantity unit"
            raise ValueError(
                f"unit {self.unit!r} for {self.kind.value} meter needs {what}: {exc}"
            ) from None
        if self.integration is not None and not rate:
            raise ValueError("integration applies to rate meters only")
        if self.rollover is not None and self.kind is not MeterKind.CUMULATIVE:
            raise ValueError("rollover applies to cumulative meters only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        for name in ("min", "max", "rollover"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite")
        return self

    @property
    def canonical_unit(self) -> str:
        return canonical_unit(self.resource, rate=self.kind is MeterKind.RATE)

    @property
    def to_canonical(self) -> float:
        return factor(self.unit, self.canonical_unit)

    @property
    def integration_rule(self) -> str:
        return self.integration or "trapezoid"


class Tenant(_Model):
    id: Id
    name: str
    sector: str | None = None
    meters: list[Meter] = Field(default_factory=list)


class Park(_Model):
    id: Id
    name: str
    timezone: str = "Asia/Ho_Chi_Minh"
    tenants: list[Tenant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Park:
        problems = []
        tenants = [t.id for t in self.tenants]
        problems += [f"tenant id {d!r} is used twice" for d in _dupes(tenants)]
        meters = [m.id for t in self.tenants for m in t.meters]
        problems += [f"meter id {d!r} is used twice in the park" for d in _dupes(meters)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RegistryFile(_Model):
    version: Literal[1] = 1
    parks: list[Park]

    @model_validator(mode="after")
    def _unique(self) -> RegistryFile:
        dupes = _dupes([p.id for p in self.parks])
        if dupes:
            raise ValueError("; ".join(f"park id {d!r} is used twice" for d in dupes))
        return self


def _dupes(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for i in ids:
        if i in seen and i not in out:
            out.append(i)
        seen.add(i)
    return out
