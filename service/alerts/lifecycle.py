"""An alert's lifecycle as a pure function: a previous state and one evaluation of its
condition in, the next state and what happened out. No clock, no database: the repository
reads the previous state, calls ``evaluate`` and writes what it returns in one transaction.

States: pending (``status`` None: the condition holds but not yet ``open_after`` times in a
row), open, acknowledged, resolved; a resolved alert whose condition returns is re-opened, the
same alert with a new episode in its history. A flapping condition therefore opens one alert:
it needs ``open_after`` holds in a row to open and ``resolve_after`` clears in a row to resolve.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from service.alerts.kinds import Kind, Policy, Severity

SYSTEM_ACTOR = "parkflow"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Event(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    UPDATED = "updated"  # news about a firing alert (a surplus grew): told at once
    REPEATED = "repeated"  # a reminder of an open alert nobody acknowledged
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# what a recipient is told of; an acknowledgement is recorded, not sent
NOTIFYING = frozenset({Event.OPENED, Event.REOPENED, Event.UPDATED, Event.REPEATED, Event.RESOLVED})


@dataclass(frozen=True, slots=True)
class Observation:
    """One evaluation of one condition: does it hold for this (kind, subject) now?"""

    kind: str
    subject: str
    park: str
    tenant: str | None
    holds: bool
    severity: Severity
    summary: str = ""
    change: str | None = None  # "grown", "shrunk": news about what is already firing
    # what the notification is rendered from (``texts.facts_json``); kept with the alert, so
    # the notice that it ended says what had been found
    facts: Mapping[str, Any] | None = None


def observe(
    kind: Kind,
    subject: str,
    park: str,
    tenant: str | None,
    holds: bool,
    summary: str = "",
    change: str | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Observation:
    return Observation(
        kind.name, subject, park, tenant, holds, kind.severity, summary, change, facts
    )


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    kind: str
    subject: str
    park: str
    tenant: str | None
    severity: Severity
    status: Status | None
    summary: str
    holds: int  # evaluations in a row the condition held (0 when it last cleared)
    clears: int  # evaluations in a row it cleared (0 when it last held)
    evaluated_ms: int
    opened_ms: int | None = None
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    resolved_ms: int | None = None
    last_notified_ms: int | None = None
    facts: Mapping[str, Any] | None = None

    @property
    def firing(self) -> bool:
        return self.status in (Status.OPEN, Status.ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class Transition:
    """One line of an alert's history: what happened, when, who did it and why."""

    event: Event
    at_ms: int
    from_status: Status | None
    to_status: Status | None
    summary: str
    actor: str = SYSTEM_ACTOR
    reason: str | None = None
    silenced: bool = False

    @property
    def notifies(self) -> bool:
        return self.event in NOTIFYING and not self.silenced


@dataclass(frozen=True, slots=True)
class Outcome:
    alert: Alert | None  # None: nothing worth keeping (a condition that never held)
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True, slots=True)
class Silence:
    """An operator mutes a kind, a subject, or a kind for one subject, until a time: alerts
    still open, resolve and keep their history; nobody is notified."""

    kind: str | None
    subject: str | None
    until_ms: int

    def covers(self, kind: str, subject: str, now_ms: int) -> bool:
        return (
            now_ms < self.until_ms
            and (self.kind is None or self.kind == kind)
            and (self.subject is None or self.subject == subject)
        )


def is_silenced(silences: Iterable[Silence], kind: str, subject: str, now_ms: int) -> bool:
    return any(s.covers(kind, subject, now_ms) for s in silences)


def _new_id() -> str:
    return str(uuid.uuid4())


def evaluate(
    previous: Alert | None,
    observation: Observation,
    now_ms: int,
    policy: Policy,
    *,
    silenced: bool = False,
    new_id: Callable[[], str] = _new_id,
) -> Outcome:
    """The next state of ``previous`` after ``observation`` at ``now_ms``.

    An evaluation no later than the last one counts once: two evaluators of the same moment
    (or a replayed one) change nothing the second time."""
    if previous is not None and now_ms <= previous.evaluated_ms:
        return Outcome(previous)
    if previous is None and not observation.holds:
        return Outcome(None)
    base = previous or Alert(
        id=new_id(),
        kind=observation.kind,
        subject=observation.subject,
        park=observation.park,
        tenant=observation.tenant,
        severity=observation.severity,
        status=None,
        summary=observation.summary,
        holds=0,
        clears=0,
        evaluated_ms=now_ms,
        facts=observation.facts,
    )
    if observation.holds:
        return _holds(base, observation, now_ms, policy, silenced)
    return _clears(base, observation, now_ms, policy, silenced)


