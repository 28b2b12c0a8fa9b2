"""The service as two replicas over one PostgreSQL, four parks leased to them: each park held by
exactly one, both holding some; one SIGKILLed, its parks move to the survivor within the lease
and are detected there; per park no two replicas' runs overlap, no cycle is missed for long,
no alert is opened twice and no notification delivered twice (two dispatchers, a webhook
receiver keeping each webhook-id once)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.state import Database, upgrade
from service.state.tables import alert_history, outbox, park_leases, runs
from tests.service.alerts.build import SECRET
from tests.support.mosquitto import wait_until
from tests.support.parks import NOW, PARKS, fill, registry_yaml
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer
from tests.support.procs import die_with_parent
from tests.support.webhook_receiver import WebhookReceiver

LEASE_S = 3.0
INTERVAL_S = 1.0


def contacts_yaml(url: str) -> str:
    """Every tenant's webhook, each its own path of one receiver."""
    lines = ["allow_networks: [127.0.0.0/8]", "tenants:"]
    for p in PARKS:
        for tenant in ("wwtp", "cool"):
            lines.append(
                f'  - {{park: {p}, tenant: {tenant}, channels: [{{kind: webhook, url: "{url}/{p}-{tenant}",'
                f" secrets: [{SECRET}]}}]}}"
            )
    return "\n".join(lines) + "\n"


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    db = Database(postgres.url(name))
    try:
        upgrade(db)
    finally:
        db.close()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


def holders(db: Database) -> dict[str, str]:
    """park -> its holder, for the leases not expired."""
    c = park_leases.c
    now = int(time.time() * 1000)
    with db.connect() as conn:
        rows = conn.execute(sa.select(c.park, c.holder).where(c.expires_ms > now)).all()
    return {p: h for p, h in rows if h is not None}


def park_runs(db: Database) -> dict[str, list[Any]]:
    c = runs.c
    query = (
        sa.select(c.park, c.replica, c.started_ms, c.finished_ms, c.status)
        .where(c.park.is_not(None))
        .order_by(c.started_ms)
    )
    out: dict[str, list[Any]] = defaultdict(list)
    with db.connect() as conn:
        for r in conn.execute(query):
            out[r.park].append(r)
    return out


