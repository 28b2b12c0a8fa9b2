"""``parkflow ingest``'s settings, on top of the shared ones (``parkflow.settings``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ingest.mqtt.partition import Partition
from ingest.validate import Limits
from parkflow.registry import Registry
from parkflow.settings import Settings
from parkflow.timeunits import days_ms


class IngestSettings(Settings):
    """``parkflow ingest``: the broker session, batching, retries and validation limits."""

    # MQTT
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_version: Literal["5", "3.1.1"] = "5"
    client_id: str = Field(
        default="",
        description="fixed: it names the session; default: the MQTT user name (the broker"
        " binds client ids to user names), else parkflow-ingest-1",
    )
    partition: str = Field(
        default="1/1",
        description="MEMBER/MEMBERS: which share of the park's tenants this ingestor takes"
        " (plain persistent subscriptions, see ingest/mqtt/partition.py)",
    )
    parks: str = Field(
        default="",
        description="the parks this ingestor serves, comma-separated (a park's broker and its"
        " ingestors are one shard; the park id is the key): it subscribes their topics only;"
        " default: every park of the registry",
    )
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    receive_maximum: int = Field(
        default=20000, ge=1, le=65535, description="unacked messages the broker may send us at once"
    )
    max_pending_messages: int = Field(
        default=20000,
        ge=1,
        description="received-but-unacked messages held in memory before we stop reading the socket",
    )
    max_pending_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="payload bytes held in memory before we stop reading the socket",
    )
    max_packet_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=4096,
        description="MQTT v5 Maximum Packet Size we announce; keep it above the broker's"
        " max_packet_size, or the broker drops bigger messages for us instead of delivering them",
    )
    keepalive_s: int = Field(default=30, ge=5)
    checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="how often the ingestor confirms its broker session and subscription"
        " layout in the store (other members wait for a confirmation to drop old filters)",
    )

    # quarantine quota per tenant and ingestor: beyond it rejections are counted, not kept
    quarantine_burst_records: int = Field(default=2000, ge=1)
    quarantine_records_per_s: float = Field(default=20.0, gt=0)
    quarantine_burst_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    quarantine_bytes_per_s: float = Field(default=256 * 1024, gt=0)

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
    http_idle_timeout_s: float = Field(
        default=5.0, gt=0, description="the status endpoint closes a connection silent this long"
    )
    log_format: Literal["json", "text"] = "json"

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: str) -> str:
        return str(Partition.parse(value))

    @model_validator(mode="after")
    def _client_id(self) -> IngestSettings:
        if not self.client_id:
            self.client_id = self.mqtt_username or "parkflow-ingest-1"
        return self

    @property
    def park_ids(self) -> list[str]:
        return [p.strip() for p in self.parks.split(",") if p.strip()]

    @property
    def partition_spec(self) -> Partition:
        return Partition.parse(self.partition, self.park_ids)

    def load_registry(self) -> Registry:
        """The whole registry, once the parks this ingestor serves are found in it: readings
        that reach it of other parks (an earlier layout's subscriptions, until they are
        dropped) are still checked and stored, never lost."""
        registry = super().load_registry()
        registry.require_parks(self.park_ids)  # an unknown park id: the message, at start
        return registry

    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_batch=self.max_batch,
            future_tolerance_ms=int(self.future_tolerance_s * 1000),
            horizon_ms=days_ms(self.horizon_days),
        )
