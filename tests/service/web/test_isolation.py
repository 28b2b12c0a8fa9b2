"""Tenant isolation of the pages, generated from the pages' own routes: tenant A's session
against tenant B's objects on every page and form, B's ids in the path and the query. A gets a
refusal, or a page without any of B's identifiers; a form naming B's objects changes nothing.
A route this test does not know the objects of fails it: a page added later cannot go
unchecked. On both operational databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from service.alerts.consents import ConsentRepository
from service.alerts.lifecycle import Status
from service.exchanges.repository import ExchangeRepository
from service.web.routes import router
from tests.service.api.conftest import PARK, A, B
from tests.service.web.conftest import Web, csrf_of

PUBLIC = {
    "/web/static/{name}",
    "/web/login",
    "/web/logout",
    "/web/",
    "/web/{rest:path}",
}  # nobody's data
QUERY = {"tenant": B, "park": PARK, "days": 28}


def _b_objects(web: Web) -> tuple[dict[str, list[str]], set[str]]:
    ctx = web.ctx
    b = next(t for t in ctx.registry.parks[PARK].tenants if t.id == B)
    run = ctx.results.latest_run()
    assert run is not None
    opps = ctx.results.opportunities(run.id, tenant=B)
    shared = [o for o in opps if A in (o["from_tenant"], o["to_tenant"])]
    b_only = [o for o in opps if A not in (o["from_tenant"], o["to_tenant"])]
    alerts = [a for a in ctx.alerts.alerts() if a.tenant == B and a.status == Status.OPEN]
    assert shared and b_only and alerts
    values = {
        "alert_id": [a.id for a in alerts],
        "ref": [ctx.pepper.reference(b_only[0]["id"]), b_only[0]["id"], shared[0]["id"]],
        "exchange_id": ["x-bc", "x-ab"],
    }
    secrets = {b.name, web.api.b_key_id, "x-bc", *(a.id for a in alerts), *(m.id for m in b.meters)}
    return values, secrets


def _leaked(html: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", html))


def test_a_tenants_session_never_reaches_another_tenants_objects(web_sql: Web) -> None:
    web = web_sql
    values, secrets = _b_objects(web)
    a = web.login(web.api.a)
    op = web.login(web.api.operator)
    stages = {e.id: e.pipeline.stage for e in ExchangeRepository(web.ctx.db).entries()}
    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.path not in PUBLIC]
    assert len(routes) >= 10
    found: list[str] = []
    for route in routes:
        names = re.findall(r"{(\w+)}", route.path)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{route.path}: add B's objects for {unknown} to this test"
        paths = [route.path]
        for n in names:
            paths = [p.replace("{" + n + "}", v) for p in paths for v in values[n]]
        for method in sorted(route.methods or ()):
            for path in paths:
                data = {"csrf": csrf_of(a), "to": "ended", "note": "x", "reason": "x"}
                r = a.request(method, path, params=QUERY, data=data if method == "POST" else None)
                assert r.status_code < 500, (method, path, r.text[:300])
                if method == "POST":  # a form on B's objects: refused, nothing done
                    assert r.status_code in (403, 404), (path, r.status_code)
                    continue
                if r.status_code == 403:
                    continue
                assert r.status_code == 200, (path, r.status_code)
                if leaked := _leaked(r.text, secrets):
                    found.append(f"{method} {path} gave tenant A {leaked}")
    assert found == []
    # nothing of B's was changed by A's forms
    assert all(
        x.status == Status.OPEN for x in web.ctx.alerts.alerts() if x.id in values["alert_id"]
    )
    assert {e.id: e.pipeline.stage for e in ExchangeRepository(web.ctx.db).entries()} == stages
    assert ConsentRepository(web.ctx.db).of() == []
    # the objects are real: the operator's pages show them
    shown = op.get("/web/park").text + op.get("/web/alerts").text + op.get("/web/exchanges").text
    assert set(_leaked(shown, secrets)) >= {web.ctx.names(PARK)[B], "x-bc", *values["alert_id"]}
