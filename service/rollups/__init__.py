"""Rollups: hourly quantities per meter and park-local day, kept current as readings arrive."""

from service.rollups.compute import MeterMaths, hour_quantities, rollups_for_range
from service.rollups.worker import RollupWorker, RunStats

__all__ = ["MeterMaths", "RollupWorker", "RunStats", "hour_quantities", "rollups_for_range"]
