"""The API on each store (SQLite, a real InfluxDB): what operators and tenants get back, its
error body, pagination and times, and its auth."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from service.alerts.texts import round_sig
from service.exchanges.savings import DaySavings
from tests.service.api.conftest import NOW_MS, PARK, A, Api, B

BAD = {"Authorization": "Bearer pfk_not-a-key"}


def _ok(api: Api, path: str, headers: dict[str, str], **params: Any) -> Any:
    r = api.client.get(path, headers=headers, params=params)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def test_every_route_but_status_needs_a_valid_key(api: Api) -> None:
    for headers in ({}, BAD, {"Authorization": "Basic b3A6b3A="}):
        r = api.client.get("/v1/meters", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == 401 and body["title"] == "Not authenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert api.client.get("/healthz").json() == {"alive": True}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_an_operator_sees_the_park_and_a_tenant_itself(api: Api) -> None:
    parks = _ok(api, "/v1/parks", api.operator)
    assert [p["id"] for p in parks["items"]] == [PARK]
    everyone = _ok(api, "/v1/tenants", api.operator, limit=100)
    assert len(everyone["items"]) == len(api.ctx.registry.tenant_ids(PARK)) > 2
    mine = _ok(api, "/v1/tenants", api.a)
    assert [t["id"] for t in mine["items"]] == [A]
    me = _ok(api, "/v1/me", api.a)
    assert (me["role"], me["park"], me["tenant"]) == ("tenant", PARK, A)


def test_meters_page_through_and_filter(api: Api) -> None:
    total = len(api.ctx.registry.meters())
    first = _ok(api, "/v1/meters", api.operator, limit=10)
    assert first["total"] == total and len(first["items"]) == 10 and first["next_offset"] == 10
    seen = [m["id"] for m in first["items"]]
    offset = first["next_offset"]
    while offset is not None:
        page = _ok(api, "/v1/meters", api.operator, limit=10, offset=offset)
        seen += [m["id"] for m in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == total
    water = _ok(api, "/v1/meters", api.operator, resource="water.treated_effluent")
    assert {m["id"] for m in water["items"]} == {"wwtp-effluent"}
    assert {m["tenant"] for m in _ok(api, "/v1/meters", api.a)["items"]} == {A}


def test_readings_by_bucket_add_up_to_the_period_total(api: Api) -> None:
    path = f"/v1/meters/{PARK}/{A}/det-water"
    window = {"since": "2026-11-18T00:00:00Z", "until": "2026-11-19T00:00:00+00:00"}
    summary = _ok(api, path, api.a, **window)
    assert summary["readings"] > 0 and summary["total"] > 0
    assert summary["since"] == "2026-11-18T00:00:00Z"  # RFC 3339, UTC
    hourly = _ok(api, f"{path}/readings", api.a, bucket="1h", **window)
    assert len(hourly["buckets"]) == 24
    assert hourly["buckets"][1]["start"] == "2026-11-18T01:00:00Z"
    assert sum(b["readings"] for b in hourly["buckets"]) == summary["readings"]
    assert (
        abs(sum(b["total"] or 0 for b in hourly["buckets"]) - summary["total"])
        < 1e-6 * (summary["total"])
    )
    daily = _ok(api, f"{path}/readings", api.a, bucket="1d", **window)
    assert len(daily["buckets"]) == 1
    assert abs(daily["buckets"][0]["total"] - summary["total"]) < 1e-6 * summary["total"]


def test_days_are_the_rollups_of_the_parks_local_days(api: Api) -> None:
    path = f"/v1/meters/{PARK}/{A}/det-water/days"
    got = _ok(api, path, api.a, since="2026-11-01", until="2026-11-20")
    assert [d["day"] for d in got["days"]][:2] == ["2026-11-01", "2026-11-02"]
    assert len(got["days"]) == 19 and got["unit"] == "m3"
    # local midnight in Ho Chi Minh City (UTC+7) is 17:00 UTC the day before
    start = int(datetime(2026, 10, 31, 17, tzinfo=UTC).timestamp() * 1000)
    frame = api.ctx.store.day_rollups(PARK, start, start + 19 * 86_400_000)
    mine = frame[frame["meter"] == "det-water"].sort_values("day")
    assert len(mine) == 19
    for day, (_, row) in zip(got["days"], mine.iterrows(), strict=True):
        assert day["total"] == row["total"] and day["coverage"] == row["coverage"]
    before = _ok(api, path, api.a, since="2020-01-01", until="2020-01-03")["days"]
    assert before == [{"day": "2020-01-01", "total": None, "coverage": 0.0},
                      {"day": "2020-01-02", "total": None, "coverage": 0.0}]  # fmt: skip
    assert (
        api.client.get(f"/v1/meters/{PARK}/{B}/wwtp-effluent/days", headers=api.a).status_code
        == 404
    )
    assert api.client.get(path, headers=api.a, params={"since": "2024-01-01"}).status_code == 400


def test_sizes_are_bounded_and_errors_are_problems(api: Api) -> None:
    path = f"/v1/meters/{PARK}/{A}/det-water/readings"
    too_many = api.client.get(
        path,
        headers=api.a,
        params={"since": "2026-01-01T00:00:00Z", "until": "2026-11-01T00:00:00Z", "bucket": "15m"},
    )
    assert too_many.status_code == 400 and "at most 3000 buckets" in too_many.json()["detail"]
    backwards = api.client.get(
        path,
        headers=api.a,
        params={"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
    )
    assert backwards.status_code == 400
    invalid = api.client.get(path, headers=api.a, params={"bucket": "7m"})
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["status"] == 422 and body["errors"][0]["loc"][-1] == "bucket"
    assert invalid.headers["content-type"] == "application/problem+json"
    assert api.client.get("/v1/meters", headers=api.a, params={"limit": 0}).status_code == 422
    big = _ok(api, "/v1/meters", api.operator, limit=5000)
    assert big["limit"] == api.ctx.settings.api_max_page


def test_results_whole_for_operators_anonymised_for_tenants(api: Api) -> None:
    ops = _ok(api, "/v1/opportunities", api.operator, limit=1000)
    assert ops["page"]["total"] > 0
    between = [o for o in ops["page"]["items"] if {o["from_tenant"], o["to_tenant"]} == {A, B}]
    assert between, "the sample park has an exchange between A and B"
    assert all("explanation" in o and "legal_status" in o for o in between)
    mine = _ok(api, "/v1/opportunities", api.a, limit=1000)["page"]["items"]
    assert mine and len(mine) == sum(
        A in (o["from_tenant"], o["to_tenant"]) for o in ops["page"]["items"]
    )
    for o in mine:
        text = str(o)
        assert B not in (o.get("counterpart"), o.get("from_tenant"), o.get("to_tenant"))
        assert "wwtp-effluent" not in text and "Central Wastewater Treatment Plant" not in text
        assert o["ref"].startswith("ref-") and o["introduced"] is False
        assert "legal_status" in o and o["explanation"]
    one = mine[0]
    again = _ok(api, f"/v1/opportunities/{one['ref']}", api.a)
    assert again == one
    surpluses = _ok(api, "/v1/surpluses", api.a)["page"]["items"]
    assert all(s["tenant"] == A for s in surpluses)
    plan = _ok(api, "/v1/plan", api.operator)
    assert plan["totals"]["n_links"] == len(plan["links"]) > 0
    tenant_plan = _ok(api, "/v1/plan", api.a)
    assert tenant_plan["totals"] is None
    assert all(link["role"] in ("supplier", "receiver") for link in tenant_plan["links"])
    # its own planned quantity to two significant figures: the exact one could be the other's
    exact = {pl["opportunity_id"]: pl for pl in plan["links"]}
    for link in tenant_plan["links"]:
        whole = next(v for k, v in exact.items() if api.ctx.pepper.reference(k) == link["ref"])
        mine = (
            whole["supply_used_per_day"] if link["role"] == "supplier" else whole["matched_per_day"]
        )
        assert link["planned_per_day"] == round_sig(mine)


def test_alerts_list_acknowledge_and_silence(api: Api) -> None:
    mine = _ok(api, "/v1/alerts", api.a, limit=1000)["items"]
    assert mine and all(a["tenant"] == A for a in mine)
    stale = next(a for a in mine if a["kind"] == "meter_stale")
    r = api.client.post(
        f"/v1/alerts/{stale['id']}/acknowledge", headers=api.a, json={"reason": "on it"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_at"]
    history = api.ctx.alerts.history(stale["id"])
    assert history[-1]["actor"].startswith("a (key ") and history[-1]["reason"] == "on it"
    for a in mine:
        if a["kind"] == "opportunity":
            assert a["subject"].startswith("ref-") and B not in a["summary"]
    # silences are the operators'
    body = {"subject": stale["subject"], "until": "2099-01-01T00:00:00Z", "reason": "replaced"}
    assert api.client.post("/v1/silences", headers=api.a, json=body).status_code == 403
    made = api.client.post("/v1/silences", headers=api.operator, json=body)
    assert made.status_code == 201 and made.json()["id"]
    # resolving by hand is the operators', with the reason in its history
    why = {"reason": "meter replaced, readings back"}
    refused = api.client.post(f"/v1/alerts/{stale['id']}/resolve", headers=api.a, json=why)
    assert refused.status_code == 403
    done = api.client.post(f"/v1/alerts/{stale['id']}/resolve", headers=api.operator, json=why)
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert api.ctx.alerts.history(stale["id"])[-1]["reason"] == why["reason"]
    assert stale["id"] not in {a["id"] for a in _ok(api, "/v1/alerts", api.a)["items"]}


def test_quarantine_for_operators_and_own_records_for_tenants(api: Api) -> None:
    everything = _ok(api, "/v1/quarantine", api.operator, limit=1000)["items"]
    assert everything, "the simulated park sends faulty readings"
    assert everything[0]["received_at"].endswith("Z")
    mine = _ok(api, "/v1/quarantine", api.a, limit=1000)["items"]
    assert mine and all(r["tenant"] == A for r in mine)
    assert len(mine) == sum(r["tenant"] == A for r in everything)
    assert _ok(api, "/v1/quarantine", api.a, limit=1000, tenant=A)["items"] == mine
    # another tenant's name asks for nothing: neither its rows nor, silently, one's own
    assert _ok(api, "/v1/quarantine", api.a, limit=1000, tenant=B)["items"] == []
    assert _ok(api, "/v1/quarantine", api.a, limit=1000, park="elsewhere")["items"] == []
    theirs = _ok(api, "/v1/quarantine", api.operator, limit=1000, tenant=B)["items"]
    assert theirs and all(r["tenant"] == B for r in theirs)


def test_keys_made_listed_and_revoked_by_operators(api: Api) -> None:
    body = {"name": "new tenant key", "role": "tenant", "park": PARK, "tenant": A}
    assert api.client.post("/v1/keys", headers=api.a, json=body).status_code == 403
    made = api.client.post("/v1/keys", headers=api.operator, json=body)
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["id"]
    fresh = {"Authorization": f"Bearer {key}"}
    assert _ok(api, "/v1/me", fresh)["tenant"] == A
    listed = _ok(api, "/v1/keys", api.operator)["items"]
    assert key_id in {k["id"] for k in listed} and all("key" not in k for k in listed)
    assert key not in str(listed)
    assert api.client.delete(f"/v1/keys/{key_id}", headers=api.operator).status_code == 200
    assert api.client.get("/v1/me", headers=fresh).status_code == 401
    assert NOW_MS > 0


def test_consents_introduce_the_parties_and_a_withdrawal_hides_them_again(api: Api) -> None:
    """A tenant gives its own consent by the reference it was shown; the operator records the
    other party's; both see each other only while both stand."""
    ops = _ok(api, "/v1/opportunities", api.operator, limit=1000)["page"]["items"]
    o = next(o for o in ops if {o["from_tenant"], o["to_tenant"]} == {A, B})

    def seen_by_a() -> dict[str, Any]:
        mine = _ok(api, "/v1/opportunities", api.a, limit=1000)["page"]["items"]
        return next(m for m in mine if m["ref"] == o["ref"])

    assert seen_by_a()["introduced"] is False
    given = api.client.post(
        "/v1/consents", headers=api.a, json={"opportunity": o["ref"], "note": "by phone"}
    )
    assert given.status_code == 201, given.text
    assert given.json()["tenant"] == A and given.json()["opportunity"] == o["ref"]
    assert given.json()["introduced"] is False  # one party only
    assert seen_by_a()["introduced"] is False and B not in str(seen_by_a())

    # a tenant cannot consent for the other party, nor by the operator's id of the row
    other = api.client.post(
        "/v1/consents", headers=api.a, json={"opportunity": o["ref"], "tenant": B}
    )
    assert other.status_code == 403
    by_id = api.client.post("/v1/consents", headers=api.a, json={"opportunity": o["id"]})
    assert by_id.status_code == 404
    # nor can a third tenant see or consent to it
    third = api.ctx.keys.create(name="c", role="tenant", park=PARK, tenant="hoa-chat", by="test")
    c = {"Authorization": f"Bearer {third.secret}"}
    assert (
        api.client.post("/v1/consents", headers=c, json={"opportunity": o["ref"]}).status_code
        == 404
    )

    # the operator records B's: both are introduced, in the API and in the alerts' texts
    r = api.client.post(
        "/v1/consents", headers=api.operator, json={"opportunity": o["id"], "tenant": B}
    )
    assert r.status_code == 201 and r.json()["introduced"] is True
    seen = seen_by_a()
    assert seen["introduced"] is True and seen["id"] == o["id"] and B in str(seen)
    assert {c["tenant"] for c in _ok(api, "/v1/consents", api.operator)["items"]} >= {A, B}
    assert {c["tenant"] for c in _ok(api, "/v1/consents", api.a)["items"]} == {A}

    w = api.client.post("/v1/consents/withdraw", headers=api.b, json={"opportunity": o["ref"]})
    assert w.status_code == 200 and w.json()["withdrawn_at"] is not None
    assert seen_by_a()["introduced"] is False and B not in str(seen_by_a())
    again = api.client.post("/v1/consents/withdraw", headers=api.b, json={"opportunity": o["ref"]})
    assert again.status_code == 400 and again.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert o["id"] not in again.text and o["ref"] in again.text  # the id names A's meter


