"""Every panel of the committed dashboards, its query substituted as Grafana substitutes it,
run against a real InfluxDB filled by the simulated park (readings validated and written as
the ingestor does, rolled up by the rollup worker, two exchanges' savings verified from the
rollups): each answers the figures the store's own reads give, and names only measurements,
fields and tags that exist."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from dashboards import build
from parkflow.model import Rejection
from parkflow.registry import Registry
from parkflow.store import InfluxStore
from parkflow.store.rollup_rows import HOUR_COLUMNS
from parkflow.store.savings_rows import SavingsPoint
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.exchanges.model import Benefit, Exchange, Factor, Item, Metering, Method, Price
from service.exchanges.verify import compute, point
from service.rollups.compute import standard_offset_ms
from tests.support.grafana import Selection
from tests.support.influx import InfluxServer
from tests.support.simulated import fill_with_simulated_park

END = int(pd.Timestamp("2026-11-20T05:00:00Z").value // 1_000_000)
DAYS = 8
PARK = "songlam"
TENANTS = ("det-phuoc", "wwtp")  # chosen in the tenant variable: two of them, as a regex
Series = dict[str, Any]
Key = tuple[str, ...]


@dataclass
class Park:
    store: InfluxStore
    registry: Registry
    selection: Selection
    rows: pd.DataFrame  # the day rollups in the range, of the chosen park, tenants, resources
    savings: list[SavingsPoint]
    rejections: list[Rejection]


def _exchanges() -> list[Exchange]:
    start = date(2026, 11, 13)
    prices = (Price(Item.DISPLACED, start, Decimal(17_000)),)
    common: dict[str, Any] = {
        "park": PARK,
        "supplier": "wwtp",
        "receiver": "det-phuoc",
        "resource": "water.treated_effluent",
        "unit": "m3",
        "benefit": Benefit.WATER,
        "start": start,
        "prices": prices,
        "factors": (Factor(2026, Decimal("0.0004")),),
    }
    return [
        Exchange(
            id="x-share",
            metering=Metering(Method.SUPPLIER_SHARE, "wwtp-effluent", share=Decimal("0.25")),
            **common,
        ),
        Exchange(
            id="x-metered",
            metering=Metering(Method.TRANSFER_METER, "wwtp-effluent", check_meter="det-water"),
            **common,
        ),
    ]


@pytest.fixture(scope="module")
def park(influx_server: InfluxServer) -> Iterator[Park]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, database, create_database=True, timeout=30.0)
    try:
        registry = fill_with_simulated_park(store, END, DAYS)
        offset = standard_offset_ms(registry.parks[PARK].timezone)
        days = compute(store, registry, _exchanges(), date(2026, 11, 10), date(2026, 11, 21))
        store.write_savings([point(d, offset) for d in days])
        from_ms = END - END % DAY_MS - offset - 5 * DAY_MS + DAY_MS  # a local midnight
        to_ms = END + HOUR_MS  # after the last quarantine stamp, as "now" would be
        resources = sorted(set(store.day_rollups(PARK, 0, END + DAY_MS)["resource"]))
        selection = Selection(
            from_ms,
            to_ms,
            "1h",
            {
                "park": PARK,
                "tenant": list(TENANTS),
                "resource": resources,  # "All": every option
                "day_offset": f"-{offset // HOUR_MS}h",
            },
            frozenset({"tenant", "resource"}),
        )
        rows = store.day_rollups(PARK, from_ms, to_ms + 1)
        rows = rows[rows["tenant"].isin(TENANTS)].reset_index(drop=True)
        savings = store.savings_points(PARK, from_ms, to_ms + 1)
        rejections = store.quarantined(since_ms=from_ms, until_ms=to_ms + 1, limit=1_000_000)
        yield Park(store, registry, selection, rows, savings, rejections)
    finally:
        store.close()
        influx_server.query(f'DROP DATABASE "{database}"')


def panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(build.OUT.glob("*.json")):
        board = json.loads(path.read_text())
        out += [(board["uid"], p) for p in board["panels"] if p.get("targets")]
    return out


def run(park: Park, panel: dict[str, Any]) -> list[Series]:
    (target,) = panel["targets"]
    return park.store._http.select(park.selection.interpolate(target["query"]))


# -- what the store's own reads say each panel shows -------------------------------------------


def _hours(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per meter-hour with data: the plain form of the packed rollups."""
    long = rows.melt(
        id_vars=["tenant", "meter", "resource", "direction", "day"],
        value_vars=list(HOUR_COLUMNS),
        var_name="h",
        value_name="quantity",
    ).dropna(subset=["quantity"])
    long["time"] = long["day"] + long["h"].str[1:].astype(int) * HOUR_MS
    return long