def test_two_replicas_share_four_parks_and_the_survivor_takes_them_over(
    pg_url: str, tmp_path: Path
) -> None:
    text = registry_yaml()
    (tmp_path / "registry.yaml").write_text(text)
    fill(tmp_path / "store.sqlite", text)
    with WebhookReceiver(SECRET) as hook:
        (tmp_path / "contacts.yaml").write_text(contacts_yaml(hook.url))
        env = {
            **os.environ,
            "PARKFLOW_SQLITE_PATH": str(tmp_path / "store.sqlite"),
            "PARKFLOW_DATABASE_URL": pg_url,
            "PARKFLOW_REGISTRY": str(tmp_path / "registry.yaml"),
            "PARKFLOW_ALERTS_CONTACTS": str(tmp_path / "contacts.yaml"),
            "PARKFLOW_API_KEY_PEPPER": "p" * 40,
            "PARKFLOW_NOW": NOW.isoformat(),
            "PARKFLOW_DETECT_INTERVAL_S": str(INTERVAL_S),
            "PARKFLOW_ROLLUP_INTERVAL_S": "1",
            "PARKFLOW_LEASE_S": str(LEASE_S),
            "PARKFLOW_DISPATCH_CLAIM_S": str(LEASE_S),
        }
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "parkflow.cli",
                "keys",
                "create",
                "--name",
                "ops",
                "--role",
                "operator",
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert made.returncode == 0, made.stderr
        key = made.stdout.split()[-1]
        procs: dict[str, subprocess.Popen[bytes]] = {}
        ports = {"a": free_port(), "b": free_port()}

        def start(name: str, *argv: str, **extra: str) -> None:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "parkflow.cli", *argv],
                env={**env, **extra},
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"{name}.log").open("wb"),
                preexec_fn=die_with_parent(),
            )

        db = Database(pg_url)
        try:
            for replica in ("a", "b"):
                start(
                    replica,
                    "serve",
                    PARKFLOW_REPLICA_ID=replica,
                    PARKFLOW_HTTP_PORT=str(ports[replica]),
                )
            start("dispatch-a", "dispatch")
            start("dispatch-b", "dispatch")

            # each park held by exactly one replica (one row per park), both holding some
            def shared() -> bool:
                held = holders(db)
                return held.keys() == set(PARKS) and set(held.values()) == {"a", "b"}

            wait_until(shared, timeout=30, interval=0.2)
            wait_until(lambda: park_runs(db).keys() == set(PARKS), timeout=20, interval=0.2)
            victim = holders(db)["p1"]  # the one rolling up and watching the store
            survivor = "b" if victim == "a" else "a"
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            killed_ms = int(time.time() * 1000)
            # within the lease and a cycle the survivor holds every park ...
            started = time.monotonic()
            wait_until(lambda: holders(db) == dict.fromkeys(PARKS, survivor), timeout=15)
            assert time.monotonic() - started <= LEASE_S + 2 * INTERVAL_S + 1.5
            # ... and runs each one's detection since, cycle after cycle
            wait_until(
                lambda: all(
                    sum(
                        r.replica == survivor and r.status == "ok" and r.started_ms > killed_ms
                        for r in rs
                    )
                    >= 3
                    for rs in park_runs(db).values()
                ),
                timeout=15,
                interval=0.2,
            )
            # the survivor's API shows every park's findings, each from its own latest run
            base = f"http://127.0.0.1:{ports[survivor]}"
            auth = {"Authorization": f"Bearer {key}"}
            found = httpx.get(f"{base}/v1/surpluses", headers=auth, timeout=10)
            assert found.status_code == 200, found.text
            assert {s["park"] for s in found.json()["page"]["items"]} == set(PARKS)
            plan = httpx.get(f"{base}/v1/plan", headers=auth, timeout=10).json()
            assert {link["park"] for link in plan["links"]} == set(PARKS)
            assert plan["totals"]["n_links"] == len(plan["links"])

            def delivered() -> bool:
                with db.connect() as conn:
                    query = sa.select(sa.func.count()).where(outbox.c.sent_ms.is_(None))
                    return hook.delivered != {} and conn.execute(query).scalar_one() == 0

            wait_until(delivered, timeout=20, interval=0.2)
            procs[survivor].send_signal(signal.SIGTERM)
            assert procs[survivor].wait(20) == 0
            assert holders(db) == {}  # a clean stop lets its leases go
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()
        by_park = park_runs(db)
        with db.connect() as conn:
            opened = conn.execute(
                sa.select(alert_history.c.alert_id, sa.func.count())
                .where(alert_history.c.event.in_(["opened", "reopened"]))
                .group_by(alert_history.c.alert_id)
            ).all()
        db.close()
    for park, rs in by_park.items():
        done = [r for r in rs if r.status == "ok"]
        # no two replicas' runs of one park overlap in time
        for x, y in itertools.pairwise(done):
            if x.replica != y.replica:
                assert y.started_ms >= x.finished_ms, (park, x, y)
        # no cycle missed for long: at most the lease and two cycles between runs
        gaps = [(y.started_ms - x.started_ms) / 1000 for x, y in itertools.pairwise(done)]
        assert max(gaps) <= LEASE_S + 2 * INTERVAL_S + 2.0, (park, gaps)
    assert opened and all(n == 1 for _, n in opened)  # the data never changed: opened once
    assert hook.duplicates == 0 and hook.bad_signatures == 0
    errors = [
        line
        for name in ("a", "b", "dispatch-a", "dispatch-b")
        for line in (tmp_path / f"{name}.log").read_text().splitlines()
        if '"level": "error"' in line
    ]
    assert errors == []
