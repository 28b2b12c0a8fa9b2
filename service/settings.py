"""``parkflow serve`` and the detection commands: schedule, window and where state is kept."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from parkflow.errors import ConfigError
from parkflow.settings import Settings

EMBEDDED_DATABASE = Path("parkflow-operations.sqlite")


class ServiceSettings(Settings):
    database_url: str | None = Field(
        default=None,
        description="operational database (detection runs and results, alerts, outbox):"
        f" sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB; default {EMBEDDED_DATABASE}"
        " in the working directory (embedded)",
    )
    state_path: Path | None = Field(
        default=None,
        description="retired: detection results are in the operational database"
        " (database_url); set, it stops the process with what to set instead",
    )
    stale_factor: float = Field(
        default=3.0, gt=1, description="a meter is stale after this many expected intervals"
    )
    quarantine_alert_per_hour: float = Field(
        default=60.0, gt=0, description="a tenant's quarantined records per hour to alert on"
    )
    alert_data_window_s: float = Field(
        default=86400.0,
        gt=0,
        description="a counter reset or a spike keeps its alert's condition holding this long",
    )
    ingest_lag_factor: float = Field(
        default=3.0,
        gt=1,
        description="a park's ingest lags when even its freshest meter is this many expected"
        " intervals old",
    )
    underperforming_share: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="an exchange under-performs below this share of its projection ...",
    )
    underperforming_days: int = Field(
        default=3, ge=1, description="... on each of its last this many measured days"
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

    # replicas: N `parkflow serve` over one PostgreSQL, parks leased to them (service/leases.py)
    lease_s: float | None = Field(
        default=None,
        gt=0,
        description="lease parks to this replica for this many seconds, renewed each third of"
        " it (run several serve over one PostgreSQL: each park's detection, alerts and savings"
        " on one of them, moving within this time when it dies); unset: this process does"
        " every park (one replica)",
    )
    replica_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        min_length=1,
        max_length=200,
        description="this replica's name in the leases (default host-pid-random: a restart is"
        " a new replica, its old leases expiring; containers sharing a host name and pid 1"
        " still differ); unique per replica: two replicas of one name pass each other's fences",
    )
    dispatch_claim_s: float = Field(
        default=30.0,
        gt=0,
        description="a dispatcher claims the notifications it attempts for this long, renewed"
        " while it attempts them: another dispatcher skips them meanwhile, and sends them once"
        " the claim expires if the first died",
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

    @model_validator(mode="after")
    def _state_path_retired(self) -> Self:
        """Ignoring the old setting would quietly start an empty database elsewhere, its
        alerts and their history apparently gone: say where they are instead."""
        if self.state_path is None:
            return self
        kept = f"sqlite:///{self.state_path.parent / EMBEDDED_DATABASE}"
        raise ConfigError(
            "settings",
            [
                f"PARKFLOW_STATE_PATH ({self.state_path}) is retired: detection runs and"
                " results are now kept in the operational database with the alerts"
                " (PARKFLOW_DATABASE_URL). To keep the database that was beside it, set"
                f" PARKFLOW_DATABASE_URL={kept} and unset PARKFLOW_STATE_PATH, then run"
                " `parkflow db upgrade` and `parkflow detect` (the old results file is not"
                " read: detection recomputes the results from the stored readings)",
            ],
        )

    @property
    def embedded_database(self) -> bool:
        """No URL given: the SQLite file this process may create on its own."""
        return not self.database_url

    # the HTTP API (``parkflow serve``)
    http_host: str = Field(default="127.0.0.1", description="the API's address (loopback)")
    http_port: int = Field(default=8000, ge=0, le=65535, description="the API's port (0: any)")
    api_key_pepper: SecretStr | None = Field(
        default=None,
        description="the server secret API keys are hashed with (32+ characters); default"
        " the pepper file, made once",
    )
    api_key_pepper_file: Path = Field(
        default=Path("parkflow-api-pepper"),
        description="where the pepper is kept when api_key_pepper is not set (mode 0600)",
    )
    demo_mode: bool = Field(
        default=False,
        description="`parkflow demo` only: the operator overview opens without a key (read only)",
    )
    api_threads: int = Field(
        default=4,
        ge=1,
        le=200,
        description="API requests handled at once per process (the rest queue, in order)",
    )
    api_max_page: int = Field(default=1000, ge=1, le=10000, description="largest page size")

    # the pages (``/web``)
    web_secure_cookie: bool = Field(
        default=True,
        description="mark the pages' cookies Secure (sent over HTTPS only); off only for"
        " plain HTTP on loopback",
    )
    web_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="how long a sign-in lasts"
    )

    def resolved_pepper_path(self) -> Path:
        return self.api_key_pepper_file

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{EMBEDDED_DATABASE}"
