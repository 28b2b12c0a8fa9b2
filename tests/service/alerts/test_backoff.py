"""The retry policy and the delivery outcome, over a scripted channel. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.alerts.backoff import BackoffPolicy, ceiling, delay, expired
from service.alerts.channels import Accepted, Gone, MemoryChannel, RetryLater
from service.alerts.delivery import Attempts, Disabled, Retry, Sent, deliver
from tests.service.alerts.build import note

T0 = datetime(2026, 12, 2, tzinfo=UTC)
policies = st.builds(
    lambda base, extra, bound: BackoffPolicy(base, base + extra, bound),
    st.floats(0.001, 1e4),
    st.floats(0, 1e6),
    st.floats(1, 1e7),
)
unit = st.floats(0, 1, exclude_max=True)


@given(policies, st.integers(0, 10_000), unit)
def test_delay_is_within_zero_and_the_capped_ceiling(
    p: BackoffPolicy, attempt: int, u: float
) -> None:
    d = delay(p, attempt, u)
    assert 0 <= d <= p.cap_s
    assert d <= p.base_s * 2.0 ** min(attempt, 1000)


@given(policies, st.integers(0, 200))
def test_ceiling_grows_until_the_cap(p: BackoffPolicy, attempt: int) -> None:
    assert ceiling(p, attempt) <= ceiling(p, attempt + 1)
    assert ceiling(p, attempt + 1) == min(p.cap_s, 2 * ceiling(p, attempt))


@given(policies, st.integers(0, 50), unit, st.floats(0, 1e6))
def test_a_receivers_retry_after_is_a_floor(
    p: BackoffPolicy, attempt: int, u: float, after: float
) -> None:
    assert delay(p, attempt, u, after) >= after


@given(policies, st.integers(0, 50))
def test_full_jitter_spans_the_range(p: BackoffPolicy, attempt: int) -> None:
    assert delay(p, attempt, 0.0) == 0.0
    assert delay(p, attempt, 0.999999) == pytest.approx(ceiling(p, attempt), rel=1e-5)


@given(policies, st.floats(0, 1e8))
def test_disabling_happens_exactly_at_the_bound(p: BackoffPolicy, failing_s: float) -> None:
    now = T0 + timedelta(seconds=failing_s)
    assert expired(p, T0, now) == (now - T0 >= timedelta(seconds=p.disable_after_s))


@given(policies, st.lists(unit, min_size=1, max_size=40))
def test_a_failing_endpoint_is_disabled_within_the_bound_plus_one_delay(
    p: BackoffPolicy, jitters: list[float]
) -> None:
    """However the jitter falls, retries end: the last attempt is at most one capped delay
    after the bound, and every retry before it is scheduled later than the one before."""
    ch = MemoryChannel([RetryLater("down")] * len(jitters))
    n, now, attempts = note(), T0, Attempts()
    for u in jitters:
        out = deliver(n, ch, p, now, attempts, jitter=iter([u]).__next__)
        if isinstance(out, Disabled):
            assert now - T0 >= timedelta(seconds=p.disable_after_s)
            assert now - T0 <= timedelta(seconds=p.disable_after_s + p.cap_s)
            return
        assert isinstance(out, Retry)
        assert out.at >= now
        assert out.attempts.failing_since == T0
        now, attempts = out.at, out.attempts
    assert now - T0 <= timedelta(seconds=p.disable_after_s + p.cap_s)


def test_success_is_sent_and_gone_disables() -> None:
    assert deliver(note(), MemoryChannel([Accepted("ok")]), BackoffPolicy(), T0) == Sent(T0, "ok")
    out = deliver(note(), MemoryChannel([Gone("HTTP 410")]), BackoffPolicy(), T0)
    assert isinstance(out, Disabled) and out.gone and out.reason == "HTTP 410"


def test_memory_channel_keeps_only_what_it_accepted() -> None:
    ch = MemoryChannel([RetryLater("x")])
    a, b = note(), note()
    ch.send(a)
    ch.send(b)
    assert ch.attempts == [a, b] and ch.received == [b]


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"base_s": 0}, "base_s must be a positive"),
        ({"cap_s": float("inf")}, "cap_s must be a positive"),
        ({"base_s": 10, "cap_s": 5}, "at least base_s"),
        ({"disable_after_s": -1}, "disable_after_s"),
    ],
)
def test_bad_policies_are_refused(kw: dict[str, float], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        BackoffPolicy(**kw)
