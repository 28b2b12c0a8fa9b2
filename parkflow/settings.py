"""The settings every parkflow process shares, from environment variables prefixed PARKFLOW_:
which park registry, and where readings live. Each process adds its own on top
(``ingest.settings``, ``service.settings``); one class per process, so each reads the same
variables the same way."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from parkflow.errors import ConfigError
from parkflow.registry import Registry, load_registry


class Settings(BaseSettings):
    """Shared by every parkflow process (the same PARKFLOW_ variables)."""

    model_config = SettingsConfigDict(env_prefix="PARKFLOW_", extra="ignore")

    registry: Path | None = Field(
        default=None,
        description="park registry YAML; required: only the demo and the simulator fall back"
        " to the sample park, so a real park's readings are never checked against it",
    )

    # stores: InfluxDB when a URL is set, else the embedded SQLite file
    influx_url: str | None = None
    influx_database: str = "parkflow"
    influx_retention_policy: str | None = None
    influx_username: str | None = None
    influx_password: str | None = None
    influx_token: str | None = None
    influx_timeout_s: float = 10.0
    influx_create_database: bool = Field(
        default=True,
        description="CREATE DATABASE (idempotent) when the process first reaches InfluxDB: at"
        " start when it answers (the ingestor pings it), else before the first write or read,"
        " so a process may start while InfluxDB is still down",
    )
    sqlite_path: Path = Field(
        default=Path("parkflow.sqlite"),
        description="the embedded store: the file, its folder and its schema are created when"
        " the process starts and opens the store, before anything is written",
    )

    def load_registry(self) -> Registry:
        if self.registry is None:
            raise ConfigError(
                "settings",
                [
                    "no park registry: set PARKFLOW_REGISTRY or pass --registry"
                    " (`parkflow simulate --no-publish` writes one for the sample park)"
                ],
            )
        return load_registry(self.registry)
