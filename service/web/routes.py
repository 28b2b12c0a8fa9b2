"""The pages' routes under ``/web``: who is asking (the session cookie, or nobody in demo
mode), then one call into ``service.web.pages`` and a template. Forms post back here with a
CSRF token; every change goes through the same repository the CLI and the API use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from parkflow.errors import InputError
from service.api.context import ApiContext
from service.api.deps import get_context
from service.auth import Principal
from service.auth.access import OPERATOR, can_see_park
from service.exchanges.pipeline import Stage
from service.knowledge import Knowledge, load_knowledge
from service.web import charts, formats, pages
from service.web.i18n import (
    LANGUAGES,
    Language,
    choose,
    resource_name,
    solver_status,
    stage_name,
    t,
    term,
)
from service.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    LANG_COOKIE,
    SESSION_COOKIE,
    Signer,
    web_secret,
)

HERE = Path(__file__).parent
STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}
_ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# what a flash after a redirect may say: a key of the catalogue, never text from the query
FLASHES = {"acked": "alerts.acked", "consented": "my_opps.given"}
# demo mode's reader of the overview: an operator of every park who can do nothing
DEMO = Principal("demo", "demo", OPERATOR, None, None)

router = APIRouter(prefix="/web", include_in_schema=False)


@lru_cache(maxsize=4)
def _knowledge(override: str | None) -> Knowledge:
    """The knowledge the service runs with, read once: the pages want its labels only."""
    return load_knowledge(override=override)


def knowledge_of(ctx: ApiContext) -> Knowledge:
    path = ctx.settings.knowledge
    return _knowledge(str(path) if path else None)


class Fmt:
    """The formats of one language, for templates (``f.number(x, 1)``, ``f.money(x)``), and
    parkflow's own words in it (``f.legal(s)``, ``f.kind(k)``, ``f.resource(name)``)."""

    def __init__(
        self,
        lang: Language,
        offset_ms: int = 0,
        zone: str = "",
        knowledge: Knowledge | None = None,
    ) -> None:
        self.lang = lang
        self.offset_ms = offset_ms
        self.zone = zone
        self.knowledge = knowledge

    def number(self, v: float | None, digits: int = 0) -> str:
        return formats.number(v, self.lang, digits)

    def figure(self, v: float | None) -> str:
        return formats.figure(v, self.lang)

    def money(self, v: float | None) -> str:
        return formats.money(v, self.lang)

    def percent(self, v: float | None) -> str:
        return formats.percent(v, self.lang)

    def day(self, d: Any) -> str:
        return formats.day(d, self.lang)

    def month(self, period: str) -> str:
        return formats.month(period, self.lang)

    def moment(self, ms: int | None) -> str:
        return formats.moment(ms, self.lang, self.offset_ms, self.zone)

    def stage(self, s: str) -> str:
        return stage_name(self.lang, s)

    def legal(self, status: str | None) -> str:
        return term(self.lang, "legal", status or "unknown")

    def kind(self, kind: str) -> str:
        return term(self.lang, "kind", kind)

    def barrier(self, barrier: str) -> str:
        return term(self.lang, "barrier", barrier)

    def quarantine(self, reason: str) -> str:
        return term(self.lang, "quarantine", reason)

    def solver(self, status: str) -> str:
        return solver_status(self.lang, status)

    def resource(self, name: str) -> str:
        label = self.knowledge.label(name) if self.knowledge is not None else name
        return resource_name(self.lang, name, label)


@dataclass
class Viewer:
    """Who is asking: a principal from the session, or nobody (``principal`` None)."""

    ctx: ApiContext
    request: Request
    principal: Principal | None
    lang: Language
    csrf: str
    new_csrf: bool
    ended: bool  # a session cookie came that no longer holds (expired, revoked, forged)
    signer: Signer

    @property
    def demo(self) -> bool:
        return self.principal is None and self.ctx.settings.demo_mode


def _signer(ctx: ApiContext) -> Signer:
    return Signer(web_secret(ctx.pepper.secret), ctx.settings.web_session_hours * 3600)


