"""Seeded scenarios of the fictional Song Lam park: registry, flows, faults, planted cases. Pure.

The default scenario is the sample registry (``parkflow/registry/sample_park.yaml``) as it is,
with the flows its comments promise (``sample``): the planted opportunities flow, the planted
non-opportunities fail for their stated reason (quality, distance, timing, size, an exchange
already in place). A seed redraws levels, noise, patterns, sites and each case's variant
(``variants``). Either way the scenario declares its planted cases (``cases``): what each link
is, why, and how its quantity is reckoned.

Every design is checked over four windows across the year (``oracle``): a design with a case
whose figures do not clearly give its declared verdict, in any season, is redrawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from parkflow.registry.schema import Park, RegistryFile
from service.knowledge import Knowledge
from service.simulate.cases import Case, planted_cases
from service.simulate.flows import Fault
from service.simulate.oracle import Verdict, judge
from service.simulate.profiles import Profile
from service.simulate.sample import DEFAULT_NOISE_SEED, PARK, default_faults, default_profiles
from service.simulate.variants import default_variants, draw

WINDOW_DAYS = 28
# Windows the design must give the same clear answer in: one per season.
CHECK_WINDOW_ENDS = ("2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15")


@dataclass(frozen=True)
class Scenario:
    """A park design: the registry, each meter's designed flow, the faults and cases planted."""

    name: str
    seed: int | None
    registry: RegistryFile
    profiles: Mapping[str, Profile]
    faults: tuple[Fault, ...]
    noise_seed: int
    variants: Mapping[str, str]  # case name -> the variant drawn
    cases: tuple[Case, ...]  # the planted links the variants imply

    @property
    def park(self) -> Park:
        return self.registry.parks[0]

    def registry_yaml(self) -> str:
        """The registry as YAML, loadable by ``parkflow ingest`` and ``registry check``."""
        data = self.registry.model_dump(mode="json", exclude_none=True)
        head = (
            f"# Written by `parkflow simulate` ({self.name}). The park registry this scenario"
            " implies:\n# locations, uses, quality and exchanges are what detection reads.\n"
        )
        return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def verdicts(self, knowledge: Knowledge, start_ms: int, end_ms: int) -> list[Verdict]:
        """The planted cases' declared figures and verdicts over [start_ms, end_ms)."""
        return judge(self.park, self.profiles, self.cases, knowledge, start_ms, end_ms)


def default_scenario(base: RegistryFile) -> Scenario:
    """The sample park with the flows its comments describe."""
    _check_base(base)
    return Scenario(
        name="default",
        seed=None,
        registry=base,
        profiles=default_profiles(),
        faults=default_faults(),
        noise_seed=DEFAULT_NOISE_SEED,
        variants=default_variants(),
        cases=planted_cases(default_variants()),
    )


def build_scenario(base: RegistryFile, seed: int | None, knowledge: Knowledge) -> Scenario:
    """The default scenario without a seed, else a random one."""
    if seed is None:
        return default_scenario(base)
    return random_scenario(base, seed, knowledge)


def random_scenario(
    base: RegistryFile, seed: int, knowledge: Knowledge, *, attempts: int = 300
) -> Scenario:
    """A design drawn from ``seed``; designs whose cases are not clear are redrawn."""
    _check_base(base)
    if seed < 0:
        raise ValueError("seed must be >= 0")
    rng = np.random.default_rng((seed, 1))
    last = ""
    for _ in range(attempts):
        d = draw(base, rng)
        scenario = Scenario(
            name=f"seed-{seed}",
            seed=seed,
            registry=d.registry,
            profiles=d.profiles,
            faults=d.faults,
            noise_seed=seed,
            variants=d.variants,
            cases=planted_cases(d.variants),
        )
        problem = unclear(scenario, knowledge)
        if problem is None:
            return scenario
        last = problem
    raise ValueError(f"seed {seed}: no clear design in {attempts} draws (last: {last})")


def detection_window(now_ms: int, timezone: str, days: int = WINDOW_DAYS) -> tuple[int, int]:
    """The window detection is to look at for ``now``: the ``days`` whole local days before
    today, as UTC ms."""
    end = pd.Timestamp(now_ms, unit="ms", tz="UTC").tz_convert(timezone).normalize()
    start = end - pd.DateOffset(days=days)
    return int(start.value // 1_000_000), int(end.value // 1_000_000)


def check_windows(timezone: str) -> list[tuple[int, int]]:
    """Detection windows spread over a year, one per season."""
    return [
        detection_window(int(pd.Timestamp(day, tz="UTC").value // 1_000_000), timezone)
        for day in CHECK_WINDOW_ENDS
    ]


def unclear(scenario: Scenario, knowledge: Knowledge) -> str | None:
    """Why some planted case has no clear answer in some season, or None."""
    for start, end in check_windows(scenario.park.timezone):
        for v in scenario.verdicts(knowledge, start, end):
            if v.ambiguous is not None:
                return f"{v.id}: {v.ambiguous}"
    return None


def _check_base(base: RegistryFile) -> None:
    park = base.parks[0] if base.parks else None
    have = {m.id for t in park.tenants for m in t.meters} if park else set()
    missing = sorted(set(default_profiles()) - have)
    if park is None or park.id != PARK or missing:
        raise ValueError(
            f"the simulator models the sample park {PARK!r}; missing meters: {missing[:5]}"
        )
