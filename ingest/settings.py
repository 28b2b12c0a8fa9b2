"""Settings from environment variables prefixed PARKFLOW_: the store's, shared, and the ingestor's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.registry import SAMPLE_REGISTRY
from ingest.validate import Limits


class StoreSettings(BaseSettings):
    """Where readings live; shared by every parkflow process (same PARKFLOW_ variables)."""

    model_config = SettingsConfigDict(env_prefix="PARKFLOW_", extra="ignore")

    registry: Path = Field(default=SAMPLE_REGISTRY, description="park registry YAML")

    # stores: InfluxDB when a URL is set, else the embedded SQLite file
    influx_url: str | None = None
    influx_database: str = "parkflow"
    influx_retention_policy: str | None = None
    influx_username: str | None = None
    influx_password: str | None = None
    influx_token: str | None = None
    influx_timeout_s: float = 10.0
    influx_create_database: bool = Field(default=True, description="CREATE DATABASE on start")
    sqlite_path: Path = Path("parkflow.sqlite")


class IngestSettings(StoreSettings):
    """``parkflow ingest``: the broker session, batching, retries and validation limits."""

    # MQTT
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_version: Literal["5", "3.1.1"] = "5"
    client_id: str = Field(default="parkflow-ingest-1", description="fixed: it names the session")
    share_group: str | None = Field(
        default="parkflow", description="MQTT v5 shared subscription group; empty for none"
    )
    topic_filter: str = "ip/+/+/+/readings"
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    receive_maximum: int = Field(
        default=20000, ge=1, le=65535, description="unacked messages the broker may send us at once"
    )
    max_pending_messages: int = Field(
        default=20000,
        ge=1,
        description="received-but-unacked messages held in memory before we stop reading the socket",
    )
    keepalive_s: int = Field(default=30, ge=5)

    # batching and retries
    batch_size: int = Field(default=5000, ge=1, description="readings per store write")
    flush_interval_s: float = Field(default=0.2, gt=0, description="max age of a batch")
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)

    # validation limits
    data_format: str = "json"
    max_payload_bytes: int = 512 * 1024
    max_batch: int = 1000
    future_tolerance_s: float = 300.0
    horizon_days: float = 400.0

    # observability: /metrics, /healthz, /readyz; port 0 picks a free port, None disables
    http_host: str = "127.0.0.1"
    http_port: int | None = 9108
    log_format: Literal["json", "text"] = "json"

    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_batch=self.max_batch,
            future_tolerance_ms=int(self.future_tolerance_s * 1000),
            horizon_ms=int(self.horizon_days * 86_400_000),
        )
