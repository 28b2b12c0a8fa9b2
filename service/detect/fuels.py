"""Fuel meters in tonnes or cubic metres, turned into the kWh that detection and matching use.

A biomass boiler's wood is weighed and a gas burner's fuel is metered by volume, while rules,
prices and emission factors of energy speak of kWh. Detection multiplies such a meter's rows by
the fuel's heating value from the knowledge base once, when the panel is built, so everything
after it sees one unit per resource family. Pure.
"""

from __future__ import annotations

import math

from parkflow.registry.registry import Registry
from service.knowledge import Knowledge


def kwh_factors(registry: Registry, knowledge: Knowledge) -> tuple[dict[str, float], list[str]]:
    """kWh per stored unit for each fuel meter (NaN where the knowledge has no heating value,
    which leaves the meter out of detection), and a sentence for each such meter."""
    factors: dict[str, float] = {}
    problems: list[str] = []
    for park in registry.parks.values():
        for tenant in park.tenants:
            for meter in tenant.meters:
                basis = meter.fuel_basis
                if basis is None:
                    continue
                hv = knowledge.heating_value(meter.resource, basis)
                factors[meter.id] = hv.kwh_per_stored_unit if hv is not None else math.nan
                if hv is None:
                    problems.append(
                        f"meter {meter.id} ({park.id}/{tenant.id}): {meter.resource} metered"
                        f" in {meter.unit} needs a heating value by {basis} in the knowledge"
                        " (heating_values); left out of detection"
                    )
    return factors, problems
