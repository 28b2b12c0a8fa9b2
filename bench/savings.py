"""Benchmark: realised savings (IPMVP Option B) of many operating exchanges, recomputed over a
year, and the incremental update after one more hour of readings.

What is measured, in a fresh process that does only that (``service.exchanges.verify.refresh``,
the function ``parkflow savings --refresh`` and the report call):

- ``first_s``: the year's days computed from the stored day rollups and all written, to the
  operational database (SQLite) and to the time-series store (SQLite) - a park's first
  verification;
- ``seconds``: the same year recomputed once its days are stored: every day computed again
  and compared with what is stored, none rewritten (nothing changed) - the recomputation;
- ``incremental_s``: one more hour arrives on the last day for every exchange's meters (its
  day rollups are rewritten as the rollup worker would): that day refreshed, and each
  exchange's changed day written to both.

``peak_rss_mib`` is the measured process's peak resident memory (interpreter and imports
included).

The park: N exchanges between 200 tenants, each on its own transfer meter (every tenth with a
check meter on the receiver's side); dated prices (displaced, avoided disposal, transfer,
treatment, a price change mid-year, time-of-use bands for every fifth), a yearly emission
factor and a frozen projection; DAYS days of hourly quantities written to the store as its
day rollups (raw readings are not loaded: savings only ever read rollups). Set-up is done in a
separate process and cached under ``bench/.cache/``; each measurement runs on a fresh copy.

    python -m bench.savings            # 1,000 exchanges x 365 days
    python -m bench.savings --quick    # 200 exchanges x 60 days (under a minute)
    python -m bench.savings --exchanges 500 --days 180

The last line printed is one JSON object: ``exchanges``, ``days``, ``exchange_days``,
``seconds``, ``first_s``, ``incremental_s``, ``incremental_changed``, ``peak_rss_mib``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.child import fingerprint as code_digest
from bench.child import run_child

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
TENANTS = 200
START = dt.date(2026, 1, 1)
TIMEZONE = "Asia/Ho_Chi_Minh"


def registry_doc(exchanges: int) -> dict[str, object]:
    """200 tenants; exchange i's transfer meter belongs to its supplier, its check meter (every
    tenth) to its receiver."""
    meters: dict[str, list[dict[str, object]]] = {f"t{t}": [] for t in range(TENANTS)}
    for i in range(exchanges):
        sup, rec = parties(i)
        meters[sup].append(_meter(f"x{i}-line", "out"))
        if i % 10 == 0:
            meters[rec].append(_meter(f"x{i}-check", "in"))
    tenants = [
        {"id": t, "name": f"Tenant {t}", "meters": ms or [_meter(f"{t}-w", "in")]}
        for t, ms in meters.items()
    ]
    park = {"id": "bp", "name": "Bench Park", "timezone": TIMEZONE, "tenants": tenants}
    return {"version": 1, "parks": [park]}


def _meter(mid: str, direction: str) -> dict[str, object]:
    return {
        "id": mid,
        "resource": "water.treated_effluent",
        "direction": direction,
        "unit": "m3",
        "kind": "cumulative",
    }


def parties(i: int) -> tuple[str, str]:
    sup, rec = i % TENANTS, (i * 7 + 1) % TENANTS
    if rec == sup:
        rec = (rec + 1) % TENANTS
    return f"t{sup}", f"t{rec}"


def load(exchanges: int, days: int, where: Path) -> dict[str, float]:
    """Set-up: the registry, the exchanges in the operational database, the day rollups."""
    from decimal import Decimal

    import numpy as np

    from parkflow.model import Direction, MeterKey
    from parkflow.store import SqliteStore
    from parkflow.store.rollup_rows import DayRollup
    from service.exchanges.model import Benefit, Factor, Item, Metering, Method, Price, Side
    from service.exchanges.pipeline import Projection, Stage
    from service.exchanges.repository import ExchangeRepository, Registration
    from service.exchanges.verify import day_ms_of
    from service.rollups.compute import standard_offset_ms
    from service.state import Database, upgrade
    from service.state.db import sqlite_url

    started = time.perf_counter()
    (where / "registry.json").write_text(json.dumps(registry_doc(exchanges)))
    db = Database(sqlite_url(where / "operations.sqlite"))
    upgrade(db)
    repo = ExchangeRepository(db)
    mid_year = START + dt.timedelta(days=days // 2)
    for i in range(exchanges):
        xid = f"x{i}"
        sup, rec = parties(i)
        proj = Projection(240.0, 2_000_000_000, 1_000_000_000, 1_000_000_000, 0.0, 87_600.0)
        repo.create(xid, "bp", "ops", "ops", projection=proj, now_ms=1_000)
        check = f"x{i}-check" if i % 10 == 0 else None
        repo.register(
            xid,
            Registration(
                sup, rec, "water.treated_effluent", "m3", Benefit.WATER, f"x{i}-line",
                f"x{i}-check", Metering(Method.TRANSFER_METER, f"x{i}-line", check_meter=check),
                START,
            ),
        )  # fmt: skip
        prices = [
            Price(Item.AVOIDED_DISPOSAL, START, Decimal(9_000)),
            Price(Item.TRANSFER, START, Decimal(5_000)),
            Price(Item.TREATMENT, START, Decimal(2_500), Side.SUPPLIER),
        ]
        if i % 5 == 0:  # time-of-use bands
            prices += [
                Price(Item.DISPLACED, START, Decimal(21_000), hours=tuple(range(9, 12))),
                Price(Item.DISPLACED, START, Decimal(11_000), hours=(22, 23, 0, 1, 2, 3)),
                Price(Item.DISPLACED, START, Decimal(17_000), hours=(4, 5, 6, 7, 8, *range(12, 22))),
            ]  # fmt: skip
        else:
            prices.append(Price(Item.DISPLACED, START, Decimal(17_000)))
        prices.append(Price(Item.AVOIDED_DISPOSAL, mid_year, Decimal("9500.5")))
        for p in prices:
            repo.add_price(xid, p, "ops")
        repo.add_factor(xid, Factor(START.year, Decimal("0.0004")))
        for k, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED)):
            repo.move(xid, stage, "ops", now_ms=2_000 + k)
        repo.move(xid, Stage.OPERATING, "ops", now_ms=3_000)
    db.close()

    offset = standard_offset_ms(TIMEZONE)
    rng = np.random.default_rng(7)
    store = SqliteStore(where / "park.sqlite")
    rows: list[DayRollup] = []
    for i in range(exchanges):
        sup, rec = parties(i)
        flows = rng.uniform(5.0, 15.0, size=(days, 24)).round(3)
        flows[rng.random((days, 24)) < 0.01] = np.nan  # gaps
        flows[-1, -1] = np.nan  # the last hour has not arrived yet
        series = [(MeterKey("bp", sup, f"x{i}-line"), Direction.OUT, flows)]
        if i % 10 == 0:
            series.append((MeterKey("bp", rec, f"x{i}-check"), Direction.IN, flows * 0.98))
        for key, direction, values in series:
            for d in range(days):
                day_ms = day_ms_of(START + dt.timedelta(days=d), offset)
                rows.append(
                    DayRollup.build(key, "water.treated_effluent", direction, day_ms, values[d])
                )
        if len(rows) >= 50_000:
            store.write_rollups(rows)
            rows = []
    if rows:
        store.write_rollups(rows)
    store.close()
    return {"setup_seconds": round(time.perf_counter() - started, 1)}


def measure(exchanges: int, days: int, where: Path) -> dict[str, float]:
    """The measured passes, alone in this process, on a copy of the set-up's files."""
    from parkflow.model import Direction, MeterKey
    from parkflow.registry import Registry
    from parkflow.registry.schema import RegistryFile
    from parkflow.store import SqliteStore
    from parkflow.store.rollup_rows import DayRollup
    from service.exchanges.repository import ExchangeRepository
    from service.exchanges.verify import day_ms_of, refresh
    from service.rollups.compute import standard_offset_ms
    from service.state import Database
    from service.state.db import sqlite_url

    registry = Registry(RegistryFile.model_validate_json((where / "registry.json").read_text()))
    db = Database(sqlite_url(where / "operations.sqlite"))
    repo = ExchangeRepository(db)
    store = SqliteStore(where / "park.sqlite")
    end = START + dt.timedelta(days=days)

    t = time.perf_counter()
    first = refresh(repo, store, store, registry, START, end, now_ms=1)
    first_s = time.perf_counter() - t

    t = time.perf_counter()
    again = refresh(repo, store, store, registry, START, end, now_ms=2)
    seconds = time.perf_counter() - t
    assert not again.changed, "a recomputation of unchanged rollups changed days"

    # one more hour: the last day's 23:00 arrives for every exchange's meters
    last = end - dt.timedelta(days=1)
    last_ms = day_ms_of(last, standard_offset_ms(TIMEZONE))
    keys = [(MeterKey("bp", parties(i)[0], f"x{i}-line"), Direction.OUT) for i in range(exchanges)]
    old = {r.key: r for r in store.get_rollups([(k, last_ms) for k, _ in keys])}
    store.write_rollups(
        [
            DayRollup.build(k, "water.treated_effluent", d, last_ms, (*old[k].hours[:23], 10.0))
            for k, d in keys
        ]
    )
    t = time.perf_counter()
    inc = refresh(repo, store, store, registry, last, end, now_ms=3)
    incremental_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    db.close()
    return {
        "exchange_days": first.computed,
        "first_written": len(first.changed_columns),
        "seconds": round(seconds, 3),
        "first_s": round(first_s, 3),
        "incremental_s": round(incremental_s, 3),
        "incremental_changed": len(inc.changed_columns),
        "peak_rss_mib": round(peak, 1),
    }