def _by_series(got: list[Series], tags: Key) -> dict[Key, dict[int, float]]:
    return {
        tuple(s["tags"][t] for t in tags): {int(t): float(v) for t, v in s["values"]} for s in got
    }


def _grouped(
    frame: pd.DataFrame, tags: Key, value: str, bucket: int, offset: int = 0
) -> dict[Key, dict[int, float]]:
    """Sums per InfluxQL ``GROUP BY time(bucket)`` bucket; ``offset``: the buckets start that
    long before UTC midnight (``time(1d, -7h)`` for a park at UTC+07:00)."""
    out: dict[Key, dict[int, float]] = defaultdict(dict)
    frame = frame.assign(bucket=frame["time"] - (frame["time"] + offset) % bucket)
    sums: dict[Any, float] = frame.groupby([*tags, "bucket"])[value].sum().to_dict()
    for (*tag_values, t), total in sums.items():
        out[tuple(tag_values)][int(t)] = float(total)
    return dict(out)


def _approx(got: dict[Key, dict[int, float]], want: dict[Key, dict[int, float]]) -> None:
    assert want, "the expectation is empty: the test data do not exercise this panel"
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].keys() == want[k].keys(), k
        for t in want[k]:
            assert got[k][t] == pytest.approx(want[k][t], rel=1e-9, abs=1e-9), (k, t)


def _table(got: list[Series], tags: Key) -> dict[Key, dict[str, float]]:
    out = {}
    for s in got:
        (row,) = s["values"]
        out[tuple(s["tags"][t] for t in tags)] = dict(zip(s["columns"], row, strict=True))
    return out


def _days(park: Park) -> pd.DataFrame:
    return park.rows.rename(columns={"day": "time", "total": "quantity"})


def daily_flows(park: Park, got: list[Series]) -> None:
    offset = standard_offset_ms(park.registry.parks[PARK].timezone)
    want = _grouped(_days(park), ("resource", "direction"), "quantity", DAY_MS, offset)
    # each day's bucket starts at the park's local midnight: the day rollup's own time
    assert all(set(days) <= set(park.rows["day"]) for days in want.values())
    _approx(_by_series(got, ("resource", "direction")), want)


def flows_by_tenant_table(park: Park, got: list[Series]) -> None:
    tags = ("tenant", "resource", "direction")
    table = _table(got, tags)
    sums = park.rows.groupby(list(tags))["total"].sum()
    means = park.rows.groupby(list(tags))["coverage"].mean()
    assert table.keys() == set(sums.index)
    for k, row in table.items():
        assert row["quantity"] == pytest.approx(sums[k], rel=1e-9)
        assert row["coverage"] == pytest.approx(means[k], rel=1e-12)


def _total(field: str) -> Callable[[Park, list[Series]], None]:
    def check(park: Park, got: list[Series]) -> None:
        ((_, value),) = got[0]["values"]
        want = sum(getattr(p, field) for p in park.savings)
        assert want > 0 and value == pytest.approx(want, rel=1e-9)

    return check


def _hourly(tags: Key) -> Callable[[Park, list[Series]], None]:
    def check(park: Park, got: list[Series]) -> None:
        _approx(_by_series(got, tags), _grouped(_hours(park.rows), tags, "quantity", HOUR_MS))

    return check


def _savings_frame(park: Park) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(p) for p in park.savings])
    return frame.assign(time=frame["day_ms"], disagrees=frame["disagrees"].astype(int))


