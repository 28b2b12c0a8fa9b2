"""Benchmark: the tenant portal's API under load, from another process, against `parkflow serve`
over InfluxDB with a 5k-meter park.

Set-up (not measured): a real InfluxDB on a free loopback port; the synthetic park of
bench/detect.py (the sample park copied to about 5,000 meters, 90 days of day rollups) and,
for the tenants whose keys make the load, 30 days of raw 15-minute readings of every meter (the
`/readings` route's; the portal's flows read the rollups); a
detection run and its alerts in an SQLite operational database; for each of those tenants an
operating exchange with 30 verified days of savings, and a tenant API key. Then `parkflow
serve` starts (its own first detection done before the load begins).

Measured: a load process of `--clients` clients, each with its own keep-alive connection and
tenant key, requesting for `--seconds` the portal's mix in turn: my flows (one meter's 30 local
days, `/days`, as the portal charts them), my alerts, my opportunities, my savings. Each request's latency is
recorded; `rps` is completed requests per second of wall time. Non-200 answers are counted as
errors, never as latencies.

The clients (`--client`): `asyncio` (the default) is one event loop writing each request by
hand and reading each answer by its Content-Length, so the load process takes little of the
cores it shares with the server (real clients are on other machines); `httpx` is a thread per
client with an httpx client, as before, for comparison: on two cores it takes CPU the server
lacks.

    python -m bench.api            # 5k meters, 20 s of load
    python -m bench.api --quick    # 1k meters, 8 s of load (under a minute)
    python -m bench.api --server "api --workers 2"   # `parkflow api`'s workers instead
    python -m bench.api --client httpx               # the thread-per-client httpx load
    python -m bench.api --client both                # both loads, one after the other

The last line printed is one JSON object: `p50_ms`, `p99_ms`, `rps`, `requests`, `errors`,
per-endpoint p50/p99, and the set-up's sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KINDS = ("flows", "alerts", "opportunities", "savings")


def setup(meters: int, where: Path, influx_url: str, tenants: int) -> dict[str, Any]:
    """Everything the server reads, written before it starts."""
    import pandas as pd

    from bench.detect import NOW, load
    from parkflow.model import Reading, WriteBatch
    from parkflow.registry import load_registry
    from parkflow.store import InfluxStore
    from parkflow.timeunits import DAY_MS, HOUR_MS
    from service.alerts.evaluate import evaluate_alerts
    from service.alerts.repository import AlertRepository
    from service.auth import KeyRepository, load_pepper
    from service.exchanges.model import Benefit, Metering, Method
    from service.exchanges.pipeline import Projection, Stage
    from service.exchanges.repository import ExchangeRepository, Registration
    from service.exchanges.savings import DaySavings
    from service.knowledge import load_knowledge
    from service.results import ResultsDb
    from service.runs import run_detection
    from service.state import Database, upgrade
    from service.state.db import sqlite_url

    info: dict[str, Any] = dict(load(meters, "influx", where, influx_url))
    registry = load_registry(where / "registry.yaml")
    park = next(iter(registry.parks.values()))
    store = InfluxStore(influx_url, "bench_detect", create_database=True, timeout=300.0)
    now = int(pd.Timestamp(NOW).value // 1_000_000)
    step = HOUR_MS // 4
    chosen = [t for t in park.tenants if len(t.meters) >= 2][:tenants]
    readings = 0
    for t in chosen:  # 30 days of raw readings: what "my flows" reads
        batch: list[Reading] = []
        for m in t.meters:
            value = 0.0
            for i in range(30 * 96):
                ts = now - 30 * DAY_MS + i * step
                value = value + 1.0 if m.kind == "cumulative" else 1.0
                batch.append(Reading(park.id, t.id, m.id, m.resource, m.direction, ts, value))
        store.write(WriteBatch(tuple(batch), (), ()))
        readings += len(batch)
    database = Database(sqlite_url(where / "operations.sqlite"))
    upgrade(database)
    results = ResultsDb(database)
    run = run_detection(store, registry, load_knowledge(), results, now=pd.Timestamp(NOW))
    alerts = AlertRepository(database)
    evaluate_alerts(alerts, store, registry, run, now)
    exchanges = ExchangeRepository(database)
    pepper = load_pepper(None, where / "pepper")
    keys = KeyRepository(database, pepper)
    secrets: list[dict[str, str]] = []
    day0 = pd.Timestamp(NOW).date() - pd.Timedelta(days=30)
    for n, t in enumerate(chosen):
        other = chosen[(n + 1) % len(chosen)]
        xid = f"bench-x-{n}"
        exchanges.create(xid, park.id, "ops", "bench", projection=Projection(10.0, 3, 1, 2))
        for stage in (Stage.SCREENED, Stage.UNDER_STUDY):
            exchanges.move(xid, stage, "bench")
        exchanges.register(
            xid,
            Registration(
                t.id,
                other.id,
                t.meters[0].resource,
                t.meters[0].canonical_unit,
                Benefit.WATER,
                t.meters[0].id,
                other.meters[0].id,
                Metering(Method.TRANSFER_METER, t.meters[0].id),
                day0,
            ),
        )
        exchanges.move(xid, Stage.AGREED, "bench")
        exchanges.move(xid, Stage.OPERATING, "bench")
        exchanges.write_savings(
            [
                DaySavings(
                    xid,
                    park.id,
                    day0 + pd.Timedelta(days=d),
                    24,
                    1.0,
                    10.0,
                    1_000,
                    2_000,
                    3_000,
                    10.0,
                    0.0,
                    0.0,
                    None,
                    None,
                    None,
                    False,
                    0,
                )
                for d in range(30)
            ]
        )
        made = keys.create(name=f"bench {t.id}", role="tenant", park=park.id, tenant=t.id, by="b")
        secrets.append(
            {"key": made.secret, "park": park.id, "tenant": t.id, "meter": t.meters[0].id}
        )
    database.close()
    store.close()
    (where / "keys.json").write_text(json.dumps(secrets))
    info.update(
        {
            "raw_readings": readings,
            "opportunities": len(run.opportunities),
            "alerts": len(alerts.alerts()),
            "tenants_loading": len(secrets),
        }
    )
    return info


FLOWS_QUERY = {"since": "2026-10-21", "until": "2026-11-20"}


def paths_of(k: dict[str, str]) -> dict[str, str]:
    """A tenant's four portal requests (path and query)."""
    return {
        "flows": f"/v1/meters/{k['park']}/{k['tenant']}/{k['meter']}/days"
        f"?since={FLOWS_QUERY['since']}&until={FLOWS_QUERY['until']}",
        "alerts": "/v1/alerts",
        "opportunities": "/v1/opportunities",
        "savings": "/v1/savings",
    }