def get_viewer(request: Request, ctx: Annotated[ApiContext, Depends(get_context)]) -> Viewer:
    signer = _signer(ctx)
    lang = choose(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )
    cookie = request.cookies.get(SESSION_COOKIE)
    session = signer.session(cookie, time.time())
    principal = None
    if session is not None:
        key = ctx.keys.get(session.key_id)
        if key is not None and key.revoked_ms is None:  # a revoked key ends its sessions
            principal = key.principal()
    csrf = request.cookies.get(CSRF_COOKIE)
    fresh = csrf is None or not signer.csrf_ok(csrf, csrf)  # none yet, or not ours
    return Viewer(
        ctx,
        request,
        principal,
        lang,
        signer.new_csrf() if fresh or csrf is None else csrf,
        fresh,
        bool(cookie) and principal is None,
        signer,
    )


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
Days = Annotated[int | None, Query(description="7, 28 or 90")]


def _cookie(response: Response, v: Viewer, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/web",
        httponly=True,
        samesite="strict",
        secure=v.ctx.settings.web_secure_cookie,
    )


def _finish(response: Response, v: Viewer) -> Response:
    if v.new_csrf:
        _cookie(response, v, CSRF_COOKIE, v.csrf, None)
    if v.request.query_params.get("lang") in LANGUAGES:
        _cookie(response, v, LANG_COOKIE, v.lang, 365 * 86400)
    if v.ended:
        response.delete_cookie(SESSION_COOKIE, path="/web")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def fmt_of(v: Viewer) -> Fmt:
    park = v.principal.park if v.principal else None
    offset = pages.offset_of(v.ctx, park)
    zone = formats.zone(pages.timezone_of(v.ctx, park), offset, v.lang)
    return Fmt(v.lang, offset, zone, knowledge_of(v.ctx))


def render(v: Viewer, template: str, status: int = 200, **data: Any) -> Response:
    lang = v.lang
    flash = FLASHES.get(v.request.query_params.get("done", ""))
    html = _ENV.get_template(template).render(
        t=lambda key, **kw: t(lang, key, **kw),
        f=fmt_of(v),
        lang=lang,
        languages=LANGUAGES,
        path=v.request.url.path,
        me=v.principal,
        demo=v.demo,
        csrf=v.csrf,
        csrf_field=CSRF_FIELD,
        flash=t(lang, flash) if flash else None,
        svg=lambda s: Markup(s),  # charts.py escapes every text it draws
        **data,
    )
    return _finish(HTMLResponse(html, status_code=status), v)


def _to_login(v: Viewer) -> Response:
    where = quote(v.request.url.path, safe="/")
    return _finish(RedirectResponse(f"/web/login?next={where}", status_code=303), v)


def _home(p: Principal | None) -> str:
    return "/web/park" if p is None or p.is_operator else "/web/me"


def _refuse(v: Viewer, key: str, status: int = 403) -> Response:
    title = t(v.lang, "error.not_found_title" if status == 404 else "error.title")
    return render(v, "error.html", status=status, message=t(v.lang, key), title_text=title)


Page = Callable[[Viewer, Principal], Response]


def _operator(v: Viewer, page: Page, demo_ok: bool = False) -> Response:
    if v.principal is None:
        if demo_ok and v.demo:
            return page(v, DEMO)
        return _to_login(v)
    if not v.principal.is_operator:
        return _refuse(v, "error.operators_only")
    return page(v, v.principal)


def _tenant(v: Viewer, page: Page) -> Response:
    if v.principal is None:
        return _to_login(v)
    if v.principal.is_operator or v.principal.tenant is None:
        return _refuse(v, "error.tenants_only")
    return page(v, v.principal)


def _posted(v: Viewer, token: str) -> Response | None:
    """Refusal of a POST without a live session or with a bad CSRF token, else None."""
    if not v.signer.csrf_ok(v.request.cookies.get(CSRF_COOKIE), token):
        return _refuse(v, "error.csrf")
    if v.principal is None:
        return _to_login(v)
    return None


def _back(v: Viewer, path: str, done: str) -> Response:
    return _finish(RedirectResponse(f"{path}?done={done}", status_code=303), v)


# -- sign in and out ------------------------------------------------------------------------


@router.get("/")
def home(v: ViewerDep) -> Response:
    if v.principal is None and not v.demo:
        return _to_login(v)
    return _finish(RedirectResponse(_home(v.principal), status_code=303), v)


@router.get("/login")
def login_page(v: ViewerDep, next: str = "") -> Response:
    return render(v, "login.html", next=next, error=t(v.lang, "login.expired") if v.ended else None)


