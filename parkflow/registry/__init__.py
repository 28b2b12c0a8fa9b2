"""The park registry: which parks, tenants and meters exist, and what each meter measures."""

from pathlib import Path

from parkflow.registry.load import load_registry, parse_registry
from parkflow.registry.registry import Registry, ResolvedMeter
from parkflow.registry.schema import Meter, Park, RegistryFile, Tenant

SAMPLE_REGISTRY = Path(__file__).with_name("sample_park.yaml")

__all__ = [
    "SAMPLE_REGISTRY",
    "Meter",
    "Park",
    "Registry",
    "RegistryFile",
    "ResolvedMeter",
    "Tenant",
    "load_registry",
    "parse_registry",
]
