"""Which topics each ingestor subscribes to: plain persistent subscriptions, split by tenant.

Why not an MQTT v5 shared subscription: Mosquitto 2.0 does not write shared subscriptions to
its persistence file, so after a clean broker restart the ingestors' sessions come back without
them, and until each ingestor reconnects and subscribes again the broker answers gateways'
publishes with "no matching subscribers" and drops them. A plain subscription is restored
with the session, and the broker queues for it while the ingestor is away.

One ingestor (``1/1``, the default) subscribes ``ip/+/+/+/readings``; one that serves some
parks only (``PARKFLOW_PARKS``: a park's broker and its ingestors are one shard, the park id
its key) subscribes ``ip/{park}/+/+/readings`` for each of them, and its members split those
parks' tenants. With ``n`` ingestors each
tenant's topics ``ip/{park}/{tenant}/+/readings`` go to exactly one member, chosen by rendezvous
hashing: every member computes the same assignment from the same registry, and adding a member
or a tenant moves only the tenants that must move. One tenant's readings then always reach the
same ingestor in the order its gateway published them, so a correction never races its original.

A member's session keeps whatever it subscribed under an earlier layout (the catch-all, or
tenants that now belong to another member). Dropping those right away would leave a gap until
the new owner has subscribed; so each member records the layout it has subscribed in the store,
and drops what is no longer its own only once every other member has recorded the same layout.
Until then a tenant may reach two members, which costs work, never data (the store is
idempotent).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parkflow.registry import Registry
from parkflow.topics import ALL_READINGS, TOPIC_PREFIX, TOPIC_SUFFIX, tenant_topics

CATCH_ALL = ALL_READINGS
MAX_MEMBERS = 64
_PARTITION = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")
_LAYOUT_BITS = 62  # fits the stores' integer state


@dataclass(frozen=True, slots=True)
class Partition:
    """Member ``member`` (1-based) of ``members`` ingestors of the shard ``parks`` (empty:
    every park of the registry)."""

    member: int = 1
    members: int = 1
    parks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.members <= MAX_MEMBERS:
            raise ValueError(f"a partition has 1 to {MAX_MEMBERS} members, not {self.members}")
        if not 1 <= self.member <= self.members:
            raise ValueError(f"member {self.member} is not one of 1..{self.members}")

    @classmethod
    def parse(cls, text: str, parks: Iterable[str] = ()) -> Partition:
        """``"2/3"``: the second of three ingestors."""
        m = _PARTITION.match(text)
        if not m:
            raise ValueError(f"partition {text!r} is not MEMBER/MEMBERS, e.g. 1/2")
        return cls(int(m.group(1)), int(m.group(2)), tuple(sorted(set(parks))))

    def __str__(self) -> str:
        return f"{self.member}/{self.members}"


tenant_filter = tenant_topics


def _score(park: str, tenant: str, member: int) -> bytes:
    return hashlib.sha256(f"{park}/{tenant}#{member}".encode()).digest()


def owner(park: str, tenant: str, members: int) -> int:
    """The member (1-based) that takes this tenant: the highest score wins (rendezvous)."""
    return max(range(1, members + 1), key=lambda k: _score(park, tenant, k))


def tenants_of(registry: Registry, parks: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The tenants a shard serves: of ``parks``, or of every park when none are named."""
    return sorted(
        (p.id, t.id) for p in registry.model.parks if not parks or p.id in parks for t in p.tenants
    )


def assignment(
    registry: Registry, members: int, parks: Sequence[str] = ()
) -> dict[int, list[tuple[str, str]]]:
    """Every member's tenants, for all members (each member computes the same)."""
    out: dict[int, list[tuple[str, str]]] = {k: [] for k in range(1, members + 1)}
    for park, tenant in tenants_of(registry, parks):
        out[owner(park, tenant, members)].append((park, tenant))
    return out


def park_filter(park: str) -> str:
    """Every meter of every tenant of one park."""
    return f"{TOPIC_PREFIX}/{park}/+/+/{TOPIC_SUFFIX}"


def filters_for(registry: Registry, partition: Partition) -> list[str]:
    """What this member subscribes to."""
    if partition.members == 1:
        return [park_filter(p) for p in partition.parks] or [CATCH_ALL]
    mine = assignment(registry, partition.members, partition.parks)[partition.member]
    return [tenant_filter(p, t) for p, t in mine]


def stale_filters(registry: Registry, partition: Partition) -> list[str]:
    """Filters an earlier layout may have left in this member's session that are not its own
    now: the catch-all, every park's filter and every tenant's, of the whole registry (an
    earlier layout may have served other parks, or all of them). Unsubscribing one that is
    not held is harmless, so the list need not know the earlier layout."""
    own = set(filters_for(registry, partition))
    every = [
        CATCH_ALL,
        *(park_filter(p) for p in registry.parks),
        *(tenant_filter(p, t) for p, t in tenants_of(registry)),
    ]
    return [f for f in every if f not in own]


def layout_id(registry: Registry, members: int, parks: Sequence[str] = ()) -> int:
    """A number naming the whole assignment: members agree on a layout when theirs are equal."""
    h = hashlib.sha256(str(members).encode())
    for member, tenants in sorted(assignment(registry, members, parks).items()):
        for park, tenant in tenants:
            h.update(f"\n{member} {park}/{tenant}".encode())
    return int.from_bytes(h.digest()[:8], "big") >> (64 - _LAYOUT_BITS)


def shard_state(kind: str, name: str, parks: Sequence[str] = ()) -> str:
    """A store state name of one shard's: shards that share one store (each park its broker
    and ingestors) keep their records apart (``ingest.layout.songlam.1``); an unsharded
    deployment keeps the names it always had (``ingest.layout.1``)."""
    return f"ingest.{kind}.{'+'.join(parks)}.{name}" if parks else f"ingest.{kind}.{name}"


def layout_key(member: int, parks: Sequence[str] = ()) -> str:
    """The store state name under which a member records the layout it has subscribed:
    member 1 of one park's ingestors is not member 1 of another's."""
    return shard_state("layout", str(member), parks)


def others(partition: Partition) -> Iterable[int]:
    return (k for k in range(1, partition.members + 1) if k != partition.member)


def describe(registry: Registry, members: int) -> list[str]:
    """One line per member: its tenants and meters, for ``parkflow registry partition``."""
    meters = {(p.id, t.id): len(t.meters) for p in registry.model.parks for t in p.tenants}
    lines = []
    for member, tenants in assignment(registry, members).items():
        n = sum(meters[k] for k in tenants)
        names = ", ".join(f"{p}/{t}" for p, t in tenants) or "(none)"
        lines.append(f"{member}/{members}: {len(tenants)} tenant(s), {n} meter(s): {names}")
    return lines


def chunks(filters: Sequence[str], size: int = 200) -> Iterable[Sequence[str]]:
    """Subscribe and unsubscribe packets of a bounded size (a park may have many tenants)."""
    for i in range(0, len(filters), size):
        yield filters[i : i + size]