def cumulative_park(park: Park, got: list[Series]) -> None:
    daily: dict[Any, int] = (
        _savings_frame(park).groupby("time")["park_vnd"].sum().cumsum().to_dict()
    )
    (series,) = got
    assert {int(t): v for t, v in series["values"]} == {int(t): int(v) for t, v in daily.items()}


def cumulative_by_exchange(park: Park, got: list[Series]) -> None:
    frame = _savings_frame(park)
    want: dict[Key, dict[int, float]] = {}
    for x in set(frame["exchange"]):
        mine = frame[frame["exchange"] == x].sort_values("time")
        running = mine["park_vnd"].cumsum()
        want[(str(x),)] = dict(zip(mine["time"].astype(int), running.astype(float), strict=True))
    assert len(want) == 2
    _approx(_by_series(got, ("exchange",)), want)


def savings_daily_rows(park: Park, got: list[Series]) -> None:
    frame = _savings_frame(park).groupby("time").sum(numeric_only=True)
    (series,) = got
    cols = series["columns"]
    assert cols == ["time", "park_vnd", "supplier_vnd", "receiver_vnd", "water_m3", "co2e_t"]
    assert [int(r[0]) for r in series["values"]] == [int(t) for t in frame.index]
    for row in series["values"]:
        for name, value in zip(cols[1:], row[1:], strict=True):
            assert value == pytest.approx(frame.loc[int(row[0]), name], rel=1e-9), name
    # Grafana's monthly grouping of these rows, for the months they span
    months = {
        pd.Timestamp(int(r[0]) + 7 * HOUR_MS, unit="ms").strftime("%Y-%m") for r in series["values"]
    }
    assert months == {"2026-11"}


def disagreements(park: Park, got: list[Series]) -> None:
    table = _table(got, ("exchange",))
    frame = _savings_frame(park)
    assert table.keys() == {("x-share",), ("x-metered",)}
    for (x,), row in table.items():
        mine = frame[frame["exchange"] == x]
        assert row["days"] == int(mine["disagrees"].sum())
        assert row["coverage"] == pytest.approx(mine["coverage"].mean(), rel=1e-12)


def _quarantine_frame(park: Park) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(r.reason, r.received_ms) for r in park.rejections], columns=["reason", "time"]
    )
    assert len(frame) > 0
    return frame.assign(records=1)


def quarantine_series(park: Park, got: list[Series]) -> None:
    _approx(
        _by_series(got, ("reason",)),
        _grouped(_quarantine_frame(park), ("reason",), "records", HOUR_MS),
    )


def quarantine_table(park: Park, got: list[Series]) -> None:
    counts = _quarantine_frame(park).groupby("reason")["records"].sum()
    assert {
        k: int(v["records"]) for (k,), v in _table(got, ("reason",)).items()
    } == counts.to_dict()
    assert len(counts) >= 3  # the simulator's planted faults: several reasons


def coverage_by_meter(park: Park, got: list[Series]) -> None:
    tags = ("tenant", "meter", "resource")
    means = park.rows.groupby(list(tags))["coverage"].mean()
    table = _table(got, tags)
    assert table.keys() == set(means.index)
    for k, row in table.items():
        assert row["coverage"] == pytest.approx(means[k], rel=1e-12)


def last_hour_by_meter(park: Park, got: list[Series]) -> None:
    tags = ("tenant", "meter", "resource")
    hours = _hours(park.rows).sort_values("time")
    last = hours.groupby(list(tags)).tail(1).set_index(list(tags))
    table = _table(got, tags)
    assert table.keys() == set(last.index)
    for k, row in table.items():
        assert (int(row["time"]), row["quantity"]) == (
            int(last.loc[k, "time"]),  # type: ignore[arg-type]
            last.loc[k, "quantity"],
        )


