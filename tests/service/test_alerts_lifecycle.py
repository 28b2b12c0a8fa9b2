"""The alert lifecycle as a pure function: hysteresis, repeats, silences, acknowledgements,
resolves by hand."""

from __future__ import annotations

import pytest

from service.alerts.kinds import METER_STALE, Policy
from service.alerts.lifecycle import (
    Alert,
    Event,
    Status,
    acknowledge,
    evaluate,
    observe,
    resolve,
)

POLICY = Policy(open_after=3, resolve_after=2, repeat_ms=100)


def run(signal: list[bool], policy: Policy = POLICY) -> tuple[Alert | None, list[Event]]:
    alert: Alert | None = None
    events: list[Event] = []
    for t, holds in enumerate(signal, start=1):
        obs = observe(METER_STALE, "p/t/m", "p", "t", holds, "stale")
        out = evaluate(alert, obs, t * 10, policy, new_id=lambda: "a1")
        alert = out.alert
        events += [s.event for s in out.transitions]
    return alert, events


def test_a_flapping_condition_opens_one_alert_and_never_resolves_it_between_flaps() -> None:
    alert, events = run([True, True, True, False, True, False, True, False, True])
    assert events == [Event.OPENED]
    assert alert is not None and alert.status is Status.OPEN


def test_opens_after_n_holds_and_resolves_after_m_clears_then_reopens() -> None:
    alert, events = run([True, True, False, True, True, True, False, False, True, True, True])
    assert events == [Event.OPENED, Event.RESOLVED, Event.REOPENED]
    assert alert is not None and alert.id == "a1" and alert.status is Status.OPEN


def test_an_open_unacknowledged_alert_is_repeated_after_the_interval_only() -> None:
    alert, events = run([True] * 15)  # opens at t=30, repeats at 130
    assert events == [Event.OPENED, Event.REPEATED]
    assert alert is not None and alert.last_notified_ms == 130


def test_an_acknowledged_alert_is_not_repeated_and_records_who_and_why() -> None:
    alert, _ = run([True] * 3)
    assert alert is not None
    acked = acknowledge(alert, "ops-anna", "gateway replaced tomorrow", 40)
    assert acked.alert is not None and acked.alert.status is Status.ACKNOWLEDGED
    (step,) = acked.transitions
    assert (step.actor, step.reason) == ("ops-anna", "gateway replaced tomorrow")
    obs = observe(METER_STALE, "p/t/m", "p", "t", True, "stale")
    later = evaluate(acked.alert, obs, 1000, POLICY)
    assert later.transitions == ()
    with pytest.raises(ValueError, match="only an open alert"):
        acknowledge(acked.alert, "ops-anna", "again", 50)


def test_silenced_transitions_are_kept_but_notify_nobody() -> None:
    obs = observe(METER_STALE, "p/t/m", "p", "t", True, "stale")
    out = evaluate(None, obs, 10, Policy(), silenced=True)
    assert out.alert is not None and out.alert.status is Status.OPEN
    (step,) = out.transitions
    assert step.silenced and not step.notifies
    assert out.alert.last_notified_ms is None


def test_an_evaluation_no_later_than_the_last_changes_nothing() -> None:
    obs = observe(METER_STALE, "p/t/m", "p", "t", True, "stale")
    first = evaluate(None, obs, 10, Policy())
    assert evaluate(first.alert, obs, 10, Policy()) == type(first)(first.alert)


def test_a_resolve_by_hand_notifies_and_the_condition_must_hold_again_to_reopen() -> None:
    alert, _ = run([True] * 3)  # open at t=30
    assert alert is not None
    done = resolve(alert, "ops-anna", "meter replaced", 35)
    assert done.alert is not None and done.alert.status is Status.RESOLVED
    assert done.alert.resolved_ms == 35 and done.alert.holds == 0
    (step,) = done.transitions
    assert step.event is Event.RESOLVED and step.notifies
    assert (step.from_status, step.actor, step.reason) == (
        Status.OPEN,
        "ops-anna",
        "meter replaced",
    )
    with pytest.raises(ValueError, match="only an open or acknowledged alert"):
        resolve(done.alert, "ops-anna", "again", 36)
    # still stale: back after open_after (3) evaluations, not at the next one
    current: Alert | None = done.alert
    events = []
    obs = observe(METER_STALE, "p/t/m", "p", "t", True, "stale")
    for t in (40, 50, 60):
        out = evaluate(current, obs, t, POLICY)
        current = out.alert
        events.append([s.event for s in out.transitions])
    assert events == [[], [], [Event.REOPENED]]


def test_an_acknowledged_alert_can_be_resolved_by_hand_but_only_with_who_and_why() -> None:
    alert, _ = run([True] * 3)
    assert alert is not None
    acked = acknowledge(alert, "ops-anna", "on it", 40).alert
    assert acked is not None
    with pytest.raises(ValueError, match="says who and why"):
        resolve(acked, " ", "done", 50)
    done = resolve(acked, "ops-binh", "done", 50)
    assert done.alert is not None and done.transitions[0].from_status is Status.ACKNOWLEDGED
