"""What the API's routes read and write, opened once per process: the registry, the store,
the detection results, the operational database and its repositories, the pepper."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from parkflow.registry import Registry
from parkflow.store import Store, store_from_settings
from service.alerts.consents import ConsentRepository
from service.alerts.repository import AlertRepository
from service.api.answers import Answers
from service.api.views import Consents
from service.auth import KeyRepository, Pepper, load_pepper
from service.exchanges.repository import ExchangeRepository
from service.results import ResultsDb
from service.settings import ServiceSettings
from service.state import Database, require_current


@dataclass
class ApiContext:
    settings: ServiceSettings
    registry: Registry
    store: Store
    results: ResultsDb
    db: Database
    pepper: Pepper
    consents: Consents | None = None
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.alerts = AlertRepository(self.db)
        self.keys = KeyRepository(self.db, self.pepper)
        self.consent_records = ConsentRepository(self.db)
        self.exchanges = ExchangeRepository(self.db)
        self._names: dict[str, dict[str, str]] = {}
        self.answers = Answers()
        if self.consents is None:
            self.consents = self.consent_records

    def introduced(self, opportunity_id: str, parties: tuple[str, str]) -> bool:
        assert self.consents is not None
        return self.consents.introduced(opportunity_id, parties)

    def introduced_among(self, parties: Mapping[str, tuple[str, str]]) -> set[str]:
        assert self.consents is not None
        return self.consents.introduced_among(parties)

    def close(self) -> None:
        self.store.close()
        self.results.close()
        self.db.close()

    def names(self, park: str) -> dict[str, str]:
        """Tenant id -> name of a park (the registry is the process's: made once)."""
        if park not in self._names:
            p = self.registry.parks.get(park)
            self._names[park] = {} if p is None else {t.id: t.name for t in p.tenants}
        return self._names[park]


def pepper_of(settings: ServiceSettings) -> Pepper:
    secret = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return load_pepper(secret, settings.resolved_pepper_path())


def open_context(settings: ServiceSettings) -> ApiContext:
    """A context of its own, closed with ``close`` (``parkflow serve`` gives the API the
    service's own store, results and database instead)."""
    db = Database(settings.resolved_database_url())
    try:
        require_current(db)
        registry = settings.load_registry()
        store = store_from_settings(settings)
    except BaseException:
        db.close()
        raise
    results = ResultsDb(db)
    return ApiContext(settings, registry, store, results, db, pepper_of(settings))