EXPECTED: dict[tuple[str, str], Callable[[Park, list[Series]], None]] = {
    ("parkflow-overview", "Realised savings, park (VND)"): _total("park_vnd"),
    ("parkflow-overview", "Water saved (m3)"): _total("water_m3"),
    ("parkflow-overview", "CO2e avoided (t)"): _total("co2e_t"),
    ("parkflow-overview", "Daily flows by resource and direction (canonical units)"): daily_flows,
    ("parkflow-overview", "Flows by tenant over the range"): flows_by_tenant_table,
    ("parkflow-flows", "By resource and direction"): _hourly(("resource", "direction")),
    ("parkflow-flows", "By tenant"): _hourly(("tenant", "resource", "direction")),
    ("parkflow-flows", "By meter"): _hourly(("tenant", "meter", "resource")),
    ("parkflow-savings", "Cumulative realised savings, park (VND)"): cumulative_park,
    ("parkflow-savings", "Cumulative realised savings by exchange (VND)"): cumulative_by_exchange,
    ("parkflow-savings", "Realised savings by month"): savings_daily_rows,
    ("parkflow-savings", "Days the two sides' meters disagree, by exchange"): disagreements,
    ("parkflow-quality", "Quarantined records by reason (all parks)"): quarantine_series,
    ("parkflow-quality", "Quarantined records over the range, by reason (all parks)"): (
        quarantine_table
    ),
    ("parkflow-quality", "Coverage by meter (share of hours with data)"): coverage_by_meter,
    (
        "parkflow-quality",
        "Last hour with data by meter (the time column: stale meters are old)",
    ): last_hour_by_meter,
}


def test_every_panel_has_an_expectation() -> None:
    keys = [(uid, p["title"]) for uid, p in panels()]
    assert len(set(keys)) == len(keys) and sorted(keys) == sorted(EXPECTED)


@pytest.mark.parametrize(
    ("uid", "panel"), panels(), ids=lambda v: v if isinstance(v, str) else v["title"]
)
def test_each_panel_answers_the_stores_figures(park: Park, uid: str, panel: dict[str, Any]) -> None:
    got = run(park, panel)
    assert got, f"{panel['title']}: no series"
    EXPECTED[(uid, panel["title"])](park, got)


def test_every_measurement_field_and_tag_a_panel_names_exists(park: Park) -> None:
    http = park.store._http
    measurements = {
        s["values"][i][0] for s in http.select("SHOW MEASUREMENTS") for i in range(len(s["values"]))
    }
    named: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for _, panel in panels():
        query = panel["targets"][0]["query"]
        (measurement,) = re.findall(r'FROM "(\w+)"', query)
        fields, tags = named[measurement]
        fields.update(re.findall(r'\w+\("(\w+)"\)', query))
        tags.update(re.findall(r'"(\w+)" =~', query))
        group_by = query.partition("GROUP BY")[2]
        tags.update(re.findall(r'"(\w+)"', group_by))
    assert named.keys() == {"flow_day", "flow_hour", "savings", "quarantine"}
    for measurement, (fields, tags) in named.items():
        assert measurement in measurements
        have_fields = {
            v[0] for s in http.select(f'SHOW FIELD KEYS FROM "{measurement}"') for v in s["values"]
        }
        have_tags = {
            v[0] for s in http.select(f'SHOW TAG KEYS FROM "{measurement}"') for v in s["values"]
        }
        assert fields and fields <= have_fields, measurement
        assert tags <= have_tags, measurement


def test_the_variables_offer_the_parks_tenants_and_resources(park: Park) -> None:
    (board, *_) = [json.loads(p.read_text()) for p in sorted(build.OUT.glob("*.json"))]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables.keys() == {"park", "tenant", "resource", "day_offset"}

    def options(name: str) -> set[str]:
        q = park.selection.interpolate(variables[name]["query"])
        return {v[1] for s in park.store._http.select(q) for v in s["values"]}

    every = park.store.day_rollups(None, 0, END + DAY_MS)
    assert options("park") == {PARK}
    assert options("tenant") == set(every["tenant"]) and set(TENANTS) <= options("tenant")
    assert options("resource") == set(every["resource"]) == set(park.selection.values["resource"])
    offsets = dict(o.split(" : ") for o in variables["day_offset"]["query"].split(","))
    assert offsets["UTC+07:00"] == park.selection.values["day_offset"]
    assert standard_offset_ms(park.registry.parks[PARK].timezone) == 7 * HOUR_MS
