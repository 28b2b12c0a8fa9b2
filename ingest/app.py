"""Wiring for ``parkflow ingest``: settings -> registry, store, ingestor, status endpoint, signals."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from ingest.pipeline import Ingestor
from ingest.settings import IngestSettings
from ingest.status import StatusServer
from parkflow.store import store_from_settings

log = logging.getLogger("parkflow.ingest")


def build(settings: IngestSettings) -> Ingestor:
    registry = settings.load_registry()
    return Ingestor(settings, registry, store_from_settings(settings))


def serve(settings: IngestSettings) -> int:
    """Run until SIGTERM or SIGINT; exit code 0 after a clean stop."""
    ingestor = build(settings)
    status: StatusServer | None = None
    if settings.http_port is not None:
        status = StatusServer(
            settings.http_host,
            settings.http_port,
            ingestor.metrics.registry,
            lambda: {
                "ready": ingestor.ready,
                "mqtt_connected": ingestor.connected,
                "store_ok": ingestor.store_ok,
            },
            timeout=settings.http_idle_timeout_s,
        )
        status.start()
        log.info("status endpoint up", extra={"port": status.port})

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        ingestor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info(
        "ingest starting",
        extra={
            "client_id": settings.client_id,
            "broker": f"{settings.mqtt_host}:{settings.mqtt_port}",
            "store": settings.influx_url or str(settings.sqlite_path),
        },
    )
    try:
        ingestor.run()
    finally:
        if status:
            status.stop()
        ingestor.store.close()
    return 0
