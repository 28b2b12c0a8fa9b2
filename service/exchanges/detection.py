"""What detection subtracts: the registry's declared exchanges, and the exchanges registered
in the operational database that run (operating or verified).

The registry file is the park's declaration and stays authoritative: where it declares the
same (from-meter, to-meter) pair, its entry is used and the database's is not added again,
so no flow is subtracted twice. A database exchange metered as a share of the supplier's
out-meter is subtracted as that share; any other as its frozen projection's quantity per day
(what the parties agreed to move), in the exchange's unit, which is the supplier meter's.
An exchange that ended, or has no projection and no share, is not subtracted.
"""

from __future__ import annotations

from collections.abc import Sequence

from parkflow.registry import Registry
from parkflow.registry.schema import Exchange as DeclaredExchange
from service.exchanges.model import Exchange, Method
from service.exchanges.pipeline import Stage

RUNNING = (Stage.OPERATING, Stage.VERIFIED)


def declared(ex: Exchange) -> DeclaredExchange | None:
    """The registry entry an exchange stands for, or ``None`` when it has no amount."""
    pipe = ex.pipeline
    if pipe is None or pipe.stage not in RUNNING or not ex.from_meter or not ex.to_meter:
        return None
    m = ex.metering
    if m.method is Method.SUPPLIER_SHARE and m.meter == ex.from_meter and m.share is not None:
        return DeclaredExchange(
            from_meter=ex.from_meter, to_meter=ex.to_meter, share=float(m.share), since=ex.start
        )
    if pipe.projection is None or pipe.projection.quantity_per_day <= 0:
        return None
    return DeclaredExchange(
        from_meter=ex.from_meter,
        to_meter=ex.to_meter,
        quantity_per_day=pipe.projection.quantity_per_day,
        since=ex.start,
    )


def with_registered(registry: Registry, exchanges: Sequence[Exchange]) -> Registry:
    """The registry detection runs on: its parks' exchanges plus the running ones of the
    database it does not declare."""
    extra: dict[str, list[DeclaredExchange]] = {}
    for ex in exchanges:
        park = registry.parks.get(ex.park)
        entry = declared(ex)
        if park is None or entry is None:
            continue
        pairs = {(e.from_meter, e.to_meter) for e in park.exchanges}
        pairs |= {(e.from_meter, e.to_meter) for e in extra.get(ex.park, [])}
        if (entry.from_meter, entry.to_meter) not in pairs:
            extra.setdefault(ex.park, []).append(entry)
    if not extra:
        return registry
    parks = [
        p.model_copy(update={"exchanges": [*p.exchanges, *extra.get(p.id, [])]})
        for p in registry.model.parks
    ]
    return Registry(registry.model.model_copy(update={"parks": parks}))
