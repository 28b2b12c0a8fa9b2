"""An exchange entered from a detected opportunity: its projection and legal status taken
from the latest run, so that the CLI and the API start it from the same figures."""

from __future__ import annotations

from typing import Any

from parkflow.errors import InputError
from service.exchanges.pipeline import Projection
from service.exchanges.projection import projection_of
from service.results import ResultsDb


def latest_opportunity(results: ResultsDb, opportunity_id: str) -> dict[str, Any]:
    run = results.latest_run()
    for o in results.opportunities(run.id) if run else []:
        if o.get("id") == opportunity_id:
            return o
    raise InputError(f"no opportunity {opportunity_id} in the latest detection run")


def from_opportunity(results: ResultsDb, opportunity_id: str) -> tuple[Projection, str, str]:
    """The projection, legal status and park of the latest run's ``opportunity_id``."""
    o = latest_opportunity(results, opportunity_id)
    return projection_of(o), str(o.get("legal_status") or "unknown"), str(o["park"])
