"""``parkflow serve``: keep rollups current, run detection on a schedule, serve the API."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Collection
from types import FrameType

import pandas as pd
from prometheus_client import start_http_server

from parkflow.errors import ConfigError, StoreError
from parkflow.registry import Registry
from parkflow.store import store_from_settings
from parkflow.timeunits import DAY_MS, days_ms, now_ms
from service.alerts.backoff import BackoffPolicy
from service.alerts.contacts import Contacts, load_contacts
from service.alerts.delivery import Disabled
from service.alerts.dispatch import Dispatcher
from service.alerts.evaluate import AlertPolicy, evaluate_alerts
from service.alerts.kinds import ENDPOINT_DISABLED
from service.alerts.lifecycle import observe
from service.alerts.notify import ContactsNotifier, Notifier, TopicNotifier
from service.alerts.repository import AlertRepository
from service.alerts.routing import ContactChannels, mqtt_channel, smtp_server
from service.alerts.sources import ALL_PARKS
from service.api.context import ApiContext, pepper_of
from service.exchanges.detection import with_registered
from service.exchanges.repository import ExchangeRepository
from service.exchanges.verify import refresh
from service.knowledge import load_knowledge
from service.leases import LeaseLost, Leases
from service.results import ResultsDb
from service.rollups.worker import RollupWorker, RunStats
from service.runs import RunResult, run_detection
from service.settings import EMBEDDED_DATABASE, ServiceSettings
from service.state import Database, Fence, current_revision, require_current, upgrade

log = logging.getLogger("parkflow.service")


def open_database(settings: ServiceSettings, *, create_embedded: bool = False) -> Database:
    """The operational database, at this code's revision, or ``ConfigError`` saying to run
    ``parkflow db upgrade``. With ``create_embedded`` a never-migrated embedded SQLite file
    (no URL set) is migrated here, so a fresh machine's first ``parkflow detect`` needs no
    set-up; a database someone named, or one already in use, is upgraded only knowingly."""
    db = Database(settings.resolved_database_url())
    try:
        if create_embedded and settings.embedded_database and current_revision(db) is None:
            _, after = upgrade(db)
            log.info("created the operational database at %s (revision %s)", db.shown, after)
        require_current(db)
    except BaseException:
        db.close()
        raise
    return db


def open_database_if_any(settings: ServiceSettings) -> Database | None:
    """For commands that only read: ``None`` when nothing was ever recorded (no embedded file
    yet, or a database never migrated), so a look on a fresh machine creates nothing; a
    database behind this code's revision is ``ConfigError``, as for ``open_database``."""
    if settings.embedded_database and not EMBEDDED_DATABASE.exists():
        return None
    db = Database(settings.resolved_database_url())
    try:
        if current_revision(db) is None:
            db.close()
            return None
        require_current(db)
    except BaseException:
        db.close()
        raise
    return db


class _Service:
    """What both entry points use and close: registry, knowledge, store, database, rollups.
    The database comes opened (``open_database``): each entry point decides what it may create
    and what comes first."""

    def __init__(self, settings: ServiceSettings, registry: Registry, db: Database) -> None:
        self.settings = settings
        self.registry = registry
        self.db = db
        try:
            knowledge = str(settings.knowledge) if settings.knowledge else None
            self.knowledge = load_knowledge(override=knowledge)
            self.store = store_from_settings(settings)
        except BaseException:
            db.close()
            raise
        self.state = ResultsDb(db)
        self.rollups = RollupWorker(self.store, self.registry)

    def detection_registry(self) -> Registry:
        """The registry detection subtracts exchanges by (the long-running service adds the
        database's running exchanges)."""
        return self.registry

    def detect(
        self, trigger: str, park: str | None = None, fence: Fence | None = None
    ) -> RunResult:
        s = self.settings
        return run_detection(
            self.store,
            self.detection_registry(),
            self.knowledge,
            self.state,
            now=pd.Timestamp(s.now) if s.now else None,
            window_days=s.window_days,
            trigger=trigger,
            change_threshold=s.change_threshold,
            park=park,
            fence=fence,
            replica=s.replica_id if park is not None else None,
        )

    def close(self) -> None:
        self.store.close()
        self.state.close()
        self.db.close()


