"""The README's first command: the demo runs the whole product on embedded defaults and serves
it; ``--once`` prints the one-shot report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port


def test_demo_ingests_detects_and_explains(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "parkflow.cli", "demo", "--once"),
            *("--days", "10", "--dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "13 tenants' gateways published 10 days" in text
    assert "quarantined" in text and "out_of_range" in text  # the planted spikes
    assert "exchange opportunities" in text
    assert " 1 " in text.split("detection:", 1)[1]  # a ranked table follows
    assert "about" in text and "VND/yr for the park" in text  # the plain-language explanation
    assert (tmp_path / "parkflow.sqlite").exists()
    assert (tmp_path / "parkflow-operations.sqlite").exists()  # results, alerts


def _start(workdir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """The demo as `make demo` runs it, until its banner says where it serves."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "parkflow.cli", "demo", "--days", "8"),
            *("--dir", str(workdir), "--port", str(port), "--live-interval", "2"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops" in line:
            return proc, lines
    proc.kill()
    raise AssertionError("the demo did not come up:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _get(base: str, path: str, key: str) -> Any:
    """The first detection runs as the service starts: wait for its results."""
    deadline = time.monotonic() + 120
    while True:
        r = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, (path, r.text)
            return r.json()
        time.sleep(1)


def _check_pages(base: str, keys: dict[str, str]) -> None:
    """The overview opens without a key (demo mode), with the plan; the tenant's key signs
    in to its own portal, which shows its meters."""
    overview = httpx.get(f"{base}/web/park", timeout=30)
    assert overview.status_code == 200 and "Demo mode" in overview.text
    assert "exchanges," in overview.text and "<svg" in overview.text  # the plan, the flows
    with httpx.Client(base_url=base, timeout=30) as browser:
        browser.get("/web/login")
        token = browser.cookies["pf_csrf"]
        r = browser.post("/web/login", data={"key": keys["tenant"], "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/web/me"
        portal = browser.get("/web/me")
        assert portal.status_code == 200 and "My meters and flows" in portal.text
        assert 'class="meter"' in portal.text
        assert browser.get("/web/exchanges").status_code == 403  # an operator's page


def test_demo_serves_the_plan_alerts_and_savings_and_resumes(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, lines = _start(tmp_path, port)
    try:
        text = "".join(lines)
        assert "backfilling 8 days" in text and f"{base}/web" in text
        keys = json.loads((tmp_path / "demo-keys.json").read_text())
        assert keys["operator"] in text and keys["tenant"] in text
        assert (tmp_path / "demo-keys.json").stat().st_mode & 0o077 == 0
        plan = _get(base, "/v1/plan", keys["operator"])
        assert plan["totals"]["n_links"] > 0 and plan["totals"]["park_vnd_per_year"] > 0
        _check_pages(base, keys)
        exchanges = _get(base, "/v1/exchanges", keys["operator"])["items"]
        assert [(x["id"], x["stage"]) for x in exchanges] == [
            ("demo-effluent-cooling", "operating")
        ]
        savings = _get(base, "/v1/savings", keys["operator"])["items"]
        total = next(r for r in savings if r["exchange"] == "park" and r["period"] == "total")
        assert total["park_vnd"] > 0 and total["water_m3"] > 0
        alerts = _get(base, "/v1/alerts?limit=1000", keys["operator"])["items"]
        assert any(a["kind"] == "opportunity" for a in alerts)
        mine = _get(base, "/v1/alerts?limit=1000", keys["tenant"])["items"]
        assert mine and all(a["tenant"] == keys["tenant_id"] for a in mine)
        before = _get(base, "/v1/meters?limit=1000", keys["operator"])["total"]
    finally:
        assert _stop(proc) == 0
    # again: the same data directory, keys and exchange; live publishing carries on
    proc, lines = _start(tmp_path, port)
    try:
        assert "resuming" in "".join(lines) and "backfilling" not in "".join(lines)
        assert _get(base, "/v1/meters?limit=1000", keys["operator"])["total"] == before
        assert len(_get(base, "/v1/exchanges", keys["operator"])["items"]) == 1
    finally:
        assert _stop(proc) == 0


def test_a_demo_stopped_while_registering_its_exchange_resumes_to_operating(
    tmp_path: Path,
) -> None:
    """Each step of the demo exchange's registration is its own transaction: a demo stopped
    between two of them finds it part-way next time and moves it on, not left half-way."""
    import datetime as dt
    from decimal import Decimal

    from parkflow.demo_live import EXCHANGE_ID, _register_exchange
    from parkflow.registry import SAMPLE_REGISTRY, load_registry
    from service.exchanges.model import Benefit, Metering, Method
    from service.exchanges.pipeline import Projection, Stage
    from service.exchanges.repository import ExchangeRepository, Registration
    from service.knowledge import load_knowledge
    from service.settings import ServiceSettings
    from service.state import Database, upgrade
    from service.state.db import sqlite_url

    url = sqlite_url(tmp_path / "ops.sqlite")
    settings = ServiceSettings(
        registry=SAMPLE_REGISTRY, database_url=url, sqlite_path=tmp_path / "store.sqlite"
    )
    registry = load_registry(SAMPLE_REGISTRY)
    db = Database(url)
    upgrade(db)
    repo = ExchangeRepository(db)
    park = next(iter(registry.parks))
    projection = Projection(300.0, 1_000_000, 500_000, 500_000, water_m3_per_year=109_500.0)
    repo.create(
        EXCHANGE_ID, park, "park environment office", "demo", projection=projection, now_ms=1_000
    )
    repo.register(
        EXCHANGE_ID,
        Registration(
            "wwtp",
            "thep-an",
            "water.treated_effluent",
            "m3",
            Benefit.WATER,
            "wwtp-effluent",
            "thep-water",
            Metering(Method.SUPPLIER_SHARE, "wwtp-effluent", share=Decimal("0.2")),
            dt.date(2026, 11, 1),
        ),
    )
    repo.move(EXCHANGE_ID, Stage.SCREENED, "demo", now_ms=2_000)  # ... and the demo stopped
    try:
        _register_exchange(settings, registry, load_knowledge(), 1_000)
        moves = [m.to_stage for m in repo.moves(EXCHANGE_ID)]
        assert moves[-3:] == [Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING]
        assert repo.get(EXCHANGE_ID).pipeline.stage is Stage.OPERATING
        # registered before an earlier release priced it: the prices it lacked are added
        prices = {p.item.value: p.vnd_per_unit for p in repo.exchange(EXCHANGE_ID).prices}
        assert set(prices) == {"displaced", "transfer"} and prices["displaced"] > 0
        _register_exchange(settings, registry, load_knowledge(), 1_000)  # once more: nothing
        assert [m.to_stage for m in repo.moves(EXCHANGE_ID)] == moves
    finally:
        db.close()
