"""Each page over real parts through the app (TestClient): what an operator and a tenant see,
sign-in, the session's end, CSRF refusals, and the forms' effects in the database."""

from __future__ import annotations

import html
import re

import pandas as pd
from fastapi.testclient import TestClient

from parkflow.timeunits import DAY_MS
from service.alerts.consents import ConsentRepository
from service.alerts.lifecycle import Status
from service.exchanges.repository import ExchangeRepository
from service.web import formats
from service.web.pages import complete_days
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
    assert "Competes with" in opps and "not in the plan" in opps
    assert "Excludes" not in opps
    pipeline = _page(op, "/web/exchanges")
    assert "x-ab" in pipeline and "x-bc" in pipeline and IDEA in pipeline
    savings = _page(op, "/web/savings")
    assert "x-ab" in savings and "<svg" in savings and "the park" in savings
    assert 'href="/web/report"' in savings
    report = op.get("/web/report", params={"period": "2026-11"})
    assert report.status_code == 200 and "<html" in report.text and PARK in report.text
    assert "script-src" not in report.headers["content-security-policy"]  # none runs
    year = op.get("/web/report", params={"period": "2026", "lang": "vi"})
    assert year.status_code == 200 and 'lang="vi"' in year.text


def test_a_tenant_sees_its_own_and_never_another_tenants(web: Web) -> None:
    a = web.login(web.api.a)
    assert a.get("/web/report", params={"period": "2026-11"}).status_code == 403  # operators
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
    assert "19/11/2026" in html and "tỷ đồng" in html  # the last complete day
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
    # the 28 complete local days before NOW (12:00 at the park): to 2026-11-20 00:00 ICT
    start, end = complete_days(int(NOW.value // 1_000_000), 28, 7 * 3_600_000)
    assert end == int(pd.Timestamp("2026-11-19T17:00:00Z").value // 1_000_000)
    assert end - start == 28 * DAY_MS
    days = web.ctx.store.day_rollups(PARK, start, end)
    water = days[(days["tenant"] == A) & (days["meter"] == "det-water")]["total"].sum()
    assert water > 0
    a = web.login(web.api.a)
    html = _page(a, "/web/me")
    assert f"Total: {formats.figure(float(water), 'en')} m3" in html
    op = web.login(web.api.operator)
    overview = _page(op, "/web/park")
    assert web.ctx.names(PARK)[B] in overview and "water.treated_effluent" in overview


def _section(html: str, section_id: str) -> str:
    return html.split(f'<section id="{section_id}">', 1)[1].split("</section>", 1)[0]


def test_demo_mode_counts_the_alerts_and_names_no_party(web: Web) -> None:
    """An opportunity's summary names both parties: the pairing consent protects. Without a
    key the overview counts alerts by kind and shows none of their texts or tenants."""
    web.ctx.settings = web.ctx.settings.model_copy(update={"demo_mode": True})
    anon = TestClient(web.api.client.app, follow_redirects=False)
    section = _section(_page(anon, "/web/park"), "alerts")
    shown = web.ctx.alerts.alerts((Status.OPEN, Status.ACKNOWLEDGED))
    opportunities = [a for a in shown if a.kind == "opportunity"]
    assert opportunities and "could supply" in opportunities[0].summary
    assert "could supply" not in section
    assert not [a.summary for a in shown if html.escape(a.summary) in section]
    assert not [n for n in web.ctx.names(PARK).values() if n in section]
    assert f'<td>opportunity</td><td class="num">{len(opportunities)}</td>' in section
    assert 'href="/web/login?next=/web/alerts">Sign in to see all' in section
    assert "more on the alerts page" not in section
    # with a key the operator reads them
    op = web.login(web.api.operator)
    assert "could supply" in _section(_page(op, "/web/park"), "alerts")


def test_the_overview_counts_open_and_acknowledged_alerts_apart(web: Web) -> None:
    first = next(a for a in web.ctx.alerts.alerts() if a.status == Status.OPEN)
    web.ctx.alerts.acknowledge(first.id, "test", "looking into it")
    alerts = web.ctx.alerts.alerts((Status.OPEN, Status.ACKNOWLEDGED))
    n_open = sum(a.status == Status.OPEN for a in alerts)
    n_ack = sum(a.status == Status.ACKNOWLEDGED for a in alerts)
    assert n_ack == 1 and n_open > 10
    op = web.login(web.api.operator)
    section = _section(_page(op, "/web/park"), "alerts")
    assert f"Alerts: {n_open} open, 1 acknowledged" in section
    assert f"{len(alerts) - 10} more on the alerts page" in section
    vi = _section(_page(op, "/web/park?lang=vi"), "alerts")
    assert f"Cảnh báo: {n_open} đang mở, 1 đã xác nhận" in vi


def test_acknowledging_needs_a_reason_as_the_api_does(web: Web) -> None:
    a = web.login(web.api.a)
    mine = next(x for x in web.ctx.alerts.alerts() if x.tenant == A and x.status == Status.OPEN)
    page = _page(a, "/web/alerts")
    assert "Why (required)" in page and 'name="reason" maxlength="500" required' in page
    assert "Lý do (bắt buộc)" in _page(a, "/web/alerts?lang=vi")
    for reason in ("", "   "):
        r = a.post(
            f"/web/alerts/{mine.id}/acknowledge?lang=en",
            data={"csrf": csrf_of(a), "reason": reason},
        )
        assert r.status_code == 400 and "a reason is required" in r.text
        assert "<h1>Alerts</h1>" in r.text and "Not allowed" not in r.text  # the form again
    assert web.ctx.alerts.find(mine.id).status == Status.OPEN


def test_ranked_rows_compete_they_do_not_exclude(web: Web) -> None:
    op = web.login(web.api.operator)
    en = _page(op, "/web/opportunities")
    assert "Excludes" not in en
    m = re.search(r'<p class="competes">Competes with (<a href="#alt-\d+">#\d+</a>(, )?)+ ', en)
    assert m is not None
    assert "for the same surplus or demand; the plan says which run and how much." in en
    vi = _page(op, "/web/opportunities?lang=vi")
    assert "Cạnh tranh với" in vi and "kế hoạch cho biết phương án nào được thực hiện" in vi
    assert "Loại trừ" not in vi


def test_the_period_is_complete_days_and_a_tenants_chart_ends_on_the_last_one(web: Web) -> None:
    # NOW is 12:00 on 2026-11-20 at the park: that day is not over, the 19th is the last
    op = web.login(web.api.operator)
    assert "The 28 complete days to 2026-11-19" in _page(op, "/web/park")
    a = web.login(web.api.a)
    flows = _page(a, "/web/me?days=7")
    meter = flows.split('id="meter-det-water"', 1)[1]
    chart = meter[meter.index("<svg") :].split("</svg>", 1)[0]
    assert ">2026-11-19</text>" in chart and "2026-11-20" not in chart
    assert ">2026-11-13</text>" in chart  # seven days: the 13th to the 19th


def test_per_day_is_over_the_days_with_data_in_the_90_day_view(web: Web) -> None:
    start, end = complete_days(int(NOW.value // 1_000_000), 90, 7 * 3_600_000)
    days = web.ctx.store.day_rollups(PARK, start, end)
    water = days[(days["tenant"] == A) & (days["resource"] == "water.potable")]
    with_data = water[water["coverage"] > 0]["day"].nunique()
    assert 0 < with_data < 90
    per_day = water["total"].sum() / with_data
    op = web.login(web.api.operator)
    page = _page(op, "/web/park?days=90")
    name = web.ctx.names(PARK)[A]
    potable = page.split("<code>water.potable</code>", 1)[1].split("</details>", 1)[0]
    row = re.search(rf"<tr><td>{re.escape(name)}</td><td>uses</td>.*?</tr>", potable)
    assert row is not None and f'<td class="num">{formats.figure(per_day, "en")}</td>' in row[0]
    assert "Per day with data" in page


def test_an_operator_of_one_park_sees_its_share_of_the_plan(web: Web) -> None:
    key = web.ctx.keys.create(name="ops-sl", role="operator", park=PARK, tenant=None, by="test")
    op = web.login({"Authorization": f"Bearer {key.secret}"})
    run = web.ctx.results.latest_run()
    assert run is not None
    links = [x for x in web.ctx.results.plan_links(run.id) if x["park"] == PARK]
    assert links
    vnd = formats.money(sum(x["park_vnd_per_year"] for x in links), "en")
    for path in ("/web/park", "/web/opportunities"):
        plan = _section(_page(op, path), "plan")
        assert "No plan saved" not in plan, path
        assert (
            "This park&#39;s share of the plan" in plan
            and f"{len(links)} exchanges, {vnd}/yr" in plan
        )


def test_an_unknown_page_is_a_404_in_the_sites_layout(web: Web) -> None:
    anon = TestClient(web.api.client.app, follow_redirects=False)
    r = anon.get("/web/no/such/page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in r.text and 'class="brand"' in r.text
    assert "<h1>Không tìm thấy</h1>" in anon.get("/web/nope?lang=vi").text
    op = web.login(web.api.operator)
    r = op.post("/web/exchanges/x-nope/move", data={"csrf": csrf_of(op), "to": "screened"})
    assert r.status_code == 404 and "<h1>Not found</h1>" in r.text and "Not allowed" not in r.text


def test_the_move_form_defaults_to_the_next_forward_stage(web: Web) -> None:
    op = web.login(web.api.operator)
    html = _page(op, "/web/exchanges")

    def form(xid: str) -> str:
        return html.split(f'id="x-{xid}"', 1)[1].split("</form>", 1)[0]

    assert '<option value="screened" selected>' in form(IDEA)
    operating = form("x-ab")
    assert '<option value="verified" selected>' in operating
    assert '<option value="ended">' in operating  # offered, never the default


def test_vietnamese_pages_say_parkflows_own_words_in_vietnamese(web: Web) -> None:
    op = web.login(web.api.operator)
    park = _page(op, "/web/park?lang=vi")
    assert "(bộ giải: tối ưu)" in park
    assert "nước thải đã xử lý <code>water.treated_effluent</code>" in park
    assert "đồng hồ mất tín hiệu" in park  # the meter_stale kind
    assert "ngoài phạm vi <code>out_of_range</code>" in park  # a quarantine reason
    assert re.search(r"\d\d/\d\d/\d{4} \d\d:\d\d giờ Việt Nam", park)
    assert '<td lang="en">' in park  # detection's own English summaries say so
    opps = _page(op, "/web/opportunities?lang=vi")
    legal = re.findall(r"Pháp lý: ([^<]+)</p>", opps)
    assert legal and not {"allowed", "conditional", "permit", "not_allowed"} & set(legal)
    assert '<p class="explanation" lang="en">' in opps
    assert "Đang đăng nhập: ops" in opps
    en = _page(op, "/web/park?lang=en")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d ICT", en)
