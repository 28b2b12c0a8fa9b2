"""``parkflow serve`` and the detection commands: schedule, window and where state is kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field

from parkflow.settings import Settings


class ServiceSettings(Settings):
    state_path: Path = Field(
        default=Path("parkflow-state.sqlite"), description="runs, results, events (SQLite)"
    )
    database_url: str | None = Field(
        default=None,
        description="operational database (alerts, outbox): sqlite:///PATH or"
        " postgresql://USER:PASSWORD@HOST/DB; default a SQLite file next to state_path",
    )
    stale_factor: float = Field(
        default=3.0, gt=1, description="a meter is stale after this many expected intervals"
    )
    quarantine_alert_per_hour: float = Field(
        default=60.0, gt=0, description="a tenant's quarantined records per hour to alert on"
    )
    knowledge: Path | None = Field(
        default=None, description="a park's knowledge YAML overriding the shipped defaults"
    )
    window_days: int = Field(default=28, ge=1, le=366)
    detect_interval_s: float = Field(default=3600.0, gt=0, description="detection schedule")
    rollup_interval_s: float = Field(default=60.0, gt=0, description="rollup maintenance")
    now: datetime | None = Field(
        default=None,
        description="detect as of this time instead of the clock (replays, reports for a date)",
    )
    change_threshold: float = Field(
        default=0.25, gt=0, description="relative change of a surplus that makes an event"
    )

    # alerts: who hears of them (a contacts YAML file), and the servers that carry them
    alerts_contacts: Path | None = Field(
        default=None, description="alert contacts YAML (docs/alerts.md); none: no alerts sent"
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for alert e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "parkflow-alerts@localhost"
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    alerts_mqtt_host: str | None = Field(
        default=None, description="broker for tenants' alerts topics (user parkflow-alerts)"
    )
    alerts_mqtt_port: int = Field(default=1883, ge=1, le=65535)
    alerts_mqtt_username: str = "parkflow-alerts"
    alerts_mqtt_password: str | None = None

    # the dispatcher (`parkflow dispatch`)
    dispatch_interval_s: float = Field(
        default=0.2, gt=0, le=60, description="pause between passes when nothing is due"
    )
    dispatch_lanes: int = Field(
        default=16, ge=1, le=256, description="deliveries in flight at once (threads)"
    )
    dispatch_chunk: int = Field(
        default=500, ge=1, le=100_000, description="outcomes recorded per transaction"
    )
    dispatch_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve /metrics on 127.0.0.1 at this port"
    )
    endpoint_disable_after_s: float = Field(
        default=3 * 86400.0, gt=0, description="an endpoint failing this long is disabled"
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_path.parent / 'parkflow-operations.sqlite'}"
