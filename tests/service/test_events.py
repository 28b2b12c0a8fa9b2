"""Events between detection runs: what alerts will deliver."""

from __future__ import annotations

from service.events import (
    OPPORTUNITY_GONE,
    OPPORTUNITY_NEW,
    SURPLUS_GONE,
    SURPLUS_GROWN,
    SURPLUS_NEW,
    SURPLUS_SHRUNK,
    Snapshot,
    diff,
)


def snap(size: float, tenants: tuple[str, ...] = ("a",)) -> Snapshot:
    return Snapshot("p", tenants, size, "m3")


def test_first_run_makes_everything_new() -> None:
    events = diff({}, {"s1": snap(10)}, {}, {"o1": snap(5, ("a", "b"))})
    assert [(e.kind, e.subject_id) for e in events] == [
        (SURPLUS_NEW, "s1"),
        (OPPORTUNITY_NEW, "o1"),
    ]
    assert events[1].tenants == ("a", "b")
    assert "5.0 m3/day" in events[1].summary


def test_growth_and_shrink_beyond_threshold_only() -> None:
    before = {"up": snap(100), "down": snap(100), "same": snap(100)}
    after = {"up": snap(130), "down": snap(70), "same": snap(120)}
    events = {e.subject_id: e for e in diff(before, after, {}, {}, change=0.25)}
    assert events["up"].kind == SURPLUS_GROWN
    assert (events["up"].before, events["up"].after) == (100, 130)
    assert events["down"].kind == SURPLUS_SHRUNK
    assert "same" not in events


def test_gone_surpluses_and_opportunities() -> None:
    events = diff({"s": snap(3)}, {}, {"o": snap(1, ("a", "b"))}, {})
    assert {(e.kind, e.subject_id, e.after) for e in events} == {
        (SURPLUS_GONE, "s", None),
        (OPPORTUNITY_GONE, "o", None),
    }


def test_unchanged_runs_make_no_events() -> None:
    s = {"s": snap(3)}
    o = {"o": snap(1, ("a", "b"))}
    assert diff(s, s, o, o) == []
