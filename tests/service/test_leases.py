"""Parks leased to replicas: the pure decision (which parks to renew, take, let go) and its
SQL on both backends (takeover on expiry, fair share, the fencing epoch, a clean release)."""

from __future__ import annotations

import pytest

from service.leases import Lease, LeaseLost, Leases, decide, fair_share
from service.state import Database

PARKS = ["p1", "p2", "p3", "p4"]
TTL = 3000


def lease(park: str, holder: str | None, expires_ms: int, epoch: int = 1) -> Lease:
    return Lease(park, holder, expires_ms, epoch)


def test_fair_share_is_the_ceiling_over_live_replicas() -> None:
    assert [fair_share(4, n) for n in (0, 1, 2, 3, 4, 5)] == [4, 4, 2, 2, 1, 1]


def test_alone_a_replica_takes_every_free_park() -> None:
    d = decide("a", PARKS, {}, {"a"}, 1000)
    assert d.take == tuple(PARKS) and d.renew == () and d.release == ()


def test_a_replica_renews_its_own_and_takes_only_expired_ones_up_to_its_share() -> None:
    leases = {
        "p1": lease("p1", "a", 5000),
        "p2": lease("p2", "b", 5000),  # b's, alive
        "p3": lease("p3", "b", 900),  # b's, expired
        "p4": lease("p4", "b", 5000),
    }
    d = decide("a", PARKS, leases, {"a", "b"}, 1000)
    assert d.renew == ("p1",) and d.take == ("p3",) and d.release == ()


def test_beyond_its_share_a_replica_lets_the_last_parks_go() -> None:
    leases = {p: lease(p, "a", 5000) for p in PARKS}
    d = decide("a", PARKS, leases, {"a", "b"}, 1000)  # b started: it holds nothing yet
    assert d.renew == ("p1", "p2") and d.release == ("p3", "p4") and d.take == ()
    # and b takes them once let go, not before
    assert decide("b", PARKS, leases, {"a", "b"}, 1000).take == ()
    gone = {**leases, "p3": lease("p3", None, 0), "p4": lease("p4", None, 0)}
    assert decide("b", PARKS, gone, {"a", "b"}, 1000).take == ("p3", "p4")


def test_its_own_expired_lease_is_renewed_not_taken_and_locked_rows_are_left() -> None:
    leases = {"p1": lease("p1", "a", 500), "p2": lease("p2", None, 0)}
    d = decide("a", PARKS, leases, {"a"}, 1000, lockable={"p1", "p3"})
    assert d.renew == ("p1",)  # nobody took it meanwhile: the epoch stands
    assert d.take == ("p3",)  # p2 and p4 are being changed by another replica: next round


def test_two_replicas_share_the_parks_and_the_survivor_takes_them_over(db_url: str) -> None:
    db = Database(db_url)
    try:
        a, b = Leases(db, "a", TTL), Leases(db, "b", TTL)
        assert a.acquire(PARKS, 1000).keys() == set(PARKS)  # alone: every park
        assert b.acquire(PARKS, 1100) == {}  # all held; b's heartbeat now counts
        assert a.acquire(PARKS, 1200).keys() == {"p1", "p2"}  # a lets two go
        assert b.acquire(PARKS, 1300).keys() == {"p3", "p4"}
        before = dict(b.held)
        # b dies: its leases and heartbeat expire; a takes its parks, at a new epoch each
        assert a.acquire(PARKS, 1300 + TTL + 1).keys() == set(PARKS)
        assert all(a.held[p] == before[p] + 1 for p in ("p3", "p4"))
        # b comes back from a pause: its writes for p3 are refused, a's are not
        with pytest.raises(LeaseLost), db.transaction() as conn:
            b.fence("p3")(conn)
        with db.transaction() as conn:
            a.fence("p3")(conn)
        # it finds it holds nothing; a still every park until b's share is let go
        assert b.acquire(PARKS, 1300 + TTL + 2) == {}
        a.release_all()
        assert a.live(1300 + TTL + 3) == {"b"}
        assert b.acquire(PARKS, 1300 + TTL + 3).keys() == set(PARKS)
        with pytest.raises(LeaseLost), db.transaction() as conn:
            a.fence("p1")(conn)
    finally:
        db.close()


def test_a_park_new_to_the_registry_gets_a_lease(db_url: str) -> None:
    db = Database(db_url)
    try:
        a = Leases(db, "a", TTL)
        assert a.acquire(PARKS[:2], 1000).keys() == {"p1", "p2"}
        assert a.acquire(PARKS, 1100).keys() == set(PARKS)
    finally:
        db.close()


def test_a_long_cycle_kept_alive_keeps_its_parks_and_its_share(db_url: str) -> None:
    """A replica busy longer than the lease (a big detection, a rollup catching up) keeps
    its parks while its keep-alive runs: the other neither counts it dead nor takes them."""
    db = Database(db_url)
    try:
        a, b = Leases(db, "a", TTL), Leases(db, "b", TTL)
        assert a.acquire(PARKS, 1000).keys() == set(PARKS)
        assert b.acquire(PARKS, 1100) == {}
        epochs = dict(a.held)
        # a is busy: no acquire for three leases' time, only its keep-alive every third
        for at in range(1000 + TTL // 3, 1000 + 3 * TTL, TTL // 3):
            a.keep_alive(at)
            assert b.acquire(PARKS, at + 1) == {}  # nothing expired, a still live
            assert a.live(at + 1) == {"a", "b"}
        with db.transaction() as conn:  # its writes still pass their fences
            a.fence("p4")(conn)
        assert a.acquire(PARKS, 1000 + 3 * TTL).keys() == {"p1", "p2"}  # its share now
        assert {p: a.held[p] for p in ("p1", "p2")} == {p: epochs[p] for p in ("p1", "p2")}
        # without its keep-alive, the same pause loses them
        assert b.acquire(PARKS, 1000 + 3 * TTL + 1).keys() == {"p3", "p4"}
        assert b.acquire(PARKS, 1000 + 5 * TTL).keys() == set(PARKS)
        # a keep-alive never takes back what was taken meanwhile
        a.keep_alive(1000 + 5 * TTL + 1)
        with pytest.raises(LeaseLost), db.transaction() as conn:
            a.fence("p1")(conn)
    finally:
        db.close()