def _day(xid: str, day: date, quantity: float, supplier: int, receiver: int) -> DaySavings:
    return DaySavings(
        exchange=xid,
        park=PARK,
        day=day,
        hours_measured=24,
        coverage=1.0,
        quantity=quantity,
        supplier_vnd=supplier,
        receiver_vnd=receiver,
        park_vnd=supplier + receiver,
        water_m3=quantity,
        co2e_t=0.0,
        landfill_t=0.0,
        factor_year=None,
        check_quantity=None,
        loss=None,
        disagrees=False,
        unpriced_hours=0,
    )


def test_exchanges_entered_and_moved_by_operators_and_seen_by_their_parties(api: Api) -> None:
    ops = _ok(api, "/v1/opportunities", api.operator, limit=1000)["page"]["items"]
    o = next(o for o in ops if o["from_tenant"] == B and o["to_tenant"] == A)
    body = {
        "id": "x-1",
        "park": PARK,
        "owner": "env office",
        "opportunity": o["id"],
        "notes": f"call the {B} manager",  # an operator's words may name the other party
    }
    assert api.client.post("/v1/exchanges", headers=api.a, json=body).status_code == 403
    made = api.client.post("/v1/exchanges", headers=api.operator, json=body)
    assert made.status_code == 201, made.text
    x = made.json()
    assert x["stage"] == "identified" and x["legal_status"] == o["legal_status"]
    assert x["projection"]["park_vnd_per_year"] == o["value"]["park_vnd_per_year"]
    assert x["moves"][0]["by"].startswith("ops (key ")
    dup = api.client.post("/v1/exchanges", headers=api.operator, json=body)
    assert dup.status_code == 400

    # the receiver sees its own side, the counterpart not yet named; a third tenant nothing
    mine = _ok(api, "/v1/exchanges", api.a)["items"]
    assert len(mine) == 1 and mine[0]["id"].startswith("ref-")  # its name could name B
    seen = mine[0]
    assert seen["role"] == "receiver" and seen["receiver"] == A and seen["supplier"] is None
    assert seen["opportunity"] == o["ref"] and B not in str(seen) and seen["notes"] == ""
    assert seen["projection"]["park_vnd_per_year"] is None
    assert seen["projection"]["supplier_vnd_per_year"] is None
    own = seen["projection"]["receiver_vnd_per_year"]
    exact = x["projection"]["receiver_vnd_per_year"]
    assert own != exact and abs(own - exact) <= 0.05 * exact  # two significant figures
    ref = seen["id"]
    assert api.client.get("/v1/exchanges/x-1", headers=api.a).status_code == 404
    third = api.ctx.keys.create(name="c", role="tenant", park=PARK, tenant="hoa-chat", by="t")
    c = {"Authorization": f"Bearer {third.secret}"}
    assert _ok(api, "/v1/exchanges", c)["items"] == []
    assert api.client.get("/v1/exchanges/x-1", headers=c).status_code == 404

    # moves: operators only, impossible ones refused with the reason
    move = {"to": "screened", "note": "permit route known"}
    assert api.client.post("/v1/exchanges/x-1/move", headers=api.a, json=move).status_code == 403
    bad = api.client.post("/v1/exchanges/x-1/move", headers=api.operator, json={"to": "operating"})
    assert bad.status_code == 400 and "cannot move from identified" in bad.json()["detail"]
    moved = api.client.post("/v1/exchanges/x-1/move", headers=api.operator, json=move)
    assert moved.status_code == 200 and moved.json()["stage"] == "screened"
    history = _ok(api, f"/v1/exchanges/{ref}", api.a)["moves"]
    assert [m["to_stage"] for m in history] == ["identified", "screened"]
    assert all(m["note"] == "" for m in history)  # notes are the operators' until introduced
    for stage in ("under_study",):
        api.client.post("/v1/exchanges/x-1/move", headers=api.operator, json={"to": stage})
    reg = {"benefit": "water", "method": "transfer_meter", "start": "2026-10-01"}
    assert api.client.post("/v1/exchanges/x-1/register", headers=api.a, json=reg).status_code == 403
    done = api.client.post("/v1/exchanges/x-1/register", headers=api.operator, json=reg)
    assert done.status_code == 200, done.text  # parties and meters from the opportunity
    assert (done.json()["supplier"], done.json()["receiver"]) == (B, A)
    price = {"item": "displaced", "effective": "2026-10-01", "vnd_per_unit": "11500"}
    made_price = api.client.post("/v1/exchanges/x-1/prices", headers=api.operator, json=price)
    assert made_price.status_code == 201, made_price.text
    assert api.ctx.exchanges.exchange("x-1").prices[0].vnd_per_unit == Decimal("11500")
    bad = {**price, "effective": "2026-09-01"}  # never backwards
    assert (
        api.client.post("/v1/exchanges/x-1/prices", headers=api.operator, json=bad).status_code
        == 400
    )
    agreed = api.client.post("/v1/exchanges/x-1/move", headers=api.operator, json={"to": "agreed"})
    assert agreed.status_code == 200 and agreed.json()["projection"]["frozen"] is True
    # once agreed, the parties know each other, and the exchange by its name
    known = _ok(api, "/v1/exchanges/x-1", api.a)
    assert known["supplier"] == B and known["notes"] == body["notes"]

    # savings: the park once for operators, a party's own side only
    days = [_day("x-1", date(2026, 10, d), 100.0, 1_000_000, 3_000_000) for d in (1, 2)]
    days.append(_day("x-1", date(2026, 11, 1), 50.0, 500_000, 1_500_000))
    api.ctx.exchanges.write_savings(days)
    rows = _ok(api, "/v1/savings", api.operator)["items"]
    park_total = next(r for r in rows if r["exchange"] == "park" and r["period"] == "total")
    assert park_total["park_vnd"] == 2 * 4_000_000 + 2_000_000 and park_total["days"] == 3
    october = next(r for r in rows if r["exchange"] == "x-1" and r["period"] == "2026-10")
    assert october["quantity"] == 200.0 and october["receiver_vnd"] == 6_000_000
    as_a = _ok(api, "/v1/savings", api.a)["items"]
    assert {r["exchange"] for r in as_a} == {"x-1"}
    assert all(r["supplier_vnd"] is None and r["park_vnd"] is None for r in as_a)
    assert next(r for r in as_a if r["period"] == "total")["receiver_vnd"] == 7_500_000
    assert _ok(api, "/v1/savings", c)["items"] == []
    only_nov = _ok(api, "/v1/savings", api.operator, since="2026-11-01", until="2026-12-01")
    assert {r["period"] for r in only_nov["items"]} == {"2026-11", "total"}