class _AlertingService(_Service):
    """The long-running service also keeps alerts. It refuses to start on a database that is
    not at this code's revision (never creating one) rather than fail on a missing table
    mid-cycle."""

    def __init__(self, settings: ServiceSettings, registry: Registry, db: Database) -> None:
        super().__init__(settings, registry, db)
        self.alerts = AlertRepository(self.db, notifier=notifier_from_settings(settings))
        self.alert_policy = AlertPolicy(
            stale_factor=settings.stale_factor,
            quarantine_per_hour=settings.quarantine_alert_per_hour,
            data_window_ms=int(settings.alert_data_window_s * 1000),
            lag_factor=settings.ingest_lag_factor,
            underperforming_share=settings.underperforming_share,
            underperforming_days=settings.underperforming_days,
        )
        self.exchanges = ExchangeRepository(self.db)

    def detection_registry(self) -> Registry:
        return with_registered(self.registry, self.exchanges.metered())

    def refresh_savings(self, park: str | None = None) -> None:
        """The metered exchanges' days over the detection window, recomputed (of ``park``
        only, when given): late readings change the days they touch, and the days written are
        charted from the store too. Not fenced: recomputing is idempotent, so a replica that
        lost the park meanwhile writes the same days its taker does."""
        s = self.settings
        today = (pd.Timestamp(s.now) if s.now else pd.Timestamp.now(tz="UTC")).date()
        # a day either side of UTC's: every park's local today and its window's first day,
        # whatever its zone (recomputing a day more changes nothing)
        start = today - dt.timedelta(days=s.window_days + 1)
        refresh(
            ExchangeRepository(self.db),
            self.store,
            self.store,
            self.registry,
            start,
            today + dt.timedelta(days=2),
            park=park,
        )

    def evaluate(
        self,
        run: RunResult | None,
        parks: Collection[str] | None = None,
        fence: Fence | None = None,
    ) -> None:
        """Every alert condition, or (``parks``: a replica's) those of these parks only."""
        s = self.settings
        at = int(pd.Timestamp(s.now).value // 1_000_000) if s.now else now_ms()
        registry = self.registry if parks is None else self.registry.only(set(parks) - {ALL_PARKS})
        evaluate_alerts(
            self.alerts,
            self.store,
            registry,
            run,
            at,
            self.alert_policy,
            self.exchanges,
            parks=parks,
            fence=fence,
        )

    def cycle(self) -> None:
        """Detection, realised savings and alerts over every park (one replica)."""
        run: RunResult | None = None
        try:
            run = self.detect("schedule")
        except Exception:
            log.exception("scheduled detection failed")
        try:  # before the alerts: under-performance is judged on the days verified
            self.refresh_savings()
        except Exception:
            log.exception("realised savings refresh failed")
        try:  # data quality is worth alerting on even when detection failed
            self.evaluate(run)
        except Exception:
            log.exception("alert evaluation failed")

    def park_cycle(self, park: str, fence: Fence, system: bool) -> None:
        """``cycle`` for one leased park, each write fenced by its lease; ``system``: this
        replica also observes the alerts about the system itself (the store's)."""
        run: RunResult | None = None
        try:
            run = self.detect("schedule", park, fence)
        except LeaseLost:
            log.warning(
                "park lease lost during detection: its results not saved", extra={"park": park}
            )
            return
        except Exception:
            log.exception("scheduled detection failed", extra={"park": park})
        try:
            self.refresh_savings(park)
        except Exception:
            log.exception("realised savings refresh failed", extra={"park": park})
        try:
            self.evaluate(run, {park, ALL_PARKS} if system else {park}, fence)
        except LeaseLost:
            log.warning("park lease lost during alert evaluation", extra={"park": park})
        except Exception:
            log.exception("alert evaluation failed", extra={"park": park})


class _Replica:
    """The parks this replica holds (``service/leases.py``) and when each is next due. A park
    taken over is due when its last run, whoever ran it, is an interval old: a takeover runs
    the cycle the dead replica missed, not one on top of the cycle it did."""

    def __init__(self, service: _AlertingService, leases: Leases, interval_s: float) -> None:
        self.service = service
        self.leases = leases
        self.interval_s = interval_s
        self.parks = sorted(service.registry.parks)
        self.due: dict[str, float] = {}  # park -> time.monotonic() its cycle is due
        self.renew_every_s = leases.ttl_ms / 3000
        self.next_renew = time.monotonic()

    @property
    def system(self) -> bool:
        """Whether this replica holds the first park, and with it what is store-wide: the
        rollups and the alerts about the system itself (one replica does them, not all)."""
        return bool(self.parks) and self.parks[0] in self.leases.held

    def renew(self) -> None:
        try:
            held = self.leases.acquire(self.parks, now_ms())
        except StoreError:
            log.exception("lease renewal failed: holding no park until it succeeds")
            held = {}
        now = time.monotonic()
        self.next_renew = now + self.renew_every_s
        for park in sorted(held.keys() - self.due.keys()):
            self.due[park] = now + self._wait_s(park)
            log.info("park taken", extra={"park": park, "epoch": held[park]})
        for park in sorted(self.due.keys() - held.keys()):
            del self.due[park]
            log.info("park let go or lost", extra={"park": park})

    def _wait_s(self, park: str) -> float:
        try:
            last = self.service.state.latest_run(park)
        except StoreError:
            return 0.0
        if last is None:
            return 0.0
        return max(0.0, self.interval_s - (now_ms() - last.started_ms) / 1000)

    def keep_alive(self, stop: threading.Event) -> None:
        """Until ``stop``: the heartbeat and the held leases renewed every third of the
        lease, whatever the main loop is busy with (``Leases.keep_alive``)."""
        while not stop.wait(self.renew_every_s):
            try:
                self.leases.keep_alive(now_ms())
            except StoreError:
                log.exception("lease keep-alive failed: trying again")

    def renew_if_due(self) -> None:
        if time.monotonic() >= self.next_renew:
            self.renew()

    def run_due(self, stop: threading.Event) -> None:
        """The cycles due, park by park, renewing between them when it is time: a long pass
        never outlives its leases."""
        for park in sorted(self.due):
            if stop.is_set():
                return
            self.renew_if_due()
            due = self.due.get(park)
            if due is None or due > time.monotonic():
                continue
            system = self.system and park == self.parks[0]
            self.service.park_cycle(park, self.leases.fence(park), system)
            self.due[park] = time.monotonic() + self.interval_s

    def next_wake(self) -> float:
        return min([self.next_renew, *self.due.values()])


def notifier_from_settings(settings: ServiceSettings) -> Notifier:
    """Who hears of alerts: the contacts file's channels, or without one each tenant's MQTT
    alerts topic (and the operators' topic), in English."""
    reference = pepper_of(settings).reference  # the API's references, in every channel
    if settings.alerts_contacts is None:
        return TopicNotifier(reference=reference)
    return ContactsNotifier(load_contacts(settings.alerts_contacts), reference=reference)


def dispatcher_from_settings(settings: ServiceSettings, db: Database) -> Dispatcher:
    contacts = load_contacts(settings.alerts_contacts) if settings.alerts_contacts else Contacts()
    channels = ContactChannels(contacts, smtp=smtp_server(settings), mqtt=mqtt_channel(settings))
    repo = AlertRepository(db, notifier=notifier_from_settings(settings))

    def disabled(d: Disabled, endpoint: str) -> None:
        """The operators hear of it by an alert of its own (on their other channels)."""
        who = d.recipient
        owner = f"{who.park}/{who.tenant}" if who.tenant else f"{who.park}/operator/{who.operator}"
        summary = f"{owner}'s {d.channel} endpoint {endpoint}: {d.reason}"
        repo.apply(
            [observe(ENDPOINT_DISABLED, f"{d.channel} {endpoint}", who.park, None, True, summary)],
            now_ms(),
        )

    return Dispatcher(
        db,
        channels,
        policy=BackoffPolicy(disable_after_s=settings.endpoint_disable_after_s),
        lanes=settings.dispatch_lanes,
        chunk=settings.dispatch_chunk,
        on_disabled=disabled,
        claim_ms=int(settings.dispatch_claim_s * 1000),
    )


def dispatch(settings: ServiceSettings, *, once: bool = False) -> int:
    """``parkflow dispatch``: deliver the outbox until stopped (or one pass, ``once``)."""
    db = open_database(settings)
    try:
        dispatcher = dispatcher_from_settings(settings, db)
        if settings.dispatch_metrics_port is not None:
            start_http_server(
                settings.dispatch_metrics_port, "127.0.0.1", registry=dispatcher.metrics.registry
            )
        try:
            if once:
                stats = dispatcher.run_once()
                log.info(
                    "dispatch pass",
                    extra={"due": stats.due, "sent": stats.sent, "retried": stats.retried},
                )
                return 0
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            log.info("dispatcher started", extra={"database": db.shown})
            dispatcher.run(stop, settings.dispatch_interval_s)
            return 0
        finally:
            dispatcher.close()
            close = getattr(dispatcher.channels, "close", None)
            if close is not None:
                close()
    finally:
        db.close()


def rebuild_rollups(settings: ServiceSettings, days: float) -> RunStats:
    """Recompute the rollups of the last ``days`` local days from the readings (after a
    registry change: rollups are derived data, rebuilding is safe)."""
    registry = settings.load_registry()
    store = store_from_settings(settings)
    try:
        end = now_ms() + DAY_MS
        return RollupWorker(store, registry).rebuild(end - days_ms(days + 1), end)
    finally:
        store.close()


def detect_now(settings: ServiceSettings, trigger: str = "manual") -> int:
    """Bring rollups up to date, run detection once; returns the run id."""
    registry = settings.load_registry()  # before creating a database for it
    service = _Service(settings, registry, open_database(settings, create_embedded=True))
    try:
        # Roll up everything written so far: the next cycle re-reads the margin anyway.
        service.rollups.run_once(now_ms() + service.rollups.margin_ms)
        return service.detect(trigger).run_id
    finally:
        service.close()


class HttpServer:
    """The API on uvicorn, in a thread of its own beside the service's loop (which keeps the
    main thread and its signal handlers): one process, one store and database, and a failed
    detection never stops the API from answering."""

    def __init__(self, ctx: ApiContext, host: str, port: int) -> None:
        import uvicorn

        from service.api.app import create_app

        config = uvicorn.Config(
            create_app(ctx), host=host, port=port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.where = f"{host}:{port}"
        self._thread = threading.Thread(target=self.server.run, name="api-http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> tuple[str, int]:
        """Start, and return where it listens once it does (port 0: the one it got)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    "settings", [f"the HTTP API did not start on {self.where} (port taken?)"]
                )
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


def serve(
    settings: ServiceSettings,
    *,
    ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Until SIGTERM or SIGINT (or ``stop``): rollups, detection, alerts and realised savings
    on their schedules, the API beside them. ``ready`` is told the API's base URL."""
    db = open_database(settings)  # first: an old schema is the message, whatever else is wrong
    try:
        registry = settings.load_registry()
    except BaseException:
        db.close()
        raise
    service = _AlertingService(settings, registry, db)
    stop = stop or threading.Event()
    try:
        ctx = ApiContext(
            settings,
            service.registry,
            service.store,
            service.state,
            service.db,
            pepper_of(settings),
        )
        http = HttpServer(ctx, settings.http_host, settings.http_port)
        host, port = http.start()
    except BaseException:
        service.close()
        raise
    log.info("API listening on http://%s:%d", host, port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    replica: _Replica | None = None
    keeper: threading.Thread | None = None
    done = threading.Event()  # the keep-alive thread's stop: set once the loop has ended
    if settings.lease_s is not None:
        leases = Leases(service.db, settings.replica_id, int(settings.lease_s * 1000))
        replica = _Replica(service, leases, settings.detect_interval_s)
        keeper = threading.Thread(
            target=replica.keep_alive, args=(done,), name="lease-keep-alive", daemon=True
        )
        log.info(
            "leasing parks", extra={"replica": settings.replica_id, "lease_s": settings.lease_s}
        )
    next_rollup = next_detect = time.monotonic()
    try:  # from here on whatever happens stops the API and closes the store and database
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
        if ready is not None:
            ready(f"http://{host}:{port}")
        if keeper is not None:
            keeper.start()
        while not stop.is_set():
            if replica is not None:
                replica.renew_if_due()
            now = time.monotonic()
            if now >= next_rollup:
                if replica is None or replica.system:  # store-wide: one replica rolls up
                    try:
                        service.rollups.run_once(now_ms())
                    except Exception:  # the store may be down: try again next cycle
                        log.exception("rollup cycle failed")
                next_rollup = now + settings.rollup_interval_s
            if replica is not None:
                replica.run_due(stop)
                wake = min(next_rollup, replica.next_wake())
            else:
                if now >= next_detect:
                    service.cycle()
                    next_detect = now + settings.detect_interval_s
                wake = min(next_rollup, next_detect)
            stop.wait(max(0.0, wake - time.monotonic()))
    finally:
        done.set()
        if keeper is not None and keeper.is_alive():
            keeper.join(timeout=10)
        try:
            if replica is not None:
                replica.leases.release_all()  # the others take its parks now, not on expiry
        except StoreError:
            log.exception("could not let go of the leases: they expire on their own")
        finally:
            http.stop()
            service.close()
    return 0
