"""A park's report for a period from the operational database: what the command and the API
both hand to ``assemble`` (its exchanges, their moves and verified days)."""

from __future__ import annotations

from parkflow.registry.schema import Park
from service.exchanges.repository import ExchangeRepository
from service.exchanges.verify import day_ms_of
from service.report.assemble import Report, assemble
from service.report.criteria import CriteriaFile
from service.report.period import Period
from service.rollups.compute import standard_offset_ms


def build_report(
    repo: ExchangeRepository, park: Park, period: Period, criteria: CriteriaFile
) -> Report:
    entries = repo.entries(park.id)
    moves = {e.id: repo.moves(e.id) for e in entries}
    days = repo.savings(park=park.id, start=period.start, end=period.end)
    offset = standard_offset_ms(park.timezone)
    return assemble(
        park.id,
        park.name,
        [t.id for t in park.tenants],
        period,
        entries,
        moves,
        days,
        criteria,
        {d: day_ms_of(d, offset) for d in (period.start, period.end)},
    )
