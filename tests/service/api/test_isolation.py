"""Tenant isolation, generated from the app's own routes: tenant A's key against tenant B's
objects on every route and method, B's ids in the path, the query and the body. A must get
403 or 404, or an answer without any of B's identifiers; the operator's same request must
succeed, so B's objects are real and a missing check would show. A route this test does not
know the objects of fails it: a route added later cannot go unchecked. On both operational
databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from service.api.deps import CurrentPrincipal
from service.exchanges.savings import DaySavings
from tests.service.api.conftest import PARK, A, Api, B

PUBLIC = {"/healthz", "/readyz", "/metrics"}  # no tenant's data: not behind a key
NO_TENANT_DATA = {"/v1/me", "/v1/parks", "/v1/parks/{park}"}  # the caller's own, the park's
PAGES = "/web/"  # the pages: cookie sessions, not in the API document; their own isolation test


def _b_objects(api: Api) -> tuple[dict[str, list[str]], set[str]]:
    """Values of each path parameter that are B's (or name B), and the strings that must not
    reach A: B's id, name, meters, and the ids of what is B's alone."""
    ctx = api.ctx
    registry = ctx.registry
    b = next(t for t in registry.parks[PARK].tenants if t.id == B)
    run = ctx.results.latest_run()
    assert run is not None
    opps = ctx.results.opportunities(run.id, tenant=B)
    shared = [o for o in opps if A in (o["from_tenant"], o["to_tenant"])]
    b_only = [o for o in opps if A not in (o["from_tenant"], o["to_tenant"])]
    assert shared and b_only, "the sample park gives B exchanges with A and with others"
    surpluses = ctx.results.surpluses(run.id, tenant=B)
    alerts = [a for a in ctx.alerts.alerts() if a.tenant == B]
    assert surpluses and alerts
    values = {
        "park": [PARK],
        "tenant": [B],
        "meter": [m.id for m in b.meters],
        "surplus_id": [s["id"] for s in surpluses],
        "ref": [
            b_only[0]["id"],
            ctx.pepper.reference(b_only[0]["id"]),
            shared[0]["id"],  # A's own exchange, asked by the id that names B's meter
        ],
        "alert_id": [a.id for a in alerts],
        "key_id": [api.b_key_id],
        "exchange_id": [_b_exchange(api, b_only[0])],
    }
    secrets = {json.dumps(B), b.name, api.b_key_id, *(m.id for m in b.meters)}
    secrets |= {a.id for a in alerts} | set(values["exchange_id"])
    return values, secrets


def _b_exchange(api: Api, o: dict[str, Any]) -> str:
    """An exchange entered from an opportunity of B's alone, with a verified day of savings."""
    xid = "b-only-exchange"
    if not api.ctx.exchanges.entries(PARK):
        api.ctx.exchanges.create(xid, PARK, "ops", "test", opportunity_id=o["id"])
        day = DaySavings(
            xid,
            PARK,
            date(2026, 11, 1),
            24,
            1.0,
            10.0,
            1,
            2,
            3,
            10.0,
            0.0,
            0.0,
            None,
            None,
            None,
            False,
            0,
        )
        api.ctx.exchanges.write_savings([day])
    return xid


BODIES: dict[str, dict[str, Any]] = {
    "AcknowledgeIn": {"reason": "not mine"},
    "SilenceIn": {
        "subject": f"{PARK}/{B}/wwtp-effluent",
        "until": "2099-01-01T00:00:00Z",
        "reason": "x",
    },
    "KeyIn": {"name": "stolen", "role": "tenant", "park": PARK, "tenant": B},
    # an opportunity of B's alone, by the reference a tenant would quote (filled in below)
    "ConsentIn": {"opportunity": None, "tenant": B},
    "ExchangeIn": {"id": "stolen", "park": PARK, "owner": "a", "opportunity": None},
    "MoveIn": {"to": "screened", "note": "not mine"},
    "RegistrationIn": {"benefit": "water", "method": "transfer_meter", "start": "2026-10-01"},
    "PriceIn": {"item": "displaced", "effective": "2026-10-01", "vnd_per_unit": "100"},
}
# every state: the operator's own requests resolve B's alerts before the last check
QUERY = {
    "tenant": B,
    "park": PARK,
    "limit": 1000,
    "status": ["open", "acknowledged", "resolved"],
    "period": "2026-11",
}


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers (FastAPI keeps them nested)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        inner = getattr(r, "original_router", None) or r
        if inner is not r or hasattr(r, "routes"):
            yield from api_routes(getattr(inner, "routes", []))