@router.post("/login")
def login(
    v: ViewerDep,
    key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if not v.signer.csrf_ok(v.request.cookies.get(CSRF_COOKIE), csrf):
        return _refuse(v, "error.csrf")
    principal = v.ctx.keys.authenticate(key.strip())
    if principal is None:
        return render(v, "login.html", status=401, next=next, error=t(v.lang, "login.bad_key"))
    # only a path of the pages themselves: never an address elsewhere
    target = next if next.startswith("/web/") and not next.startswith("//") else _home(principal)
    response = RedirectResponse(target, status_code=303)
    hours = v.ctx.settings.web_session_hours
    _cookie(
        response,
        v,
        SESSION_COOKIE,
        v.signer.session_cookie(principal.key_id, time.time()),
        int(hours * 3600),
    )
    v.ended = False
    v.csrf, v.new_csrf = v.signer.new_csrf(), True  # a new token with the new session
    return _finish(response, v)


@router.post("/logout")
def logout(v: ViewerDep, csrf: Annotated[str, Form()] = "") -> Response:
    if not v.signer.csrf_ok(v.request.cookies.get(CSRF_COOKIE), csrf):
        return _refuse(v, "error.csrf")
    response = RedirectResponse("/web/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/web")
    return _finish(response, v)


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC.get(name)
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


# -- operators ------------------------------------------------------------------------------


@router.get("/park")
def overview(v: ViewerDep, days: Days = None) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        data = pages.overview(v.ctx, p, days, anonymous=v.principal is None)
        fmt = fmt_of(v)
        resource_charts = {
            key: charts.bars(
                [
                    (
                        f"{data.names.get(x.tenant, x.tenant)} ({t(v.lang, 'dir.' + x.direction)})",
                        x.total,
                    )
                    for x in rows
                ],
                f"{fmt.resource(key[0])} ({key[1]})",
                fmt.figure,
                t(v.lang, "chart.no_data"),
            )
            for key, rows in data.flows.items()
        }
        return render(v, "overview.html", o=data, charts=resource_charts, periods=pages.PERIODS)

    return _operator(v, page, demo_ok=True)


@router.get("/opportunities")
def opportunities(v: ViewerDep) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        return render(v, "opportunities.html", o=pages.opportunities(v.ctx, p))

    return _operator(v, page)


def _exchanges_page(
    v: Viewer, p: Principal, status: int = 200, error: str | None = None
) -> Response:
    rows = pages.pipeline(v.ctx, p)
    moved, to = v.request.query_params.get("moved"), v.request.query_params.get("to")
    notice = None
    if moved and to in set(Stage) and any(r.entry.id == moved for r in rows):
        notice = t(v.lang, "exchanges.moved", id=moved, stage=stage_name(v.lang, str(to)))
    return render(v, "exchanges.html", status=status, rows=rows, error=error, notice=notice)


@router.get("/exchanges")
def exchanges(v: ViewerDep) -> Response:
    return _operator(v, _exchanges_page)


@router.post("/exchanges/{exchange_id}/move")
def move_exchange(
    exchange_id: str,
    v: ViewerDep,
    to: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refused = _posted(v, csrf)
    if refused is not None:
        return refused

    def page(v: Viewer, p: Principal) -> Response:
        repo = v.ctx.exchanges
        try:
            entry = repo.get(exchange_id)
        except InputError:
            return _refuse(v, "error.not_found", 404)
        if not can_see_park(p, entry.park):
            return _refuse(v, "error.not_found", 404)
        try:
            stage = Stage(to)
            repo.move(exchange_id, stage, p.actor, note.strip())
        except (ValueError, InputError) as e:
            why = str(e) if isinstance(e, InputError) else f"no stage {to!r}"
            return _exchanges_page(v, p, 400, t(v.lang, "exchanges.refused", why=why))
        return _finish(
            RedirectResponse(
                f"/web/exchanges?moved={quote(exchange_id)}&to={stage.value}", status_code=303
            ),
            v,
        )

    return _operator(v, page)


@router.get("/savings")
def savings(v: ViewerDep) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        data = pages.savings(v.ctx, p)
        fmt = fmt_of(v)
        chart = charts.columns(
            [(fmt.month(m), float(vnd)) for m, vnd in data.months],
            t(v.lang, "savings.chart"),
            fmt.money,
            t(v.lang, "chart.no_data"),
        )
        return render(v, "savings.html", s=data, chart=chart)

    return _operator(v, page)


@router.get("/report")
def report(v: ViewerDep) -> Response:
    """The park's report (``parkflow report``'s page) for a month or a year, printable; the
    last complete month unless ``?period=`` says otherwise."""

    def page(v: Viewer, p: Principal) -> Response:
        from service.report.build import build_report
        from service.report.criteria import load_criteria
        from service.report.period import parse_period
        from service.report.render import to_html

        parks = [k for k in v.ctx.registry.parks if p.park in (None, k)]
        park_id = v.request.query_params.get("park") or (parks[0] if parks else "")
        park = v.ctx.registry.parks.get(park_id)
        if park is None or park_id not in parks:
            return _refuse(v, "error.not_found", 404)
        first = date.today().replace(day=1)
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        try:
            period = parse_period(v.request.query_params.get("period") or last_month)
        except InputError:
            return _refuse(v, "error.not_found", 404)
        criteria = load_criteria()
        html = to_html(build_report(v.ctx.exchanges, park, period, criteria), criteria, v.lang)
        response = _finish(HTMLResponse(html), v)
        # a document of its own: its style is inline, it runs no script
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
            " frame-ancestors 'none'; base-uri 'none'"
        )
        return response

    return _operator(v, page)


# -- both: alerts ---------------------------------------------------------------------------


@router.get("/alerts")
def alerts(v: ViewerDep) -> Response:
    if v.principal is None:
        return _to_login(v)
    return render(v, "alerts.html", alerts=pages.visible_alerts(v.ctx, v.principal))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: str,
    v: ViewerDep,
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refused = _posted(v, csrf)
    if refused is not None:
        return refused
    assert v.principal is not None
    found = pages.find_alert(v.ctx, v.principal, alert_id)
    if found is None:
        return _refuse(v, "error.not_found", 404)
    if not reason.strip():  # the API's rule: an acknowledgement says why
        alerts = pages.visible_alerts(v.ctx, v.principal)
        error = t(v.lang, "error.reason_needed")
        return render(v, "alerts.html", status=400, alerts=alerts, error=error)
    try:
        v.ctx.alerts.acknowledge(alert_id, v.principal.actor, reason.strip()[:500])
    except InputError as e:
        return render(v, "error.html", status=400, message=str(e))
    return _back(v, "/web/alerts", "acked")


# -- tenants --------------------------------------------------------------------------------


@router.get("/me")
def my_flows(v: ViewerDep, days: Days = None) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        data = pages.my_flows(v.ctx, p, days, v.lang)
        fmt = fmt_of(v)
        meter_charts = {
            m.meter: charts.line(
                m.series, f"{m.meter} ({m.unit})", fmt.figure, t(v.lang, "chart.no_data")
            )
            for m in data.meters
        }
        return render(v, "my_flows.html", d=data, charts=meter_charts, periods=pages.PERIODS)

    return _tenant(v, page)


@router.get("/me/opportunities")
def my_opportunities(v: ViewerDep) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        return render(v, "my_opportunities.html", rows=pages.my_opportunities(v.ctx, p, v.lang))

    return _tenant(v, page)


@router.post("/me/opportunities/{ref}/consent")
def consent(ref: str, v: ViewerDep, csrf: Annotated[str, Form()] = "") -> Response:
    refused = _posted(v, csrf)
    if refused is not None:
        return refused

    def page(v: Viewer, p: Principal) -> Response:
        assert p.tenant is not None
        o = pages.my_opportunity(v.ctx, p, ref)
        if o is None:
            return _refuse(v, "error.not_found", 404)
        v.ctx.consent_records.give(
            o["park"], o["id"], p.tenant, p.actor, note="given on the tenant pages"
        )
        return _back(v, "/web/me/opportunities", "consented")

    return _tenant(v, page)


@router.get("/me/savings")
def my_savings(v: ViewerDep) -> Response:
    def page(v: Viewer, p: Principal) -> Response:
        rows = pages.my_savings(v.ctx, p)
        fmt = fmt_of(v)
        months: dict[str, float] = {}
        for r in rows:
            months[r.period] = months.get(r.period, 0.0) + r.own_vnd
        chart = charts.columns(
            [(fmt.month(m), vnd) for m, vnd in sorted(months.items())],
            t(v.lang, "my_savings.chart"),
            fmt.money,
            t(v.lang, "chart.no_data"),
        )
        return render(v, "my_savings.html", rows=rows, chart=chart)

    return _tenant(v, page)


# -- anything else --------------------------------------------------------------------------


@router.get("/{rest:path}")
def not_found(rest: str, v: ViewerDep) -> Response:
    """An address under /web that is no page: said in the site's layout and language, not as
    the API's JSON (registered last, so every page above wins)."""
    return _refuse(v, "error.no_page", 404)