def _holds(base: Alert, obs: Observation, now_ms: int, policy: Policy, silenced: bool) -> Outcome:
    alert = replace(
        base,
        holds=base.holds + 1,
        clears=0,
        evaluated_ms=now_ms,
        summary=obs.summary or base.summary,
        severity=obs.severity,
        park=obs.park,
        tenant=obs.tenant,
        facts=obs.facts if obs.facts is not None else base.facts,
    )
    event: Event | None = None
    to = alert.status
    if not alert.firing:
        if alert.holds < policy.open_after:
            return Outcome(alert)  # pending
        event = Event.REOPENED if alert.status is Status.RESOLVED else Event.OPENED
        to = Status.OPEN
        alert = replace(
            alert,
            status=to,
            opened_ms=now_ms,
            acknowledged_ms=None,
            acknowledged_by=None,
            resolved_ms=None,
        )
    elif obs.change is not None:
        event = Event.UPDATED
    elif alert.status is Status.OPEN and policy.repeat_ms is not None:
        last = alert.last_notified_ms if alert.last_notified_ms is not None else alert.opened_ms
        if last is None or now_ms - last >= policy.repeat_ms:
            event = Event.REPEATED
    if event is None:
        return Outcome(alert)
    summary = alert.summary if obs.change is None else f"{obs.change}: {alert.summary}"
    step = Transition(event, now_ms, base.status, to, summary, silenced=silenced)
    if step.notifies:
        alert = replace(alert, last_notified_ms=now_ms)
    return Outcome(alert, (step,))


def _clears(base: Alert, obs: Observation, now_ms: int, policy: Policy, silenced: bool) -> Outcome:
    alert = replace(base, holds=0, clears=base.clears + 1, evaluated_ms=now_ms)
    if not alert.firing or alert.clears < policy.resolve_after:
        return Outcome(alert)
    summary = obs.summary or f"no longer: {alert.summary}"
    alert = replace(alert, status=Status.RESOLVED, resolved_ms=now_ms)
    step = Transition(
        Event.RESOLVED, now_ms, base.status, Status.RESOLVED, summary, silenced=silenced
    )
    if step.notifies:
        alert = replace(alert, last_notified_ms=now_ms)
    return Outcome(alert, (step,))


def acknowledge(alert: Alert, by: str, reason: str, now_ms: int) -> Outcome:
    """An operator (or a tenant) takes the alert in hand: no more reminders until it resolves
    or re-opens. Only an open alert can be acknowledged."""
    if alert.status is not Status.OPEN:
        state = alert.status.value if alert.status else "pending"
        raise ValueError(f"alert {alert.id} is {state}: only an open alert is acknowledged")
    if not by.strip() or not reason.strip():
        raise ValueError("an acknowledgement says who and why")
    step = Transition(
        Event.ACKNOWLEDGED, now_ms, Status.OPEN, Status.ACKNOWLEDGED, alert.summary, by, reason
    )
    acked = replace(alert, status=Status.ACKNOWLEDGED, acknowledged_ms=now_ms, acknowledged_by=by)
    return Outcome(acked, (step,))


def resolve(alert: Alert, by: str, reason: str, now_ms: int) -> Outcome:
    """An operator closes a firing alert by hand (the meter was replaced, the surplus was
    taken up outside parkflow) instead of waiting for ``resolve_after`` clear evaluations.

    The recipient is told, as of any resolve. The condition's count starts again: if it still
    holds, the alert re-opens after ``open_after`` evaluations, not at the next one, so a
    hand-resolved alert that was right all along comes back once, as it would have opened."""
    if not alert.firing:
        state = alert.status.value if alert.status else "pending"
        raise ValueError(
            f"alert {alert.id} is {state}: only an open or acknowledged alert is resolved"
        )
    if not by.strip() or not reason.strip():
        raise ValueError("a resolve by hand says who and why")
    step = Transition(
        Event.RESOLVED, now_ms, alert.status, Status.RESOLVED, alert.summary, by, reason
    )
    done = replace(
        alert,
        status=Status.RESOLVED,
        resolved_ms=now_ms,
        holds=0,
        clears=0,
        last_notified_ms=now_ms,
    )
    return Outcome(done, (step,))
