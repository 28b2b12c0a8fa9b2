"""Wiring for ``parkflow ingest``: settings -> registry, store, ingestor, status endpoint, signals."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ingest.csv_rows import CsvMapping
from ingest.importer import ImportSummary, import_csv
from ingest.pipeline import Ingestor
from ingest.settings import IngestSettings
from ingest.status import StatusServer
from ingest.validate import Limits, Validator
from parkflow.errors import InputError, PayloadError
from parkflow.registry import Registry
from parkflow.settings import Settings
from parkflow.store import store_from_settings, store_label
from parkflow.timeunits import days_ms
from parkflow.topics import topic_for

log = logging.getLogger("parkflow.ingest")


def serve(settings: IngestSettings) -> int:
    """Run until SIGTERM or SIGINT; exit code 0 after a clean stop, 1 when a part of the
    ingestor failed unexpectedly (the supervisor restarts it; nothing unacked is lost)."""
    registry = settings.load_registry()  # first: a bad one must not leave a store opened
    log.info(
        "ingest starting",
        extra={
            "broker": f"{settings.mqtt_host}:{settings.mqtt_port}",
            "mqtt_version": settings.mqtt_version,
            "mqtt_username": settings.mqtt_username,  # never the password
            "client_id": settings.client_id,
            "partition": settings.partition,
            "parks": settings.park_ids or "all",
            "store": store_label(settings),
            "registry": str(settings.registry.resolve()) if settings.registry else None,
        },
    )
    store = store_from_settings(settings)  # SQLite: the file and its schema exist from here
    ingestor = Ingestor(settings, registry, store)
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
        # The bound port: with PARKFLOW_HTTP_PORT=0 the system picked it, and this says which.
        log.info(
            "status endpoint up",
            extra={
                "address": f"http://{_host_for_url(status.host)}:{status.port}",
                "host": status.host,
                "port": status.port,
            },
        )

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        ingestor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        ingestor.run()
    finally:
        if status:
            status.stop()
        store.close()
    return 1 if ingestor.failed else 0


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def import_meter(registry: Registry, meter: str) -> tuple[str, str, str]:
    """``PARK/TENANT/METER`` as a registered meter's ids, before any long work starts."""
    ids = tuple(meter.split("/"))
    if len(ids) != 3:
        raise InputError("--meter takes PARK/TENANT/METER")
    try:
        Validator(registry).resolve(topic_for(*ids))
    except PayloadError as exc:
        raise InputError(f"{meter}: {exc.detail}") from exc
    return ids[0], ids[1], ids[2]


def import_file(
    settings: Settings,
    registry: Registry,
    path: Path,
    ids: tuple[str, str, str],
    mapping: CsvMapping,
    horizon_days: float,
    progress: Callable[[int], object] | None = None,
) -> ImportSummary:
    """``parkflow import``: one meter's CSV history through the ingest checks into the store."""
    store = store_from_settings(settings)
    try:
        limits = Limits(horizon_ms=days_ms(horizon_days))
        return import_csv(path, store, registry, *ids, mapping, limits, progress=progress)
    finally:
        store.close()
