"""``parkflow serve`` and the detection commands: schedule, window and where state is kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr

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

    # the HTTP API (``parkflow serve``)
    http_host: str = Field(default="127.0.0.1", description="the API's address (loopback)")
    http_port: int = Field(default=8000, ge=0, le=65535, description="the API's port (0: any)")
    api_key_pepper: SecretStr | None = Field(
        default=None,
        description="the server secret API keys are hashed with (32+ characters); default a"
        " file next to state_path, made once",
    )
    api_max_page: int = Field(default=1000, ge=1, le=10000, description="largest page size")

    def resolved_pepper_path(self) -> Path:
        return self.state_path.parent / "parkflow-api-pepper"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_path.parent / 'parkflow-operations.sqlite'}"