def test_the_parks_report_for_operators_as_csv_and_html(api: Api) -> None:
    path = f"/v1/reports/{PARK}"
    csv = api.client.get(path, headers=api.operator, params={"period": "2026-11"})
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("section,item") and any(
        x.startswith(f"meta,park,,,{PARK},") for x in lines
    )
    html = api.client.get(
        path, headers=api.operator, params={"period": "2026", "format": "html", "lang": "vi"}
    )
    assert html.status_code == 200 and "<html" in html.text and 'lang="vi"' in html.text
    assert api.client.get(path, headers=api.a, params={"period": "2026-11"}).status_code == 403
    assert (
        api.client.get(path, headers=api.operator, params={"period": "11/2026"}).status_code == 400
    )
    nowhere = api.client.get("/v1/reports/nowhere", headers=api.operator, params={"period": "2026"})
    assert nowhere.status_code == 404


def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    meter = f"/v1/meters/{PARK}/{A}/det-water/days"
    for _ in range(2):
        _ok(api, meter, api.a)
    assert api.client.get("/v1/alerts", headers=BAD).status_code == 401
    text = api.client.get("/metrics").text
    template = "/v1/meters/{park}/{tenant}/{meter}/days"
    assert (
        f'parkflow_api_requests_total{{method="GET",route="{template}",status="200"}} 2.0' in text
    )
    assert 'parkflow_api_requests_total{method="GET",route="/v1/alerts",status="401"} 1.0' in text
    assert f'parkflow_api_request_seconds_count{{route="{template}"}} 2.0' in text
    assert meter not in text  # no ids in label values
