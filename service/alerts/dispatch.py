"""The dispatcher: drains the outbox through the channels, marking each notification sent
only after its channel accepted it.

A pass reads what is due: notifications not sent whose time has come, of endpoints neither
disabled nor backing off. It delivers them in lanes, one alert's notifications to one endpoint
in order in the same lane (so a receiver gets each subject's story in order even after being
down), many lanes at once (so one slow endpoint or one busy alert does not hold the rest). An
endpoint that asked for batches has one lane: its notifications in the order they were created,
up to its batch size per request, each batch accepted or retried as a whole. It
records what each attempt returned in one transaction per chunk, after the attempts: a
dispatcher killed between a send and that write sends the notification again on restart, with
the same id (at least once; a receiver keeping ids sees it once). An endpoint that fails stops
its lanes for the pass and is backed off as a whole; one failing for too long is disabled and
the operators told by an alert of its own.

Several dispatchers may share a database (one beside each replica): a pass claims what it
attempts (``claim``), the rows locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one
writer at a time) and their next attempt moved past the claim, so the other dispatchers skip
them. The claim is renewed while the pass runs; a dispatcher that dies leaves its claims to
expire, and whoever passes next sends them (again at least once, with the same ids).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parkflow.errors import StoreError
from service.alerts.backoff import BackoffPolicy
from service.alerts.channels.base import BatchChannel, Channel, Notification, batching
from service.alerts.delivery import (
    Attempts,
    Disabled,
    Outcome,
    Retry,
    Sent,
    deliver,
    deliver_batch,
)
from service.alerts.metrics import AlertMetrics
from service.alerts.texts import notification_from_json
from service.state import Database
from service.state.tables import endpoints, outbox

log = logging.getLogger("parkflow.alerts.dispatch")

EndpointKey = tuple[str, str]  # (channel, endpoint)
_KEYS = 400  # keys per IN (...): well under both backends' parameter limits
_CLAIM_LOCK = 0x70617266  # the dispatchers' claims' advisory lock on PostgreSQL ("parf")


class Channels(Protocol):
    """The channel that reaches an endpoint, or None when nothing configured reaches it any
    more (a contact removed, a server without settings): its notifications wait, logged."""

    def __call__(self, channel: str, endpoint: str) -> Channel | None: ...


@dataclass(frozen=True, slots=True)
class Due:
    id: str
    channel: str
    endpoint: str
    alert_id: str
    attempts: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class _EndpointState:
    failures: int = 0
    failing_since_ms: int | None = None
    # the row says what a success would write (no failures, no wait, no error): a pass that
    # only succeeded has nothing to write for it
    healthy: bool = False


_HEALTHY: Mapping[str, object] = {
    "failures": 0,
    "failing_since_ms": None,
    "next_attempt_ms": 0,
    "last_error": None,
}


@dataclass
class PassStats:
    due: int = 0
    sent: int = 0
    retried: int = 0
    disabled: list[Disabled] = field(default_factory=list)
    waiting: int = 0  # due, but no channel reaches the endpoint


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Channels,
        *,
        policy: BackoffPolicy | None = None,
        metrics: AlertMetrics | None = None,
        lanes: int = 16,
        batch: int = 10_000,  # outbox rows read per pass: a 5k-meter evaluation's in one
        chunk: int = 500,
        clock: Callable[[], float] = time.time,
        on_disabled: Callable[[Disabled, str], None] | None = None,
        jitter: Callable[[], float] = random.random,
        claim_ms: int = 30_000,
    ) -> None:
        self.db = db
        self.channels = channels
        self.policy = policy or BackoffPolicy()
        self.metrics = metrics or AlertMetrics()
        self.lanes = lanes
        self.batch = batch
        self.chunk = chunk
        self.clock = clock
        self.on_disabled = on_disabled
        self.jitter = jitter
        self.claim_ms = claim_ms
        self._claimed_until = 0
        self._pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="dispatch")
        self._warned: set[EndpointKey] = set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- reading what is due ----------------------------------------------------------------

    def due(self, now_ms: int) -> list[Due]:
        """Notifications to attempt now, oldest first: not sent, their time come, their
        endpoint neither disabled nor backing off, no earlier one of theirs held back."""
        with self.db.connect() as conn:
            return self._due(conn, now_ms, lock=False)

    def claim(self, now_ms: int) -> list[Due]:
        """``due``, claimed for this pass: locked (others skip the rows) and their next attempt
        moved ``claim_ms`` on, so that no other dispatcher attempts them meanwhile. A claimed
        notification holds its alert's later ones to the same endpoint back, as a retry does:
        the story still arrives in order."""

        def work(conn: Connection) -> list[Due]:
            if conn.dialect.name == "postgresql":
                # One claim at a time across dispatchers (claims are short): with SKIP
                # LOCKED alone, a claim open elsewhere hides its rows, and an alert's later
                # notification would look free to claim beside its earlier one, out of
                # order. SQLite has one writer anyway.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK)))
            due = self._due(conn, now_ms, lock=True)
            self._extend(conn, [d.id for d in due], now_ms)
            return due

        return self.db.retrying(work)

    def _extend(
        self, conn: Connection, ids: Sequence[str], now_ms: int, *, renewing: bool = False
    ) -> None:
        """Claim ``ids`` until ``claim_ms`` from now; ``renewing``: only those whose claim is
        still this pass's (one that expired and was claimed by another stays the other's)."""
        until = now_ms + self.claim_ms
        for i in range(0, len(ids), _KEYS):
            where: list[sa.ColumnElement[bool]] = [
                outbox.c.id.in_(ids[i : i + _KEYS]),
                outbox.c.sent_ms.is_(None),
            ]
            if renewing:
                where.append(outbox.c.next_attempt_ms == self._claimed_until)
            conn.execute(outbox.update().where(*where).values(next_attempt_ms=until))
        self._claimed_until = until

    def _renew(self, ids: Sequence[str]) -> None:
        now_ms = int(self.clock() * 1000)
        self.db.retrying(lambda conn: self._extend(conn, ids, now_ms, renewing=True))

    def _unclaim(self, ids: Sequence[str], due_ms: int) -> None:
        """The claimed notifications the pass did not attempt (their endpoint failed first,
        or nothing reaches it): due again at once, as before the claim, unless the claim
        was lost meanwhile (expired and taken by another dispatcher: its claim stands)."""

        def work(conn: Connection) -> None:
            for i in range(0, len(ids), _KEYS):
                conn.execute(
                    outbox.update()
                    .where(
                        outbox.c.id.in_(ids[i : i + _KEYS]),
                        outbox.c.sent_ms.is_(None),
                        outbox.c.next_attempt_ms == self._claimed_until,
                    )
                    .values(next_attempt_ms=due_ms)
                )

        if ids:
            self.db.retrying(work)

    def _due(self, conn: Connection, now_ms: int, *, lock: bool) -> list[Due]:
        blocked = sa.select(endpoints.c.channel, endpoints.c.endpoint).where(
            sa.or_(endpoints.c.disabled_ms.is_not(None), endpoints.c.next_attempt_ms > now_ms)
        )
        # An earlier notification of the same alert to the same endpoint that waits for its
        # retry holds the later ones back: each subject's story arrives in order.
        earlier = outbox.alias("earlier")
        held = (
            sa.select(earlier.c.id)
            .where(
                earlier.c.channel == outbox.c.channel,
                earlier.c.endpoint == outbox.c.endpoint,
                earlier.c.alert_id == outbox.c.alert_id,
                earlier.c.sent_ms.is_(None),
                earlier.c.history_id < outbox.c.history_id,
                earlier.c.next_attempt_ms > now_ms,
            )
            .exists()
        )
        query = (
            sa.select(
                outbox.c.id,
                outbox.c.channel,
                outbox.c.endpoint,
                outbox.c.alert_id,
                outbox.c.attempts,
                outbox.c.payload,
            )
            .where(
                outbox.c.sent_ms.is_(None),
                outbox.c.next_attempt_ms <= now_ms,
                sa.tuple_(outbox.c.channel, outbox.c.endpoint).not_in(blocked),
                ~held,
            )
            .order_by(outbox.c.created_ms, outbox.c.history_id, outbox.c.id)
            .limit(self.batch)
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=outbox)
        rows = conn.execute(query).all()
        return [
            Due(
                r.id,
                r.channel,
                r.endpoint,
                r.alert_id,
                r.attempts,
                notification_from_json(r.payload["notification"]),
            )
            for r in rows
        ]

    def _endpoint_states(self, keys: Iterable[EndpointKey]) -> dict[EndpointKey, _EndpointState]:
        wanted = list(set(keys))
        out: dict[EndpointKey, _EndpointState] = {}
        with self.db.connect() as conn:
            for i in range(0, len(wanted), _KEYS):
                rows = conn.execute(
                    sa.select(endpoints).where(
                        sa.tuple_(endpoints.c.channel, endpoints.c.endpoint).in_(
                            wanted[i : i + _KEYS]
                        )
                    )
                ).mappings()
                for r in rows:
                    healthy = r["disabled_ms"] is None and all(
                        r[k] == v for k, v in _HEALTHY.items()
                    )
                    out[(r["channel"], r["endpoint"])] = _EndpointState(
                        r["failures"], r["failing_since_ms"], healthy
                    )
        return out

    # -- one pass ---------------------------------------------------------------------------

    def run_once(self, now_ms: int | None = None) -> PassStats:
        """Attempt everything due once; returns what happened."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        due = self.claim(now)
        stats = PassStats(due=len(due))
        if due:
            attempted = self._deliver(due, stats)
            self._unclaim([d.id for d in due if d.id not in attempted], now)
        self._update_pending()
        return stats

    def _deliver(self, due: Sequence[Due], stats: PassStats) -> set[str]:
        """Attempt ``due``; returns the ids attempted."""
        by_endpoint: dict[EndpointKey, dict[str, list[Due]]] = defaultdict(
            lambda: defaultdict(list)
        )
        in_order: dict[EndpointKey, list[Due]] = defaultdict(list)
        for d in due:
            by_endpoint[(d.channel, d.endpoint)][d.alert_id].append(d)
            in_order[(d.channel, d.endpoint)].append(d)
        states = self._endpoint_states(by_endpoint)
        # a lane: one endpoint's requests in order, each request one notification or a batch
        per_endpoint: list[list[tuple[EndpointKey, Channel, list[list[Due]]]]] = []
        for key, groups in by_endpoint.items():
            channel = self.channels(*key)
            if channel is None:
                stats.waiting += sum(len(g) for g in groups.values())
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning(
                        "notifications wait: nothing configured reaches %s endpoint %s"
                        " (contacts file, channel settings)",
                        key[0],
                        key[1],
                    )
                continue
            self._warned.discard(key)
            size = batching(channel)
            if size > 1:  # one lane: its notifications in the order they were created, batched
                mine = in_order[key]
                batches = [mine[i : i + size] for i in range(0, len(mine), size)]
                per_endpoint.append([(key, channel, batches)])
            else:
                per_endpoint.append(
                    [(key, channel, [[d] for d in group]) for group in groups.values()]
                )
        # Endpoints take turns: the lanes running at once reach different endpoints, each
        # over the connection it keeps, rather than one endpoint's alerts opening a
        # connection each while the others wait.
        lanes = [x for turn in zip_longest(*per_endpoint) for x in turn if x is not None]
        failed: set[EndpointKey] = set()  # endpoints that failed this pass: their lanes stop
        changed = threading.Condition()  # an outcome came, or a lane ended
        results: list[tuple[Due, Outcome]] = []
        ended = [0]

        def lane(key: EndpointKey, channel: Channel, requests: list[list[Due]]) -> None:
            batcher = cast(BatchChannel, channel) if batching(channel) > 1 else None
            try:
                for request in requests:
                    with changed:
                        if key in failed:
                            return
                        state = states.get(key, _EndpointState())
                    since = state.failing_since_ms
                    attempts = Attempts(state.failures, _dt(since) if since is not None else None)
                    now = datetime.now(UTC)
                    if batcher is not None:
                        ns = [d.notification for d in request]
                        outcome = deliver_batch(ns, batcher, self.policy, now, attempts)
                    else:
                        (only,) = request
                        outcome = deliver(only.notification, channel, self.policy, now, attempts)
                    self.metrics.record(key[0], outcome, len(request))
                    with changed:
                        results.extend((d, outcome) for d in request)
                        if not isinstance(outcome, Sent):
                            failed.add(key)
                        changed.notify()
                        if key in failed:
                            return
            finally:
                with changed:
                    ended[0] += 1
                    changed.notify()

        futures = [self._pool.submit(lane, *x) for x in lanes]
        # Outcomes are written as they come, a chunk at a time: little is sent twice after a
        # crash, and a long pass does not hold everything it sent unrecorded. The wait is
        # woken by the lanes, not a poll: the last outcome is written as soon as it is known.
        written = [0]
        unhealthy: set[EndpointKey] = set()

        def wake() -> bool:
            return len(results) - written[0] >= self.chunk or ended[0] == len(futures)

        # the claim outlives the pass however slow the endpoints: renewed each third of it
        renew_s = self.claim_ms / 3000
        renewed = time.monotonic()
        while True:
            with changed:
                changed.wait_for(wake, timeout=renew_s)
                done = ended[0] == len(futures)
                ready = results[written[0] :]
            if ready:
                self._record(ready, stats, states, unhealthy)
                written[0] += len(ready)
            if done:
                break
            if time.monotonic() - renewed >= renew_s:
                recorded = {d.id for d, _ in results[: written[0]]}
                self._renew([d.id for d in due if d.id not in recorded])
                renewed = time.monotonic()
        for f in futures:
            f.result()  # a bug in a lane is not swallowed
        return {d.id for d, _ in results}

    # -- recording --------------------------------------------------------------------------

    def _record(
        self,
        results: Sequence[tuple[Due, Outcome]],
        stats: PassStats,
        states: Mapping[EndpointKey, _EndpointState] | None = None,
        unhealthy: set[EndpointKey] | None = None,
    ) -> None:
        unhealthy = set() if unhealthy is None else unhealthy
        sent: list[tuple[Due, Sent]] = []
        retry: list[tuple[Due, Retry]] = []
        disabled: list[tuple[Due, Disabled]] = []
        for d, o in results:
            if isinstance(o, Sent):
                sent.append((d, o))
            elif isinstance(o, Retry):
                retry.append((d, o))
            else:
                disabled.append((d, o))

        def work(conn: Connection) -> None:
            if sent:
                conn.execute(
                    outbox.update()
                    .where(outbox.c.id == sa.bindparam("nid"))
                    .values(
                        sent_ms=sa.bindparam("at"), attempts=outbox.c.attempts + 1, last_error=None
                    ),
                    [{"nid": d.id, "at": _ms(o.at)} for d, o in sent],
                )
            for d, r in retry:
                conn.execute(
                    outbox.update()
                    .where(outbox.c.id == d.id)
                    .values(
                        attempts=outbox.c.attempts + 1,
                        next_attempt_ms=_ms(r.at),
                        last_error=r.reason,
                    )
                )
            for d, x in disabled:
                conn.execute(
                    outbox.update()
                    .where(outbox.c.id == d.id)
                    # due again (its claim ended) as soon as the endpoint is re-enabled
                    .values(
                        attempts=outbox.c.attempts + 1,
                        next_attempt_ms=_ms(x.at),
                        last_error=x.reason,
                    )
                )
            self._record_endpoints(conn, sent, retry, disabled, states or {}, unhealthy)

        self.db.retrying(work)
        stats.sent += len(sent)
        stats.retried += len(retry)
        # a batch refused: each of its notifications has the same outcome, told of once
        retry = list({id(r): (d, r) for d, r in retry}.values())
        disabled = list({id(x): (d, x) for d, x in disabled}.values())
        stats.disabled += [x for _, x in disabled]
        for d, r in retry:
            log.warning(
                "delivery failed, retrying",
                extra={
                    "channel": d.channel,
                    "endpoint": d.endpoint,
                    "notification": d.id,
                    "reason": r.reason,
                    "retry_at": r.at.isoformat(),
                },
            )
        for d, x in disabled:
            log.error(
                "endpoint disabled",
                extra={"channel": d.channel, "endpoint": d.endpoint, "reason": x.reason},
            )
            if self.on_disabled is not None:
                self.on_disabled(x, d.endpoint)

    @staticmethod
    def _record_endpoints(
        conn: Connection,
        sent: Sequence[tuple[Due, Sent]],
        retry: Sequence[tuple[Due, Retry]],
        disabled: Sequence[tuple[Due, Disabled]],
        states: Mapping[EndpointKey, _EndpointState],
        unhealthy: set[EndpointKey],
    ) -> None:
        """``states``: the endpoints' rows as the pass began; ``unhealthy``: those this pass
        has since written a failure to (a later success must then be written)."""
        changes: dict[EndpointKey, Mapping[str, object]] = {}
        for d, _ in sent:
            changes[(d.channel, d.endpoint)] = _HEALTHY
        for d, r in retry:  # a failure after a success in the same pass: the failure stands
            changes[(d.channel, d.endpoint)] = {
                "failures": r.attempts.failures,
                "failing_since_ms": _ms(r.attempts.failing_since)
                if r.attempts.failing_since
                else None,
                "next_attempt_ms": _ms(r.at),
                "last_error": r.reason,
            }
        for d, x in disabled:
            changes[(d.channel, d.endpoint)] = {
                "disabled_ms": _ms(x.at),
                "disabled_reason": x.reason,
                "last_error": x.reason,
            }
        for key, values in list(changes.items()):
            state = states.get(key)
            if values is not _HEALTHY:
                unhealthy.add(key)
            elif state is not None and state.healthy and key not in unhealthy:
                del changes[key]  # a success on an endpoint whose row already says healthy
        if not changes:
            return
        wanted = list(changes)
        pair = sa.tuple_(endpoints.c.channel, endpoints.c.endpoint)
        existing: set[EndpointKey] = set()
        for i in range(0, len(wanted), _KEYS):
            query = sa.select(endpoints.c.channel, endpoints.c.endpoint).where(
                pair.in_(wanted[i : i + _KEYS])
            )
            existing |= {(c, e) for c, e in conn.execute(query)}
        healthy = [k for k in wanted if k in existing and changes[k] is _HEALTHY]
        for i in range(0, len(healthy), _KEYS):  # recovered endpoints: one statement
            conn.execute(
                endpoints.update().where(pair.in_(healthy[i : i + _KEYS])).values(**_HEALTHY)
            )
        for channel, endpoint in (
            k for k in wanted if k in existing and changes[k] is not _HEALTHY
        ):
            where = (endpoints.c.channel == channel) & (endpoints.c.endpoint == endpoint)
            conn.execute(endpoints.update().where(where).values(**changes[(channel, endpoint)]))
        fresh = [
            {"channel": c, "endpoint": e, "failures": 0, "next_attempt_ms": 0, **changes[(c, e)]}
            for c, e in wanted
            if (c, e) not in existing
        ]
        # rows of one shape per statement: a first success, a first failure, a disabling
        for shape in {tuple(sorted(r)) for r in fresh}:
            conn.execute(endpoints.insert(), [r for r in fresh if tuple(sorted(r)) == shape])

    def _update_pending(self) -> None:
        query = (
            sa.select(outbox.c.channel, sa.func.count(), sa.func.min(outbox.c.created_ms))
            .where(outbox.c.sent_ms.is_(None))
            .group_by(outbox.c.channel)
        )
        try:
            with self.db.connect() as conn:
                rows = conn.execute(query).all()
        except StoreError:
            return
        self.metrics.set_pending(
            {
                ch: (int(n), _dt(int(oldest)) if oldest is not None else None)
                for ch, n, oldest in rows
            },
            datetime.now(UTC),
        )

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval_s: float = 0.2) -> None:
        """Pass after pass until ``stop`` is set; a database that is down is logged and tried
        again, never the end of the process."""
        down = False
        while not stop.is_set():
            try:
                stats = self.run_once()
            except StoreError as exc:
                if not down:
                    log.error("dispatch pass failed, retrying: %s", exc)
                down = True
                stop.wait(max(interval_s, 1.0))
                continue
            if down:
                log.info("dispatch resumed: the database answers again")
                down = False
            if stats.due and (stats.sent or stats.retried or stats.disabled):
                continue  # more may be due right away (a batch limit, a backlog)
            stop.wait(interval_s)


def enable(db: Database, channel: str, endpoint: str) -> bool:
    """An operator re-enables an endpoint that was disabled: its notifications go out again
    (oldest first) on the next pass. Returns whether there was such an endpoint."""
    with db.transaction() as conn:
        key = (endpoints.c.channel == channel) & (endpoints.c.endpoint == endpoint)
        result = conn.execute(
            endpoints.update()
            .where(key)
            .values(
                disabled_ms=None,
                disabled_reason=None,
                failures=0,
                failing_since_ms=None,
                next_attempt_ms=0,
            )
        )
        return bool(result.rowcount)
