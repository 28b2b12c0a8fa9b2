"""Alerts in the operational database: a batch of evaluations applied in one transaction, with
their history and their notifications (the outbox) in that same transaction.

The database, not this process, keeps "one alert per (kind, subject)": two evaluators that
both find no alert both try to insert it, the unique key lets one win, and the loser's whole
batch runs again on what the winner committed (``Database.retrying``). On PostgreSQL the
existing rows are read ``FOR UPDATE``, so two evaluators of the same alert take turns; SQLite
takes the file's write lock at BEGIN.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from parkflow.errors import InputError
from parkflow.timeunits import now_ms as wall_ms
from service.alerts.kinds import KINDS, Kind, Severity
from service.alerts.lifecycle import (
    Alert,
    Observation,
    Outcome,
    Silence,
    Status,
    Transition,
    acknowledge,
    evaluate,
    is_silenced,
    resolve,
)
from service.alerts.notify import BatchNotifier, Notifier, Outgoing, TopicNotifier
from service.alerts.texts import notification_json
from service.state import Database, Fence
from service.state.tables import alert_history, alerts, outbox, silences

_CHUNK = 400  # keys per IN (...): well under both backends' parameter limits
_HISTORY_CHUNK = 1000  # rows per multi-row insert (SQLAlchemy splits them under the limits)
_OUTBOX_CHUNK = 1000  # outbox rows per executemany: their payloads bounded in memory
# the SET clause from each row's keys (every column but the id), executed for many rows
_UPDATE_ALERT = alerts.update().where(alerts.c.id == sa.bindparam("_id"))
_INSERT_HISTORY = alert_history.insert().returning(alert_history.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class Applied:
    alert: Alert
    transitions: tuple[Transition, ...]
    notifications: tuple[str, ...]  # outbox ids written


class AlertRepository:
    def __init__(
        self,
        db: Database,
        kinds: Mapping[str, Kind] = KINDS,
        notifier: Notifier | None = None,
    ) -> None:
        self.db = db
        self.kinds = kinds
        self.notifier: Notifier = notifier or TopicNotifier()

    # -- evaluations ------------------------------------------------------------------------

    def apply(
        self, observations: Sequence[Observation], now_ms: int, fence: Fence | None = None
    ) -> list[Applied]:
        """Evaluate every observation against its stored alert and write the results, the
        history and the outbox together; returns what changed. ``fence``, run first in the
        same transaction, may refuse it all (a replica whose lease was lost)."""
        latest: dict[tuple[str, str], Observation] = {}
        for obs in observations:
            if obs.kind not in self.kinds:
                raise InputError(f"unknown alert kind {obs.kind!r}")
            latest[(obs.kind, obs.subject)] = obs
        if not latest:
            return []

        def work(conn: Connection) -> list[Applied]:
            if fence is not None:
                fence(conn)
            return self._apply(conn, latest, now_ms)

        return self.db.retrying(work)

    def _apply(
        self, conn: Connection, latest: Mapping[tuple[str, str], Observation], now_ms: int
    ) -> list[Applied]:
        stored = self._lock_rows(conn, list(latest))
        active = self._silences(conn, now_ms)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        changed: list[tuple[Alert, tuple[Transition, ...]]] = []
        for key, obs in latest.items():
            previous = stored.get(key)
            kind = self.kinds[obs.kind]
            outcome: Outcome = evaluate(
                previous,
                obs,
                now_ms,
                kind.policy,
                silenced=bool(active) and is_silenced(active, obs.kind, obs.subject, now_ms),
            )
            alert = outcome.alert
            if alert is None or alert == previous:
                continue
            (inserts if previous is None else updates).append(_row(alert))
            if outcome.transitions:
                changed.append((alert, outcome.transitions))
        # A batch is a few statements, each executed for many rows, whatever its size.
        if inserts:
            conn.execute(alerts.insert(), inserts)
        if updates:
            rows_by_id = [{"_id": r.pop("id"), **r} for r in updates]
            conn.execute(_UPDATE_ALERT, rows_by_id)
        steps = [(alert, step) for alert, transitions in changed for step in transitions]
        history_ids = self._record_many(conn, steps)
        # Routes are worked out after the alerts are written and before their notifications:
        # whatever fails in between (a router, the database) rolls back both.
        told = [(a, s, h) for (a, s), h in zip(steps, history_ids, strict=True) if s.notifies]
        outgoing = self._outgoing_many(conn, [(a, s) for a, s, _ in told])
        rows: list[dict[str, Any]] = []
        written: dict[str, list[str]] = {}
        for (alert, step, history_id), made in zip(told, outgoing, strict=True):
            mine = written.setdefault(alert.id, [])
            for row in _outbox_rows(alert, step, history_id, now_ms, made):
                rows.append(row)
                mine.append(row["id"])
        for i in range(0, len(rows), _OUTBOX_CHUNK):
            conn.execute(outbox.insert(), rows[i : i + _OUTBOX_CHUNK])
        return [Applied(a, t, tuple(written.get(a.id, ()))) for a, t in changed]

    def _lock_rows(
        self, conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Alert]:
        """The stored alerts of these keys, locked. Rows are locked in (kind, subject) order
        across every statement, the same order in every evaluator, so two that share alerts
        take turns and never deadlock. One kind per statement: ``kind = ? AND subject IN``
        uses the unique index on PostgreSQL, where a list of (kind, subject) pairs scanned
        the table once per chunk."""
        by_kind: dict[str, list[str]] = {}
        for kind, subject in sorted(keys):
            by_kind.setdefault(kind, []).append(subject)
        found: dict[tuple[str, str], Alert] = {}
        for kind, subjects in by_kind.items():
            for i in range(0, len(subjects), _CHUNK):
                query = (
                    sa.select(alerts)
                    .where(alerts.c.kind == kind, alerts.c.subject.in_(subjects[i : i + _CHUNK]))
                    .order_by(alerts.c.subject)
                    .with_for_update()
                )
                for row in conn.execute(query).mappings():
                    alert = _alert(row)
                    found[(alert.kind, alert.subject)] = alert
        return found

    def _record(self, conn: Connection, alert_id: str, step: Transition) -> int:
        result = conn.execute(alert_history.insert().values(**_history_row(alert_id, step)))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def _record_many(conn: Connection, steps: Sequence[tuple[Alert, Transition]]) -> list[int]:
        """The history rows of many steps in one statement per chunk, their ids returned in
        the order given (both backends return them from the insert itself)."""
        ids: list[int] = []
        for i in range(0, len(steps), _HISTORY_CHUNK):
            chunk = [_history_row(a.id, step) for a, step in steps[i : i + _HISTORY_CHUNK]]
            result = conn.execute(_INSERT_HISTORY, chunk)
            ids += [int(r[0]) for r in result.all()]
        return ids

    def _outgoing_many(
        self, conn: Connection, steps: Sequence[tuple[Alert, Transition]]
    ) -> list[Sequence[Outgoing]]:
        """Each step's notifications; a batch notifier reads the consents once for all."""
        items = [(a, self.kinds[a.kind], s) for a, s in steps]
        if isinstance(self.notifier, BatchNotifier):
            return list(self.notifier.many(conn, items))
        return [self.notifier(conn, a, k, s) for a, k, s in items]

    def _notify(
        self, conn: Connection, alert: Alert, step: Transition, history_id: int, now_ms: int
    ) -> list[str]:
        made = self.notifier(conn, alert, self.kinds[alert.kind], step)
        rows = _outbox_rows(alert, step, history_id, now_ms, made)
        if rows:
            conn.execute(outbox.insert(), rows)
        return [r["id"] for r in rows]

    # -- operators --------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, reason: str, now_ms: int | None = None) -> Alert:
        """Record who took an open alert in hand, and why."""
        at = wall_ms() if now_ms is None else now_ms
        return self._by_hand(alert_id, lambda alert: acknowledge(alert, by, reason, at), at)

    def resolve(self, alert_id: str, by: str, reason: str, now_ms: int | None = None) -> Alert:
        """Close a firing alert by hand, with who and why; its recipients are told, in the
        same transaction, as of any resolve."""
        at = wall_ms() if now_ms is None else now_ms
        return self._by_hand(alert_id, lambda alert: resolve(alert, by, reason, at), at)

    def _by_hand(self, alert_id: str, step: Callable[[Alert], Outcome], now_ms: int) -> Alert:
        def work(conn: Connection) -> Alert:
            query = sa.select(alerts).where(alerts.c.id == alert_id).with_for_update()
            row = conn.execute(query).mappings().first()
            if row is None:
                raise InputError(f"no alert {alert_id}")
            try:
                outcome = step(_alert(row))
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            alert = outcome.alert
            assert alert is not None
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(**_row(alert)))
            for transition in outcome.transitions:
                history_id = self._record(conn, alert_id, transition)
                if transition.notifies:
                    self._notify(conn, alert, transition, history_id, now_ms)
            return alert

        return self.db.retrying(work)

    def silence(
        self,
        *,
        kind: str | None,
        subject: str | None,
        until_ms: int,
        by: str,
        reason: str,
        now_ms: int | None = None,
    ) -> str:
        """Mute a kind, a subject, or both, until ``until_ms``; returns the silence's id."""
        at = wall_ms() if now_ms is None else now_ms
        if kind is None and subject is None:
            raise InputError("a silence names a kind, a subject or both")
        if kind is not None and kind not in self.kinds:
            raise InputError(f"unknown alert kind {kind!r}")
        if until_ms <= at:
            raise InputError("a silence ends in the future")
        if not by.strip() or not reason.strip():
            raise InputError("a silence says who and why")
        sid = str(uuid.uuid4())
        with self.db.transaction() as conn:
            conn.execute(
                silences.insert().values(
                    id=sid,
                    kind=kind,
                    subject=subject,
                    until_ms=until_ms,
                    created_ms=at,
                    created_by=by,
                    reason=reason,
                )
            )
        return sid

    # -- reads ------------------------------------------------------------------------------

    def _silences(self, conn: Connection, now_ms: int) -> list[Silence]:
        rows = conn.execute(
            sa.select(silences.c.kind, silences.c.subject, silences.c.until_ms).where(
                silences.c.until_ms > now_ms
            )
        )
        return [Silence(kind, subject, until) for kind, subject, until in rows]

    def tracked(self, kinds: Iterable[str]) -> dict[str, dict[str, tuple[str, str | None]]]:
        """Subjects whose alert fires or is pending, by kind, with their park and tenant: what
        an evaluation must observe as cleared when its source no longer mentions them."""
        firing = [Status.OPEN.value, Status.ACKNOWLEDGED.value]
        query = sa.select(alerts.c.kind, alerts.c.subject, alerts.c.park, alerts.c.tenant).where(
            alerts.c.kind.in_(list(kinds)),
            sa.or_(alerts.c.status.in_(firing), alerts.c.holds > 0),
        )
        out: dict[str, dict[str, tuple[str, str | None]]] = {}
        with self.db.connect() as conn:
            for kind, subject, park, tenant in conn.execute(query):
                out.setdefault(kind, {})[subject] = (park, tenant)
        return out

    def silences(self, now_ms: int | None = None, *, expired: bool = False) -> list[dict[str, Any]]:
        """The silences in force at ``now_ms`` (with ``expired``, every one ever set), the
        latest ending first."""
        at = wall_ms() if now_ms is None else now_ms
        query = sa.select(silences).order_by(silences.c.until_ms.desc(), silences.c.id)
        if not expired:
            query = query.where(silences.c.until_ms > at)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def find(self, id_or_prefix: str) -> Alert:
        """The alert with this id, or the one whose id starts with it (as ``alerts list``
        shows them); ``InputError`` when none or several do."""
        wanted = id_or_prefix.strip().lower()
        if not wanted or wanted.strip("0123456789abcdef-"):
            raise InputError(f"{id_or_prefix!r} is not an alert id (hexadecimal digits and -)")
        query = sa.select(alerts).where(alerts.c.id.startswith(wanted)).limit(2)
        with self.db.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise InputError(f"no alert {id_or_prefix}")
        if len(rows) > 1:
            raise InputError(f"several alerts start with {id_or_prefix}: give more of the id")
        return _alert(rows[0])

    def get(self, kind: str, subject: str) -> Alert | None:
        with self.db.connect() as conn:
            row = (
                conn.execute(
                    sa.select(alerts).where(alerts.c.kind == kind, alerts.c.subject == subject)
                )
                .mappings()
                .first()
            )
        return None if row is None else _alert(row)

    def alerts(
        self,
        statuses: Iterable[Status] = (Status.OPEN, Status.ACKNOWLEDGED),
        *,
        park: str | None = None,
        tenant: str | None = None,
    ) -> list[Alert]:
        """The alerts in these states, the earliest opened first (pending ones are in none);
        of one park, or one tenant's, when asked (the API's tenant reads its own only)."""
        wanted = [s.value for s in statuses]
        query = sa.select(alerts).where(alerts.c.status.in_(wanted))
        if park is not None:
            query = query.where(alerts.c.park == park)
        if tenant is not None:
            query = query.where(alerts.c.tenant == tenant)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(alerts.c.opened_ms)).mappings()
            return [_alert(r) for r in rows]

    def alert(self, alert_id: str) -> Alert | None:
        """One alert that fired (open, acknowledged or resolved; a pending one is none)."""
        fired = [s.value for s in (Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED)]
        query = sa.select(alerts).where(alerts.c.id == alert_id, alerts.c.status.in_(fired))
        with self.db.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _alert(row)

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                sa.select(alert_history)
                .where(alert_history.c.alert_id == alert_id)
                .order_by(alert_history.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def notifications(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        """Outbox rows, oldest first (all of them, or one alert's)."""
        query = sa.select(outbox).order_by(outbox.c.created_ms, outbox.c.history_id)
        if alert_id is not None:
            query = query.where(outbox.c.alert_id == alert_id)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


_ALERT_FIELDS = tuple(f.name for f in fields(Alert))


def _row(alert: Alert) -> dict[str, Any]:
    # not ``asdict``: it deep-copies the facts, which cost more than the rest of an evaluation
    row = {name: getattr(alert, name) for name in _ALERT_FIELDS}
    row["severity"] = alert.severity.value
    row["status"] = alert.status.value if alert.status else None
    return row


def _alert(row: RowMapping) -> Alert:
    values = dict(row)
    values["severity"] = Severity(values["severity"])
    values["status"] = Status(values["status"]) if values["status"] else None
    return Alert(**values)


def _history_row(alert_id: str, step: Transition) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "at_ms": step.at_ms,
        "event": step.event.value,
        "from_status": step.from_status.value if step.from_status else None,
        "to_status": step.to_status.value if step.to_status else None,
        "actor": step.actor,
        "reason": step.reason,
        "summary": step.summary,
        "silenced": step.silenced,
    }


def _outbox_rows(
    alert: Alert, step: Transition, history_id: int, now_ms: int, made: Sequence[Outgoing]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for out in made:
        n = out.notification
        r = n.recipient
        rows.append(
            {
                "id": n.id,
                "alert_id": alert.id,
                "history_id": history_id,
                "channel": out.channel,
                "endpoint": out.endpoint,
                "recipient": f"{r.park}/{r.tenant}"
                if r.tenant
                else f"{r.park}/operator/{r.operator}",
                "payload": {"event": step.event.value, "notification": notification_json(n)},
                "created_ms": now_ms,
                "attempts": 0,
                "next_attempt_ms": now_ms,
            }
        )
    return rows