def _child(args: list[str]) -> dict[str, float]:
    return run_child("bench.savings", args)


# what the cached set-up is made by: a change to any of these sets it up afresh
LOADED_BY = (
    "bench/savings.py",
    "parkflow/registry",
    "parkflow/store",
    "service/exchanges",
    "service/state",
)


def fingerprint() -> str:
    return code_digest(LOADED_BY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 exchanges x 60 days")
    parser.add_argument("--exchanges", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="measured runs (best kept)")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--_load", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a._load:
        print(json.dumps(load(int(a._load[0]), int(a._load[1]), Path(a._load[2]))))
        return 0
    if a._measure:
        print(json.dumps(measure(int(a._measure[0]), int(a._measure[1]), Path(a._measure[2]))))
        return 0

    n = a.exchanges or (200 if a.quick else 1000)
    days = a.days or (60 if a.quick else 365)
    where = CACHE / f"savings-{n}-{days}"
    marker = where / "loaded.json"
    made_by = fingerprint()
    stale = not marker.exists() or json.loads(marker.read_text()).get("fingerprint") != made_by
    if a.no_cache or stale:
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        info = _child(["--_load", str(n), str(days), str(where)])
        marker.write_text(json.dumps({**info, "fingerprint": made_by}))
    info = json.loads(marker.read_text())
    print(f"set-up {info}", file=sys.stderr)
    best: dict[str, float] | None = None
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-savings-") as tmp:
            for name in ("registry.json", "operations.sqlite", "park.sqlite"):
                shutil.copy(where / name, Path(tmp) / name)
            got = _child(["--_measure", str(n), str(days), tmp])
        print(f"measured {got}", file=sys.stderr)
        if best is None or got["seconds"] < best["seconds"]:
            best = got
    assert best is not None
    print(json.dumps({"exchanges": n, "days": days, **best}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