def _requests(
    path: str, operations: dict[str, Any], values: dict[str, list[str]]
) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for method, op in operations.items():
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{path}: add B's objects for {unknown} to this test"
        body = None
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            model = ref.rsplit("/", 1)[-1]
            assert model in BODIES, f"{path}: add a body naming B's objects for {model}"
            body = dict(BODIES[model])
            if model == "ConsentIn":
                body["opportunity"] = values["ref"][1]
            elif model == "ExchangeIn":
                body["opportunity"] = values["ref"][0]
        paths = [path]
        for n in names:
            paths = [p.replace("{" + n + "}", v) for p in paths for v in values[n]]
        out += [(method.upper(), p, body) for p in paths]
    return out


def leaks(api: Api) -> list[str]:
    """What tenant A got of B's on any route (empty: nothing), after checking that the
    operator's same requests find B's objects."""
    values, secrets = _b_objects(api)
    app = api.client.app
    assert isinstance(app, FastAPI)
    app.openapi_schema = None  # routes may have been added since it was made
    documented: dict[str, dict[str, Any]] = app.openapi()["paths"]
    # every route is in the document (none hidden from it, and so from this test)
    routes = {r.path for r in api_routes(app.routes) if not r.path.startswith(PAGES)}
    assert routes == set(documented)
    assert set(documented) >= PUBLIC | NO_TENANT_DATA
    calls = [
        (path, call)
        for path, operations in documented.items()
        if path not in PUBLIC
        for call in _requests(path, operations, values)
    ]
    assert len(calls) > 20
    found: list[str] = []
    answered: list[tuple[str, tuple[str, str, Any]]] = []
    for template, (method, path, body) in calls:
        r = api.client.request(method, path, headers=api.a, params=QUERY, json=body)
        assert r.status_code < 500, (method, path, r.text)
        if r.status_code in (403, 404):
            assert r.headers["content-type"] == "application/problem+json"
            continue
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
        leaked = [s for s in secrets if s in r.text]
        if leaked:
            found.append(f"{method} {path} gave tenant A {sorted(leaked)}")
        answered.append((template, (method, path, body)))
    if found:
        return found
    # the objects are real: the operator's same requests succeed, and what A got filtered
    # was there to filter
    for _template, (method, path, body) in calls:
        r = api.client.request(method, path, headers=api.operator, params=QUERY, json=body)
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
    for template, (method, path, body) in answered:
        if template in NO_TENANT_DATA or method != "GET":
            continue
        r = api.client.request(method, path, headers=api.operator, params=QUERY, json=body)
        assert any(s in r.text for s in secrets), f"{path}: B's objects were not there to hide"
    return found


def test_a_tenant_never_reaches_another_tenants_objects(api_sql: Api) -> None:
    assert leaks(api_sql) == []


def test_a_route_added_without_a_check_fails_the_isolation_test(api: Api) -> None:
    """The test above catches the mistake it exists for: a route that trusts its path."""
    app = api.client.app
    assert isinstance(app, FastAPI)
    leaky = APIRouter()

    @leaky.get("/v1/leaky/{park}/{tenant}")
    def leaky_meters(park: str, tenant: str, principal: CurrentPrincipal) -> list[str]:
        rm = api.ctx.registry.parks[park]
        return [m.id for t in rm.tenants if t.id == tenant for m in t.meters]

    app.include_router(leaky)
    assert leaks(api) == [
        f"GET /v1/leaky/{PARK}/{B} gave tenant A ['wwtp-effluent', 'wwtp-inflow']"
    ]
