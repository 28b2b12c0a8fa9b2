"""Benchmark: a full detection and matching pass over synthetic parks of growing size.

What is measured: one `run_detection` pass (the same function `parkflow serve` schedules):
read the day rollups of the window from the store, build the hourly panel, find surpluses,
match and size them, solve the park's plan, diff against the previous run and save results,
the plan and events. Wall time and
the peak RSS of a fresh process that does only that, for parks of 1k, 5k and 20k meters.

The synthetic park: the sample park (12 tenants, 36 meters with designed 15-minute flows, see
`parkflow simulate`) copied N times on a grid of sites 5 km apart, each copy with its own ids,
scaled per meter and with hourly noise; 90 days of hourly quantities derived from the 15-minute
flows are written to the store as its day rollups. Raw readings are not loaded: detection only
ever reads rollups, and loading 20k meters x 90 days x 96 readings would only measure set-up.
Generating and loading is set-up, done in a separate process (cached between runs for SQLite).

    python -m bench.detect            # 1k, 5k, 20k meters, SQLite and InfluxDB
    python -m bench.detect --quick    # 5k meters only
    python -m bench.detect --stores sqlite --sizes 5000

(from the repository root). Everything but the standard library is imported where it is
used, so that a measured process holds only what the pass needs.

The last line printed is one JSON object: for each store, a list with, per size, `meters`,
`seconds`, `peak_rss_mib`, the counts found, `plan_s` (the plan's share of `seconds`),
`plan_vnd_per_year` and `ranked_vnd_per_year` (the plan's value and the ranked list's sum,
which counts competing alternatives more than once).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.child import fingerprint as code_digest
from bench.child import run_child

if TYPE_CHECKING:
    from parkflow.registry import RegistryFile
    from parkflow.store import InfluxStore, SqliteStore

REPO = Path(__file__).resolve().parents[1]

DAYS = 90
WINDOW_DAYS = 28
COPY_SPACING_M = 5_000.0
NOW = "2026-11-20T12:00:00+07:00"
CACHE = REPO / "bench" / ".cache"


def synthetic_registry(copies: int) -> RegistryFile:
    """The sample park copied ``copies`` times, far enough apart that copies don't match."""
    from parkflow.registry import SAMPLE_REGISTRY, RegistryFile, load_registry
    from service.simulate import default_scenario

    base = default_scenario(load_registry(SAMPLE_REGISTRY).model).registry.model_dump(
        mode="json", exclude_none=True
    )
    park = base["parks"][0]
    tenants, exchanges, capex = [], [], []
    grid = max(1, int(copies**0.5))
    for k in range(copies):
        dx, dy = (k % grid) * COPY_SPACING_M, (k // grid) * COPY_SPACING_M
        for t in park["tenants"]:
            t2 = json.loads(json.dumps(t))
            t2["id"] = f"{t['id']}-{k}"
            if "location" in t2:
                t2["location"]["x_m"] += dx
                t2["location"]["y_m"] += dy
            for m in t2["meters"]:
                m["id"] = f"{m['id']}-{k}"
            for e in t2.get("equipment", []):
                e["meters"] = [f"{m}-{k}" for m in e.get("meters", [])]
            tenants.append(t2)
        for e in park.get("exchanges", []):
            exchanges.append(
                {**e, "from_meter": f"{e['from_meter']}-{k}", "to_meter": f"{e['to_meter']}-{k}"}
            )
        for c in park.get("link_capex", []):
            capex.append(
                {**c, "from_meter": f"{c['from_meter']}-{k}", "to_meter": f"{c['to_meter']}-{k}"}
            )
    park = {**park, "tenants": tenants, "exchanges": exchanges, "link_capex": capex}
    return RegistryFile.model_validate({"version": 1, "parks": [park]})


def _store(kind: str, where: Path, influx_url: str | None) -> SqliteStore | InfluxStore:
    from parkflow.store import InfluxStore, SqliteStore

    if kind == "sqlite":
        return SqliteStore(where / "park.sqlite")
    assert influx_url
    return InfluxStore(influx_url, "bench_detect", create_database=True, timeout=300.0)


def load(meters: int, kind: str, where: Path, influx_url: str | None) -> dict[str, float]:
    """Set-up: registry file + 90 days of day rollups for ``meters`` meters into the store."""
    import numpy as np
    import pandas as pd

    from parkflow.model import MeterKey
    from parkflow.registry import SAMPLE_REGISTRY, load_registry
    from parkflow.store.rollup_rows import DayRollup
    from service.rollups.compute import standard_offset_ms
    from service.simulate import default_scenario
    from service.simulate.flows import expected_hourly

    started = time.perf_counter()
    base = default_scenario(load_registry(SAMPLE_REGISTRY).model)
    copies = max(1, round(meters / sum(len(t.meters) for t in base.park.tenants)))
    registry = synthetic_registry(copies)
    (where / "registry.yaml").write_text(
        json.dumps(registry.model_dump(mode="json", exclude_none=True))
    )
    park = registry.parks[0]
    offset = standard_offset_ms(park.timezone)
    now_ms = int(pd.Timestamp(NOW).value // 1_000_000)
    day0 = (now_ms + offset) // 86_400_000 * 86_400_000 - offset - (DAYS - 1) * 86_400_000
    end = day0 + DAYS * 86_400_000
    hourly = expected_hourly(base.park, base.profiles, day0, end)
    rng = np.random.default_rng(42)
    store = _store(kind, where, influx_url)
    rows: list[DayRollup] = []
    n = 0
    for k in range(copies):
        for t in base.park.tenants:
            for m in t.meters:
                series = hourly.get(m.id)
                if series is None:
                    continue
                scale = rng.uniform(0.8, 1.2)
                noisy = series * scale * rng.lognormal(0.0, 0.1, series.shape)
                days = noisy.reshape(DAYS, 24)
                key = MeterKey(park.id, f"{t.id}-{k}", f"{m.id}-{k}")
                for d in range(DAYS):
                    rows.append(
                        DayRollup.build(
                            key, m.resource, m.direction, day0 + d * 86_400_000, days[d]
                        )
                    )
                n += 1
        if len(rows) >= 50_000:
            store.write_rollups(rows)
            rows = []
    if rows:
        store.write_rollups(rows)
    store.close()
    return {"meters": n, "copies": copies, "setup_seconds": round(time.perf_counter() - started, 1)}


def measure(kind: str, where: Path, influx_url: str | None) -> dict[str, float]:
    """The measured pass, alone in this process."""
    import pandas as pd

    from parkflow.registry import load_registry
    from service.knowledge import load_knowledge
    from service.results import ResultsDb
    from service.runs import run_detection
    from service.state import Database, upgrade
    from service.state.db import sqlite_url

    registry = load_registry(where / "registry.yaml")
    knowledge = load_knowledge()
    store = _store(kind, where, influx_url)
    state_dir = Path(tempfile.mkdtemp(prefix="bench-state-"))
    database = Database(sqlite_url(state_dir / "operations.sqlite"))
    upgrade(database)
    state = ResultsDb(database)
    started = time.perf_counter()
    result = run_detection(
        store, registry, knowledge, state, now=pd.Timestamp(NOW), window_days=WINDOW_DAYS
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    database.close()
    shutil.rmtree(state_dir, ignore_errors=True)
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(peak, 1),
        "surpluses": len(result.surpluses),
        "opportunities": len(result.opportunities),
        "plan_s": round(result.plan.seconds, 3),
        "plan_links": len(result.plan.links),
        "plan_vnd_per_year": round(result.plan.park_vnd_per_year),
        "ranked_vnd_per_year": round(sum(o.value.park_vnd_per_year for o in result.opportunities)),
    }


def _child(args: list[str]) -> dict[str, float]:
    return run_child("bench.detect", args)


# what the cached store is made by: a change to any of these loads it afresh
LOADED_BY = (
    "bench/detect.py",
    "parkflow/registry",
    "parkflow/store",
    "parkflow/units.py",
    "service/rollups",
    "service/simulate",
)


def fingerprint() -> str:
    return code_digest(LOADED_BY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 5k size only")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--stores", nargs="*", default=["sqlite", "influx"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="measured passes per size (best kept)"
    )
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--_load", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--_influx", default=None, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a._load:
        print(json.dumps(load(int(a._load[0]), a._load[1], Path(a._load[2]), a._influx)))
        return 0
    if a._measure:
        print(json.dumps(measure(a._measure[0], Path(a._measure[1]), a._influx)))
        return 0

    sizes = a.sizes or ([5000] if a.quick else [1000, 5000, 20000])
    results: dict[str, list[dict[str, float]]] = {}
    for kind in a.stores:
        results[kind] = []
        for size in sizes:
            where = CACHE / f"{kind}-{size}"
            influx = None
            if kind == "influx":  # a fresh server each time: its data is not cached
                from tests.support.influx import InfluxServer

                influx = InfluxServer()
                influx.start()
            try:
                marker = where / "loaded.json"
                made_by = fingerprint()
                stale = (
                    not marker.exists()
                    or json.loads(marker.read_text()).get("fingerprint") != made_by
                )
                if a.no_cache or stale or influx is not None:
                    for old in where.glob("park.sqlite*"):  # the file, its -wal and -shm
                        old.unlink()
                    where.mkdir(parents=True, exist_ok=True)
                    extra = ["--_influx", influx.url] if influx else []
                    info = _child(["--_load", str(size), kind, str(where), *extra])
                    marker.write_text(json.dumps({**info, "fingerprint": made_by}))
                info = json.loads(marker.read_text())
                info.pop("fingerprint", None)
                print(f"{kind} {size}: set-up {info}", file=sys.stderr)
                best: dict[str, float] | None = None
                for _ in range(a.repeat):
                    extra = ["--_influx", influx.url] if influx else []
                    got = _child(["--_measure", kind, str(where), *extra])
                    print(f"{kind} {size}: {got}", file=sys.stderr)
                    if best is None or got["seconds"] < best["seconds"]:
                        best = got
                assert best is not None
                results[kind].append({"meters": int(info["meters"]), **best})
            finally:
                if influx is not None:
                    influx.close()
    for kind, rows in results.items():
        if len(rows) > 1:
            a0, a1 = rows[0], rows[-1]
            growth = (a1["seconds"] / a0["seconds"]) / (a1["meters"] / a0["meters"])
            print(f"{kind}: time grows {growth:.2f}x as fast as meters", file=sys.stderr)
    print(json.dumps({"window_days": WINDOW_DAYS, "days_loaded": DAYS, **results}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
