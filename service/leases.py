"""Parks leased to replicas: N ``parkflow serve`` over one operational database, each park's
detection, plan, alerts and savings on exactly one of them at a time, moving when it dies.

A lease is a row per park (``park_leases``): who holds it, until when, and a fencing epoch
bumped whenever the park changes hands. Each replica, every few seconds, renews its own and
takes free or expired ones up to its fair share, ``ceil(parks / live replicas)``; beyond it, it
lets go of the extra so that a replica just started gets some. Live replicas are counted from
their heartbeat rows (``lease_holders``), not from who holds a lease: a replica that holds
nothing yet (it started while another held every park) must still count, or the incumbent's
share would stay every park and the newcomer would never get one.

On PostgreSQL the rows to change are locked with ``FOR UPDATE SKIP LOCKED``: two replicas
deciding at once never wait on each other, each changes only the rows it locked, and a row
another is changing (or writing results under, ``fence``) is left for the next round. SQLite
has one writer at a time (``BEGIN IMMEDIATE``): the same logic runs, without the clause.

A writer checks its lease inside the transaction that writes (``fence``): the park's holder
and epoch still what it took, read ``FOR SHARE`` so that no takeover commits in between. A
replica paused past its lease (a stalled disk, a stopped VM) whose park was taken over finds
the epoch changed and writes nothing.

``decide`` is the pure part (which parks to renew, take, let go); ``Leases`` is its SQL.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parkflow.errors import StoreError
from service.state import Database, Fence
from service.state.tables import lease_holders, park_leases


class LeaseLost(StoreError):
    """The park changed hands since this replica took it: what it computed is not written."""


@dataclass(frozen=True, slots=True)
class Lease:
    park: str
    holder: str | None  # None: let go, free to take
    expires_ms: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Decision:
    renew: tuple[str, ...]  # held, kept: expiry moved on, epoch unchanged
    take: tuple[str, ...]  # free or expired: taken, epoch bumped
    release: tuple[str, ...]  # held beyond the fair share: let go for another replica


def fair_share(parks: int, live: int) -> int:
    return math.ceil(parks / max(1, live))


def decide(
    holder: str,
    parks: Sequence[str],
    leases: Mapping[str, Lease],
    live: Collection[str],
    now_ms: int,
    lockable: Collection[str] | None = None,
) -> Decision:
    """What ``holder`` does with the ``parks`` of its registry, given their lease rows (a park
    without one is free), the live replicas (``holder`` counts whether listed or not) and, when
    known, the parks whose rows it could lock (the others are being changed by someone else:
    left alone this round). Deterministic: parks in sorted order, the last ones let go first."""
    can = set(parks) if lockable is None else set(lockable)
    share = fair_share(len(parks), len(set(live) | {holder}))
    ordered = sorted(set(parks))
    # A lease of its own that expired while nobody took it is still its own: nobody else
    # wrote meanwhile (taking it bumps the epoch), so it is renewed rather than re-taken.
    mine = [p for p in ordered if p in leases and leases[p].holder == holder]
    keep, extra = mine[:share], mine[share:]
    free = [
        p
        for p in ordered
        if p in can
        and (
            p not in leases
            or leases[p].holder is None
            or (leases[p].holder != holder and leases[p].expires_ms <= now_ms)
        )
    ]
    return Decision(
        renew=tuple(p for p in keep if p in can),
        take=tuple(free[: max(0, share - len(mine))]),
        release=tuple(p for p in extra if p in can),
    )


class Leases:
    """One replica's leases in the operational database. ``held`` is what the last
    ``acquire`` left it: park -> the epoch it holds it at (what ``fence`` checks)."""

    def __init__(self, db: Database, holder: str, ttl_ms: int) -> None:
        self.db = db
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.held: dict[str, int] = {}

    def _skip_locked(self, conn: Connection) -> bool:
        return conn.dialect.name == "postgresql"

    def _rows(self, conn: Connection, parks: Collection[str], *, lock: bool) -> dict[str, Lease]:
        c = park_leases.c
        query = sa.select(c.park, c.holder, c.expires_ms, c.epoch).where(c.park.in_(list(parks)))
        if lock and self._skip_locked(conn):
            query = query.with_for_update(skip_locked=True)
        return {r.park: Lease(r.park, r.holder, r.expires_ms, r.epoch) for r in conn.execute(query)}

    def _ensure(self, conn: Connection, parks: Collection[str]) -> None:
        """A row for every park of the registry: a park never seen is free to take."""
        have = set(conn.execute(sa.select(park_leases.c.park)).scalars())
        missing = [
            {"park": p, "holder": None, "expires_ms": 0, "epoch": 0}
            for p in sorted(set(parks) - have)
        ]
        if not missing:
            return
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(park_leases).on_conflict_do_nothing(), missing)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(park_leases).on_conflict_do_nothing(), missing)

    def _heartbeat(self, conn: Connection, now_ms: int) -> None:
        values = {"seen_ms": now_ms, "expires_ms": now_ms + self.ttl_ms}
        done = conn.execute(
            lease_holders.update().where(lease_holders.c.holder == self.holder).values(**values)
        )
        if not done.rowcount:
            conn.execute(lease_holders.insert().values(holder=self.holder, **values))

    def live(self, now_ms: int) -> set[str]:
        """The replicas whose heartbeat has not expired."""
        c = lease_holders.c
        with self.db.connect() as conn:
            return set(conn.execute(sa.select(c.holder).where(c.expires_ms > now_ms)).scalars())

    def acquire(self, parks: Sequence[str], now_ms: int) -> dict[str, int]:
        """Heartbeat, renew, take, let go (``decide``); returns the parks held and their epochs.
        A database that fails leaves ``held`` empty: a replica that cannot renew must assume
        its leases gone (another may take them once they expire)."""
        try:
            self.held = self._acquire(parks, now_ms)
        except StoreError:
            self.held = {}
            raise
        return dict(self.held)

    def _acquire(self, parks: Sequence[str], now_ms: int) -> dict[str, int]:
        self.db.retrying(lambda conn: self._heartbeat(conn, now_ms))
        self.db.retrying(lambda conn: self._ensure(conn, parks))

        def work(conn: Connection) -> dict[str, int]:
            c = park_leases.c
            live = set(
                conn.execute(
                    sa.select(lease_holders.c.holder).where(lease_holders.c.expires_ms > now_ms)
                ).scalars()
            )
            seen = self._rows(conn, parks, lock=False)
            first = decide(self.holder, parks, seen, live, now_ms)
            wanted = {*first.renew, *first.take, *first.release}
            # lock only the rows to change (and re-read them locked): another replica's
            # rows are never held up by this one's round
            locked = self._rows(conn, wanted, lock=True) if wanted else {}
            rows = {**seen, **locked}
            final = decide(self.holder, parks, rows, live, now_ms, lockable=locked)
            until = now_ms + self.ttl_ms
            if final.renew:
                conn.execute(
                    park_leases.update()
                    .where(c.park.in_(final.renew), c.holder == self.holder)
                    .values(expires_ms=until)
                )
            for p in final.take:
                conn.execute(
                    park_leases.update()
                    .where(c.park == p, c.epoch == rows[p].epoch)
                    .values(holder=self.holder, expires_ms=until, epoch=rows[p].epoch + 1)
                )
            if final.release:
                conn.execute(
                    park_leases.update()
                    .where(c.park.in_(final.release), c.holder == self.holder)
                    .values(holder=None, expires_ms=0)
                )
            held = conn.execute(
                sa.select(c.park, c.epoch).where(c.holder == self.holder, c.park.in_(list(parks)))
            ).all()
            return {p: int(e) for p, e in held}

        return self.db.retrying(work)

    def keep_alive(self, now_ms: int) -> None:
        """The heartbeat, and the leases this replica holds extended; nothing taken or let
        go. A thread of its own calls it every third of the lease, so that a long cycle
        (a big park's detection, a rollup catching up) never outlives the leases it runs
        under, nor makes the others count this replica dead and take all its parks."""
        c = park_leases.c

        def work(conn: Connection) -> None:
            self._heartbeat(conn, now_ms)
            conn.execute(
                park_leases.update()
                .where(c.holder == self.holder, c.expires_ms > now_ms)
                .values(expires_ms=now_ms + self.ttl_ms)
            )

        self.db.retrying(work)

    def release_all(self) -> None:
        """On a clean stop: every lease let go at once (no waiting out the expiry) and the
        heartbeat removed, so the others' fair share grows right away."""
        c = park_leases.c
        with self.db.transaction() as conn:
            conn.execute(
                park_leases.update()
                .where(c.holder == self.holder)
                .values(holder=None, expires_ms=0)
            )
            conn.execute(lease_holders.delete().where(lease_holders.c.holder == self.holder))
        self.held = {}

    def fence(self, park: str) -> Fence:
        """The check a write for ``park`` runs first in its own transaction: ``LeaseLost`` when
        the park is no longer this replica's at the epoch it took it at."""
        epoch = self.held.get(park)
        holder = self.holder

        def check(conn: Connection) -> None:
            c = park_leases.c
            query = sa.select(c.holder, c.epoch).where(c.park == park)
            if self._skip_locked(conn):
                query = query.with_for_update(read=True)  # FOR SHARE: no takeover meanwhile
            row = conn.execute(query).first()
            if epoch is None or row is None or (row.holder, row.epoch) != (holder, epoch):
                raise LeaseLost(f"park {park}'s lease was lost (taken over or let go)")

        return check
