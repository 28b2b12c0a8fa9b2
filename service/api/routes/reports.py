"""The park's report for a month or a year (``service.report``), for operators: the same rows
``parkflow report`` writes, as CSV (both languages' labels) or as the printable HTML page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from parkflow.errors import InputError
from service.api.deps import ContextDep, CurrentOperator
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.auth.access import can_see_park
from service.report.build import build_report
from service.report.criteria import load_criteria
from service.report.period import parse_period
from service.report.render import to_csv, to_html

router = APIRouter(prefix="/v1", tags=["reports"], responses=RESPONSES)


@router.get(
    "/reports/{park}",
    summary="the park's report for a month (2026-10) or a year (2026): CSV or printable HTML",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "text/html": {}}}},
)
def report(
    park: str,
    ctx: ContextDep,
    operator: CurrentOperator,
    period: Annotated[str, Query(examples=["2026-10", "2026"], max_length=7)],
    format: Annotated[Literal["csv", "html"], Query()] = "csv",
    lang: Annotated[Literal["en", "vi"], Query()] = "en",
) -> Response:
    p = ctx.registry.parks.get(park)
    if p is None or not can_see_park(operator, park):
        raise not_found(f"park {park}")
    try:
        when = parse_period(period)
    except InputError as exc:
        raise ApiProblem(400, str(exc)) from None
    criteria = load_criteria()
    built = build_report(ctx.exchanges, p, when, criteria)
    name = f"parkflow-{park}-{when.label}"
    if format == "html":
        return HTMLResponse(to_html(built, criteria, lang))
    return PlainTextResponse(
        to_csv(built),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
