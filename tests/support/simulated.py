"""The simulated sample park written into a store as the ingestor writes it, and rolled up as
the service does: what tests of everything downstream of the rollups start from."""

from __future__ import annotations

from ingest.validate import Validator
from parkflow.model import WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry
from parkflow.store import Store
from parkflow.timeunits import now_ms
from service.knowledge import load_knowledge
from service.rollups import RollupWorker
from service.simulate import prepare


def fill_with_simulated_park(store: Store, end_ms: int, days: float) -> Registry:
    """``days`` of the sample park's readings up to ``end_ms``, validated (the planted faults
    quarantined) and written, then rolled up; the park's registry."""
    sim = prepare(load_registry(SAMPLE_REGISTRY).model, None, load_knowledge(), end_ms, days)
    registry = Registry(sim.scenario.registry)
    validator = Validator(registry)
    for m in sim.plan.messages:
        good, bad, message = validator.validate(m.topic, m.payload, end_ms)
        store.write(WriteBatch(tuple(good), tuple(bad), (message,) if message else ()))
    RollupWorker(store, registry, margin_ms=0).run_once(now_ms())  # markers: the wall clock
    return registry
