"""Load and validate a registry YAML file, collecting every problem with where it is."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from parkflow.errors import RegistryError
from parkflow.registry.registry import Registry
from parkflow.registry.schema import RegistryFile
from parkflow.registry.vocabulary import alias_of
from parkflow.yamlfile import load_mapping, read_text, validate_model


def load_registry(path: str | Path) -> Registry:
    source = str(path)
    return parse_registry(read_text(path, partial(RegistryError, source)), source)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    fail = partial(RegistryError, source)
    data = load_mapping(text, source, fail, shape="a mapping with 'parks'")
    return Registry(validate_model(RegistryFile, data, fail, source, alias=alias_of))
