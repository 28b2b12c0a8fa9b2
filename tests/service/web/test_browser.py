"""The pages in a real headless Chromium (Debian's, driven by Playwright) against the app on
a real uvicorn server on a free loopback port: sign in as an operator and as a tenant, what
each page shows, acknowledging an alert, moving an exchange, giving consent, a phone's width.
One browser for the module. With ``PARKFLOW_SCREENSHOTS=DIR`` the main pages are saved there
as PNG (docs/screenshots)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from prometheus_client import CollectorRegistry

from service.alerts.consents import ConsentRepository
from service.alerts.lifecycle import Status
from service.api.context import ApiContext
from service.app import HttpServer
from service.exchanges.repository import ExchangeRepository
from tests.service.api.conftest import PARK, A, B
from tests.service.web.conftest import IDEA, Web

CHROMIUM = "/usr/bin/chromium"  # deploy/os-packages.sh installs it
SHOTS = os.environ.get("PARKFLOW_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: bash deploy/os-packages.sh (as root)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


def _serve(ctx: ApiContext) -> Iterator[str]:
    """The pages' base URL on uvicorn, as ``parkflow serve`` runs it (an app of its own over
    the context's parts)."""
    server = HttpServer(ctx, "127.0.0.1", 0)
    host, port = server.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def site(web: Web) -> Iterator[str]:
    yield from _serve(dataclasses.replace(web.ctx, metrics=CollectorRegistry()))


@pytest.fixture
def demo_site(web: Web) -> Iterator[str]:
    settings = web.ctx.settings.model_copy(update={"demo_mode": True})
    yield from _serve(dataclasses.replace(web.ctx, settings=settings, metrics=CollectorRegistry()))


def _key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _sign_in(page: Page, site: str, key: str) -> None:
    page.goto(f"{site}/web/")
    expect(page).to_have_url(f"{site}/web/login?next=/web/")
    page.fill("#key", key)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_an_operator_signs_in_reads_the_park_and_moves_an_exchange(
    browser: Browser, site: str, web: Web
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, site, _key(web.api.operator))
    expect(page).to_have_url(f"{site}/web/park")
    expect(page.locator("h1")).to_have_text("Park overview")
    expect(page.locator("#plan .totals")).to_contain_text("exchanges,")
    expect(page.locator("#flows")).to_contain_text(web.ctx.names(PARK)[B])
    assert page.locator("#flows svg.chart rect.bar").count() > 5
    _shot(page, "operator-overview")

    page.click("text=Opportunities and plan")
    expect(page.locator("#plan-links tbody tr").first).to_be_visible()
    expect(page.locator("#ranked .competes").first).to_contain_text("Competes with")

    page.click("nav >> text=Exchange pipeline")
    form = page.locator(f"#x-{IDEA} form.move")
    # the form offers the next forward stage first: no choosing needed to move on
    expect(form.locator("select[name=to]")).to_have_value("screened")
    form.locator("button").click()
    expect(page.locator(".flash")).to_contain_text(f"Exchange {IDEA} moved to screened")
    expect(page.locator(f"#x-{IDEA} .stage")).to_have_text("screened")
    repo = ExchangeRepository(web.ctx.db)
    assert repo.get(IDEA).pipeline.stage == "screened"
    assert repo.moves(IDEA)[-1].by.startswith("ops (key ")
    _shot(page, "operator-pipeline")

    page.click("nav >> text=Realised savings")
    assert page.locator("figure svg.chart rect.bar").count() >= 1
    expect(page.locator("#savings")).to_contain_text("x-ab")
    _shot(page, "operator-savings")

    page.click("text=Tiếng Việt")
    expect(page.locator("h1")).to_have_text("Tiết kiệm thực tế")
    expect(page.locator("#savings")).to_contain_text("triệu đồng")
    page.click("nav >> text=Khu công nghiệp")
    expect(page.locator(".period")).to_contain_text("19/11/2026")  # the last complete day
    _shot(page, "operator-overview-vi")

    page.click("text=Đăng xuất")
    expect(page).to_have_url(f"{site}/web/login")
    page.goto(f"{site}/web/park")
    expect(page).to_have_url(f"{site}/web/login?next=/web/park")
    page.close()


def test_a_tenant_sees_its_portal_acknowledges_and_consents(
    browser: Browser, site: str, web: Web
) -> None:
    # a phone's screen
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    _sign_in(page, site, _key(web.api.a))
    expect(page).to_have_url(f"{site}/web/me")
    expect(page.locator("#meter-det-water")).to_be_visible()
    assert page.locator("#meter-det-water svg polyline").count() >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    expect(page.locator("body")).not_to_contain_text(web.ctx.names(PARK)[B])
    _shot(page, "tenant-flows-phone")

    page.click("nav >> text=Alerts")
    mine = next(x for x in web.ctx.alerts.alerts() if x.tenant == A and x.status == Status.OPEN)
    card = page.locator(f"#alert-{mine.id}")
    card.locator("button").click()  # no reason: the browser keeps the form, nothing is sent
    assert page.url == f"{site}/web/alerts"
    assert web.ctx.alerts.find(mine.id).status == Status.OPEN
    card.locator("input[name=reason]").fill("crew sent")
    card.locator("button").click()
    expect(page.locator(".flash")).to_have_text("Alert acknowledged.")
    expect(page.locator(f"#alert-{mine.id} .status")).to_have_text("acknowledged")
    assert web.ctx.alerts.find(mine.id).status == Status.ACKNOWLEDGED

    page.click("nav >> text=My opportunities")
    first = page.locator("article.opportunity").first
    ref = first.get_attribute("id")
    assert ref is not None and ref.startswith("ref-")
    expect(page.locator("main")).not_to_contain_text(web.ctx.names(PARK)[B])
    _shot(page, "tenant-opportunities-phone")
    first.locator("form.consent button").click()
    expect(page.locator(".flash")).to_have_text("Your consent is recorded.")
    expect(page.locator(f"[id='{ref}'] .consent")).to_contain_text("You consented")
    given = [c for c in ConsentRepository(web.ctx.db).of() if c.tenant == A]
    assert len(given) == 1 and web.ctx.pepper.reference(given[0].opportunity_id) == ref

    page.click("nav >> text=My savings")
    expect(page.locator("#my-savings")).to_contain_text("x-ab")
    expect(page.locator("#my-savings")).not_to_contain_text("x-bc")
    page.close()


def test_demo_mode_opens_the_overview_without_a_key(browser: Browser, demo_site: str) -> None:
    site = demo_site
    page = browser.new_page()
    page.goto(f"{site}/web/")
    expect(page).to_have_url(f"{site}/web/park")
    expect(page.locator(".banner")).to_contain_text("Demo mode")
    page.goto(f"{site}/web/exchanges")
    expect(page).to_have_url(f"{site}/web/login?next=/web/exchanges")
    page.close()
