"""What was quarantined (``parkflow.quarantine``): operators see their park's, a tenant what
was attributed to it (never what someone else's gateway sent on its name: see
``QuarantineLog.quarantined``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from parkflow.quarantine import QuarantineFilter, quarantine_rows
from service.api.deps import CurrentPrincipal, PageDep, StoreDep
from service.api.models import Paged, QuarantineOut, at, ms, paged
from service.api.problems import RESPONSES
from service.auth.access import can_see

router = APIRouter(prefix="/v1", tags=["quarantine"], responses=RESPONSES)

MAX_ROWS = 10_000  # offset + limit


@router.get("/quarantine", summary="quarantined records, most recent first")
def quarantine(
    principal: CurrentPrincipal,
    store: StoreDep,
    page: PageDep,
    since: Annotated[datetime | None, Query(description="RFC 3339")] = None,
    until: Annotated[datetime | None, Query(description="RFC 3339, excluded")] = None,
    park: Annotated[str | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
    meter: Annotated[str | None, Query()] = None,
    reason: Annotated[str | None, Query(examples=["out_of_range"])] = None,
) -> Paged[QuarantineOut]:
    # the filters narrow what the principal may see, as on every list: another park's or
    # tenant's name asks for nothing, not for the principal's own rows
    mine = None if principal.is_operator else principal.tenant
    if park not in (None, principal.park or park) or tenant not in (None, mine or tenant):
        return Paged[QuarantineOut].model_validate(paged([], page.limit, page.offset))
    park, tenant = principal.park or park, mine or tenant
    wanted = QuarantineFilter(
        since_ms=None if since is None else ms(since),
        until_ms=None if until is None else ms(until),
        park=park,
        tenant=tenant,
        meter=meter,
        reason=reason,
        limit=min(page.offset + page.limit + 1, MAX_ROWS),
    )
    rows = [
        r
        for r in quarantine_rows(store, wanted)
        # records naming no park (a bad topic) are the operators' of every park
        if can_see(principal, r.park, (r.tenant,))
    ]
    items = [
        QuarantineOut(
            received_at=at(r.received_ms),
            **{k: v for k, v in r.as_dict().items() if k != "received_ms"},
        )
        for r in rows
    ]
    out = paged(items, page.limit, page.offset)
    out["total"] = len(items)  # of those read: at most offset + limit + 1
    return Paged[QuarantineOut].model_validate(out)