def load_gen(
    base: str, keys_file: Path, clients: int, seconds: float, client: str = "asyncio"
) -> dict[str, Any]:
    """The load, in a process of its own: each client one connection and one tenant."""
    keys = json.loads(keys_file.read_text())
    run = _load_asyncio if client == "asyncio" else _load_httpx
    started = time.monotonic()
    latencies, errors = run(base, keys, clients, seconds)
    return _summary(latencies, errors, clients, time.monotonic() - started, client)


def _load_asyncio(
    base: str, keys: list[dict[str, str]], clients: int, seconds: float
) -> tuple[dict[str, list[float]], int]:
    """One event loop; each client writes its request and reads the answer's head and its
    Content-Length bytes (the API always sends one), so a request costs the load process tens
    of microseconds, not an HTTP library's milliseconds."""
    import asyncio
    from urllib.parse import urlsplit

    where = urlsplit(base)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    errors = [0]
    stop_at = time.monotonic() + seconds

    async def client(i: int) -> None:
        k = keys[i % len(keys)]
        requests = {
            kind: (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {k['key']}\r\nAccept: application/json\r\n\r\n"
            ).encode()
            for kind, path in paths_of(k).items()
        }
        reader, writer = await asyncio.open_connection(host, port)
        n = i
        try:
            while time.monotonic() < stop_at:
                kind = KINDS[n % len(KINDS)]
                n += 1
                started = time.perf_counter()
                writer.write(requests[kind])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                took = time.perf_counter() - started
                if status == 200:
                    latencies[kind].append(took)
                else:
                    errors[0] += 1
        finally:
            writer.close()

    async def main() -> None:
        await asyncio.gather(*(client(i) for i in range(clients)))

    asyncio.run(main())
    return latencies, errors[0]


