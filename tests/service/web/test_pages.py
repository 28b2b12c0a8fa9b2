"""Each page over real parts through the app (TestClient): what an operator and a tenant see,
sign-in, the session's end, CSRF refusals, and the forms' effects in the database."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from parkflow.timeunits import DAY_MS
from service.alerts.consents import ConsentRepository
from service.alerts.lifecycle import Status
from service.exchanges.repository import ExchangeRepository
from service.web import formats
from service.web.session import CSRF_COOKIE, SESSION_COOKIE
from tests.service.api.conftest import NOW, PARK, A, B
from tests.service.web.conftest import IDEA, Web, csrf_of, login


def _page(client: TestClient, path: str, status: int = 200) -> str:
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    return str(r.text)


def test_an_operator_sees_the_park(web: Web) -> None:
    op = web.login(web.api.operator)
    html = _page(op, "/web/park")
    names = web.ctx.names(PARK)
    assert names[A] in html and names[B] in html
    assert "water.treated_effluent" in html and "<svg" in html
    totals = web.ctx.results.plan(web.ctx.results.latest_run().id)  # type: ignore[union-attr]
    assert totals is not None and f"{totals['n_links']} exchanges" in html
    assert "out_of_range" in html  # quarantine by reason
    opps = _page(op, "/web/opportunities")
    assert "Excludes" in opps and "not in the plan" in opps
    pipeline = _page(op, "/web/exchanges")
    assert "x-ab" in pipeline and "x-bc" in pipeline and IDEA in pipeline
    savings = _page(op, "/web/savings")
    assert "x-ab" in savings and "<svg" in savings and "the park" in savings


def test_a_tenant_sees_its_own_and_never_another_tenants(web: Web) -> None:
    a = web.login(web.api.a)
    b_name = web.ctx.names(PARK)[B]
    b_meters = [m.id for t in web.ctx.registry.parks[PARK].tenants if t.id == B for m in t.meters]
    for path in ("/web/me", "/web/alerts", "/web/me/opportunities", "/web/me/savings"):
        html = _page(a, path)
        assert b_name not in html, path
        leaked = [m for m in b_meters if re.search(rf"\b{re.escape(m)}\b", html)]
        assert not leaked, (path, leaked)
    flows = _page(a, "/web/me")
    assert "det-water" in flows and "<polyline" in flows
    alerts = _page(a, "/web/alerts?lang=vi")
    assert "Có một cơ hội trao đổi cho bạn, mã tham chiếu ref-" in alerts
    savings = _page(a, "/web/me/savings")
    assert "x-ab" in savings and "x-bc" not in savings
    # the operator's pages are not a tenant's
    for path in ("/web/park", "/web/opportunities", "/web/exchanges", "/web/savings"):
        assert a.get(path).status_code == 403


def test_signing_in_needs_a_live_key_and_revoking_it_ends_the_session(web: Web) -> None:
    client = TestClient(web.api.client.app, follow_redirects=False)
    r = client.get("/web/park")
    assert r.status_code == 303 and r.headers["location"].startswith("/web/login")
    r = client.post("/web/login", data={"key": "pfk_wrong", "csrf": csrf_of(client)})
    assert r.status_code == 401 and SESSION_COOKIE not in client.cookies
    before = csrf_of(client)
    login(client, web.api.b["Authorization"].removeprefix("Bearer "))
    assert client.cookies[CSRF_COOKIE] != before  # a new token with the new session
    b = web.login(web.api.b)
    assert b.get("/web/me").status_code == 200
    cookie = b.cookies[SESSION_COOKIE]
    assert web.api.b["Authorization"].removeprefix("Bearer ") not in cookie  # the id only
    web.ctx.keys.revoke(web.api.b_key_id)
    r = b.get("/web/me")
    assert r.status_code == 303 and r.headers["location"].startswith("/web/login")
    # the same cookie, replayed, is refused too
    replay = TestClient(web.api.client.app, follow_redirects=False)
    replay.cookies.set(SESSION_COOKIE, cookie, path="/web")
    assert replay.get("/web/me").status_code == 303


def test_the_cookies_are_httponly_strict_and_secure_when_set(web: Web) -> None:
    web.ctx.settings = web.ctx.settings.model_copy(update={"web_secure_cookie": True})
    client = TestClient(web.api.client.app, follow_redirects=False, base_url="https://testserver")
    csrf = client.get("/web/login")
    header = csrf.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=strict" in header and "Secure" in header
    token = client.cookies[CSRF_COOKIE]
    key = web.api.operator["Authorization"].removeprefix("Bearer ")
    r = client.post("/web/login", data={"key": key, "csrf": token})
    assert r.status_code == 303
    session = r.headers["set-cookie"]
    assert SESSION_COOKIE in session and "HttpOnly" in session and "Secure" in session
    assert "SameSite=strict" in session and "Max-Age=28800" in session


def test_forms_without_the_csrf_token_are_refused(web: Web) -> None:
    a = web.login(web.api.a)
    mine = [x for x in web.ctx.alerts.alerts() if x.tenant == A and x.status == Status.OPEN]
    assert mine
    target = f"/web/alerts/{mine[0].id}/acknowledge"
    for token in ("", "forged", csrf_of(TestClient(web.api.client.app))):  # another browser's
        r = a.post(target, data={"csrf": token})
        assert r.status_code == 403, token
    assert web.ctx.alerts.find(mine[0].id).status == Status.OPEN
    # and the login form too
    fresh = TestClient(web.api.client.app, follow_redirects=False)
    key = web.api.a["Authorization"].removeprefix("Bearer ")
    assert fresh.post("/web/login", data={"key": key, "csrf": "x"}).status_code == 403


def test_a_tenant_acknowledges_its_alert_and_not_another_tenants(web: Web) -> None:
    a = web.login(web.api.a)
    open_ = [x for x in web.ctx.alerts.alerts() if x.status == Status.OPEN]
    mine = next(x for x in open_ if x.tenant == A)
    theirs = next(x for x in open_ if x.tenant == B)
    r = a.post(f"/web/alerts/{theirs.id}/acknowledge", data={"csrf": csrf_of(a)})
    assert r.status_code == 404
    assert web.ctx.alerts.find(theirs.id).status == Status.OPEN
    r = a.post(f"/web/alerts/{mine.id}/acknowledge", data={"csrf": csrf_of(a), "reason": "on it"})
    assert r.status_code == 303
    after = web.ctx.alerts.find(mine.id)
    assert after.status == Status.ACKNOWLEDGED and after.acknowledged_by is not None
    assert after.acknowledged_by.startswith("a (key ")


def test_an_operator_moves_an_exchange_recorded_with_the_keys_name_and_id(web: Web) -> None:
    op = web.login(web.api.operator)
    r = op.post(f"/web/exchanges/{IDEA}/move", data={"csrf": csrf_of(op), "to": "screened"})
    assert r.status_code == 303
    repo = ExchangeRepository(web.ctx.db)
    assert repo.get(IDEA).pipeline.stage == "screened"
    assert repo.moves(IDEA)[-1].by.startswith("ops (key ")
    assert "moved to screened" in _page(op, r.headers["location"])
    # a move the pipeline refuses is said, and nothing changes
    r = op.post(f"/web/exchanges/{IDEA}/move", data={"csrf": csrf_of(op), "to": "operating"})
    assert r.status_code == 400 and "cannot move from screened" in r.text
    assert repo.get(IDEA).pipeline.stage == "screened"
    a = web.login(web.api.a)
    r = a.post(f"/web/exchanges/{IDEA}/move", data={"csrf": csrf_of(a), "to": "identified"})
    assert r.status_code == 403 and repo.get(IDEA).pipeline.stage == "screened"


def test_consent_of_both_parties_introduces_them(web: Web) -> None:
    a, b = web.login(web.api.a), web.login(web.api.b)
    b_name, a_name = web.ctx.names(PARK)[B], web.ctx.names(PARK)[A]
    run = web.ctx.results.latest_run()
    assert run is not None
    shared = next(
        o
        for o in web.ctx.results.opportunities(run.id, tenant=A)
        if {o["from_tenant"], o["to_tenant"]} == {A, B}
    )
    ref = web.ctx.pepper.reference(shared["id"])
    assert b_name not in _page(a, "/web/me/opportunities")
    r = a.post(f"/web/me/opportunities/{ref}/consent", data={"csrf": csrf_of(a)})
    assert r.status_code == 303
    html = _page(a, "/web/me/opportunities")
    assert b_name not in html and "You consented" in html
    b.post(f"/web/me/opportunities/{ref}/consent", data={"csrf": csrf_of(b)})
    assert b_name in _page(a, "/web/me/opportunities")
    assert a_name in _page(b, "/web/me/opportunities")
    given = {c.tenant for c in ConsentRepository(web.ctx.db).of(shared["id"])}
    assert given == {A, B}
    # another tenant's opportunity, by its reference: not found, nothing recorded
    other = next(
        o
        for o in web.ctx.results.opportunities(run.id)
        if A not in (o["from_tenant"], o["to_tenant"])
    )
    r = a.post(
        f"/web/me/opportunities/{web.ctx.pepper.reference(other['id'])}/consent",
        data={"csrf": csrf_of(a)},
    )
    assert r.status_code == 404 and ConsentRepository(web.ctx.db).of(other["id"]) == []


def test_vietnamese_pages_write_numbers_and_dates_the_vietnamese_way(web: Web) -> None:
    op = web.login(web.api.operator)
    html = _page(op, "/web/park?lang=vi")
    assert 'lang="vi"' in html and "Tổng quan khu công nghiệp" in html
    assert "20/11/2026" in html and "tỷ đồng" in html
    assert re.search(r"\d{1,3}\.\d{3},\d\b", html) or re.search(r"\d\.\d{3}\b", html)
    # remembered by the cookie
    assert "Tổng quan khu công nghiệp" in _page(op, "/web/park")
    assert "Park overview" in _page(op, "/web/park?lang=en")


def test_demo_mode_opens_the_overview_read_only_and_only_then(web: Web) -> None:
    anon = TestClient(web.api.client.app, follow_redirects=False)
    assert anon.get("/web/park").status_code == 303
    web.ctx.settings = web.ctx.settings.model_copy(update={"demo_mode": True})
    html = _page(anon, "/web/park")
    assert "Demo mode" in html and "<form" not in html.split("</header>", 1)[1]
    for path in ("/web/opportunities", "/web/exchanges", "/web/alerts", "/web/me"):
        assert anon.get(path).status_code == 303, path
    mine = next(x for x in web.ctx.alerts.alerts() if x.status == Status.OPEN)
    r = anon.post(f"/web/alerts/{mine.id}/acknowledge", data={"csrf": csrf_of(anon)})
    assert r.status_code == 303 and web.ctx.alerts.find(mine.id).status == Status.OPEN


def test_the_flows_are_the_stores_day_rollups_on_both_stores(web_stores: Web) -> None:
    web = web_stores
    end = int(NOW.value // 1_000_000)
    days = web.ctx.store.day_rollups(PARK, end - 28 * DAY_MS, end)
    water = days[(days["tenant"] == A) & (days["meter"] == "det-water")]["total"].sum()
    assert water > 0
    a = web.login(web.api.a)
    html = _page(a, "/web/me")
    assert f"Total: {formats.figure(float(water), 'en')} m3" in html
    op = web.login(web.api.operator)
    overview = _page(op, "/web/park")
    assert web.ctx.names(PARK)[B] in overview and "water.treated_effluent" in overview