def _load_httpx(
    base: str, keys: list[dict[str, str]], clients: int, seconds: float
) -> tuple[dict[str, list[float]], int]:
    """A thread per client, each with an httpx client (the load of earlier releases)."""
    import httpx

    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        k = keys[i % len(keys)]
        paths = {kind: path.split("?")[0] for kind, path in paths_of(k).items()}
        mine: dict[str, list[float]] = {kind: [] for kind in KINDS}
        bad = 0
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {k['key']}"}, timeout=30
        ) as client:
            n = i
            while time.monotonic() < stop_at:
                kind = KINDS[n % len(KINDS)]
                n += 1
                started = time.perf_counter()
                r = client.get(paths[kind], params=FLOWS_QUERY if kind == "flows" else None)
                took = time.perf_counter() - started
                if r.status_code == 200:
                    mine[kind].append(took)
                else:
                    bad += 1
        with lock:
            for kind in KINDS:
                latencies[kind] += mine[kind]
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def _summary(
    latencies: dict[str, list[float]], errors: int, clients: int, wall: float, client: str
) -> dict[str, Any]:
    every = sorted(x for xs in latencies.values() for x in xs)

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else float("nan")

    return {
        "p50_ms": pct(every, 0.5),
        "p99_ms": pct(every, 0.99),
        "rps": round(len(every) / wall, 1),
        "requests": len(every),
        "errors": errors,
        "clients": clients,
        "client": client,
        "seconds": round(wall, 1),
        "mean_ms": round(1000 * statistics.fmean(every), 1) if every else None,
        "by_endpoint": {
            kind: {"p50_ms": pct(xs, 0.5), "p99_ms": pct(xs, 0.99), "n": len(xs)}
            for kind, xs in latencies.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k meters, 8 s of load")
    parser.add_argument("--meters", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=20, help="tenants making the load")
    parser.add_argument(
        "--server", default="serve", help="the server's parkflow command (default: serve)"
    )
    parser.add_argument(
        "--client",
        choices=("asyncio", "httpx", "both"),
        default="asyncio",
        help="the load process's clients (default: asyncio, the leanest; both: httpx, then asyncio)",
    )
    parser.add_argument("--_load", nargs=5, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a._load:
        base, keys_file, clients, seconds, client = a._load
        result = load_gen(base, Path(keys_file), int(clients), float(seconds), client)
        print(json.dumps(result))
        return 0
    meters = a.meters or (1000 if a.quick else 5000)
    seconds = a.seconds or (8.0 if a.quick else 20.0)

    import httpx

    from tests.support.influx import InfluxServer
    from tests.support.ports import free_port

    where = Path(tempfile.mkdtemp(prefix="bench-api-"))
    influx = InfluxServer()
    influx.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        info = setup(meters, where, influx.url, a.tenants)
        print(f"set-up: {info}", file=sys.stderr)
        port = free_port()
        env = {
            **os.environ,
            "PARKFLOW_REGISTRY": str(where / "registry.yaml"),
            "PARKFLOW_INFLUX_URL": influx.url,
            "PARKFLOW_INFLUX_DATABASE": "bench_detect",
            "PARKFLOW_DATABASE_URL": f"sqlite:///{where / 'operations.sqlite'}",
            "PARKFLOW_API_KEY_PEPPER_FILE": str(where / "pepper"),
            "PARKFLOW_HTTP_PORT": str(port),
            "PARKFLOW_DETECT_INTERVAL_S": "86400",
            "PARKFLOW_ROLLUP_INTERVAL_S": "86400",
            "PARKFLOW_NOW": "2026-11-20T12:00:00+07:00",
        }
        log = (where / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "parkflow.cli", *shlex.split(a.server)],
            env=env,
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        keys = json.loads((where / "keys.json").read_text())
        headers = {"Authorization": f"Bearer {keys[0]['key']}"}
        deadline = time.monotonic() + 300
        while True:  # the service's own first detection (run 2) done before the load
            try:
                r = httpx.get(f"{base}/v1/opportunities?limit=1", headers=headers, timeout=30)
                # serve's own first detection is run 2; `api` runs none
                wanted = 2 if a.server == "serve" else 1
                if r.status_code == 200 and r.json()["run"]["id"] >= wanted:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"serve did not come up: {(where / 'serve.log').read_text()}")
            time.sleep(0.5)
        time.sleep(2)  # its alert evaluation after the run
        loads = {}
        for client in ("httpx", "asyncio") if a.client == "both" else (a.client,):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.api",
                    "--_load",
                    base,
                    str(where / "keys.json"),
                    str(a.clients),
                    str(seconds),
                    client,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            loads[client] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{client} load: {loads[client]}", file=sys.stderr)
        # the leanest load's figures first; with --client both the other's beside them
        result = loads.get("asyncio") or loads["httpx"]
        if len(loads) > 1:
            result = {**result, "httpx": loads["httpx"]}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        influx.close()
    print(json.dumps({**result, "meters": info["meters"], "setup": info}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
