"""The dashboards: what operations staff see, each panel one raw InfluxQL query over the
measurements parkflow writes for charting (docs/schema.md): ``flow_day`` and ``flow_hour``
(the day rollups as plain numbers), ``savings`` (realised savings per exchange and day) and
``quarantine`` (what was refused, by reason).

What the time-series store does not hold is left out rather than faked: open alerts, the
plan's totals and projected savings live in the operational SQL database (the API serves
them), and the ingestors' Prometheus metrics need a Prometheus data source, which is not
provisioned here; a text panel on each dashboard concerned says where to look instead.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, text, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.common import GraphDrawStyle

from dashboards.influxql import InfluxQL

DATASOURCE = dm.DataSourceRef(type_val="influxdb", uid="parkflow-influxdb")

# Park-local days start at local midnight; InfluxQL buckets start at UTC midnight plus the
# offset given in GROUP BY time(1d, <offset>), so each day rollup lands in its own bucket.
UTC_OFFSETS = (("UTC+07:00", "-7h"), ("UTC+08:00", "-8h"), ("UTC+05:30", "-330m"), ("UTC", "0h"))

FLOW_FILTER = (
    '"park" =~ /^$park$/ AND "tenant" =~ /^$tenant$/ AND "resource" =~ /^$resource$/'
    " AND $timeFilter"
)
SAVINGS_FILTER = '"park" =~ /^$park$/ AND $timeFilter'
DAYS = "time(1d, $day_offset)"

Panel = cogbuilder.Builder[dm.Panel]


def _tag_values(key: str, where: str = "") -> str:
    q = f'SHOW TAG VALUES FROM "flow_day" WITH KEY = "{key}"'
    return f"{q} WHERE {where}" if where else q


def variables() -> list[cogbuilder.Builder[dm.VariableModel]]:
    """park (one), tenant and resource (any, all by default), and the park's UTC offset."""
    park = (
        db.QueryVariable("park")
        .label("park")
        .datasource(DATASOURCE)
        .query(_tag_values("park"))
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    chained = [
        db.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(_tag_values(name, '"park" =~ /^$park$/'))
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        for name in ("tenant", "resource")
    ]
    first_text, first_value = UTC_OFFSETS[0]
    offset = (
        db.CustomVariable("day_offset")
        .label("park's UTC offset")
        .values(",".join(f"{text} : {value}" for text, value in UTC_OFFSETS))
        .current(dm.VariableOption(selected=True, text=first_text, value=first_value))
    )
    return [park, *chained, offset]


def _board(uid: str, title: str, panels: list[Panel], description: str) -> db.Dashboard:
    board = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["parkflow"])
        .readonly()
        .timezone("browser")
        .time("now-30d", "now")
        .refresh("5m")
    )
    for variable in variables():
        board = board.with_variable(variable)
    for panel in panels:
        board = board.with_panel(panel)
    return board


def _series(title: str, query: str, alias: str, unit: str = "short") -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query).alias(alias).datasource(DATASOURCE))
        .unit(unit)
        .height(9)
        .span(24)
    )


def _table(title: str, query: str, span: int = 12) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query).table().datasource(DATASOURCE))
        .height(9)
        .span(span)
    )


def _stat(title: str, query: str, unit: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query).datasource(DATASOURCE))
        .unit(unit)
        .height(5)
        .span(6)
    )


def _note(content: str) -> text.Panel:
    return text.Panel().title("Not charted here").content(content).height(5).span(6)


def overview() -> db.Dashboard:
    return _board(
        "parkflow-overview",
        "parkflow: park overview",
        [
            _stat(
                "Realised savings, park (VND)",
                f'SELECT sum("park_vnd") FROM "savings" WHERE {SAVINGS_FILTER}',
                "locale",
            ),
            _stat(
                "Water saved (m3)",
                f'SELECT sum("water_m3") FROM "savings" WHERE {SAVINGS_FILTER}',
                "short",
            ),
            _stat(
                "CO2e avoided (t)",
                f'SELECT sum("co2e_t") FROM "savings" WHERE {SAVINGS_FILTER}',
                "short",
            ),
            _note(
                "Open alerts, the park's plan and its totals are kept in the operational"
                " database: the API (`/v1/alerts`, `/v1/plan`) and the pages (`/web`) show them."
            ),
            _series(
                "Daily flows by resource and direction (canonical units)",
                f'SELECT sum("quantity") FROM "flow_day" WHERE {FLOW_FILTER}'
                f' GROUP BY {DAYS}, "resource", "direction" fill(none)',
                "$tag_resource $tag_direction",
            ).draw_style(GraphDrawStyle.BARS),
            _table(
                "Flows by tenant over the range",
                'SELECT sum("quantity") AS "quantity", mean("coverage") AS "coverage"'
                f' FROM "flow_day" WHERE {FLOW_FILTER} GROUP BY "tenant", "resource", "direction"',
                span=24,
            ),
        ],
        "Flows by resource and tenant, and the realised savings, over the chosen range.",
    )


def flows() -> db.Dashboard:
    hourly = f'SELECT sum("quantity") FROM "flow_hour" WHERE {FLOW_FILTER}'
    by = " GROUP BY time($__interval), {} fill(none)"
    return _board(
        "parkflow-flows",
        "parkflow: flows per resource, tenant and meter",
        [
            _series(
                "By resource and direction",
                hourly + by.format('"resource", "direction"'),
                "$tag_resource $tag_direction",
            ).interval("1h"),
            _series(
                "By tenant",
                hourly + by.format('"tenant", "resource", "direction"'),
                "$tag_tenant $tag_resource $tag_direction",
            ).interval("1h"),
            _series(
                "By meter",
                hourly + by.format('"tenant", "meter", "resource"'),
                "$tag_tenant/$tag_meter ($tag_resource)",
            ).interval("1h"),
        ],
        "Hourly metered quantities (canonical units), summed over each interval.",
    )


def _by_month() -> list[dm.DataTransformerConfig]:
    """Grafana groups the daily rows by calendar month: InfluxQL has no month buckets."""
    fields = ("park_vnd", "supplier_vnd", "receiver_vnd", "water_m3", "co2e_t")
    group: dict[str, object] = {"Time": {"operation": "groupby", "aggregations": []}}
    group.update({f: {"operation": "aggregate", "aggregations": ["sum"]} for f in fields})
    return [
        dm.DataTransformerConfig(
            id_val="formatTime",
            options={"timeField": "Time", "outputFormat": "YYYY-MM", "useTimezone": True},
        ),
        dm.DataTransformerConfig(id_val="groupBy", options={"fields": group}),
    ]


def savings() -> db.Dashboard:
    monthly = _table(
        "Realised savings by month",
        'SELECT sum("park_vnd") AS "park_vnd", sum("supplier_vnd") AS "supplier_vnd",'
        ' sum("receiver_vnd") AS "receiver_vnd", sum("water_m3") AS "water_m3",'
        f' sum("co2e_t") AS "co2e_t" FROM "savings" WHERE {SAVINGS_FILTER}'
        f" GROUP BY {DAYS} fill(none)",
        span=24,
    )
    for transformation in _by_month():
        monthly = monthly.with_transformation(transformation)
    return _board(
        "parkflow-savings",
        "parkflow: realised savings",
        [
            _series(
                "Cumulative realised savings, park (VND)",
                f'SELECT cumulative_sum(sum("park_vnd")) FROM "savings" WHERE {SAVINGS_FILTER}'
                f" GROUP BY {DAYS} fill(none)",
                "park",
                "locale",
            ),
            _series(
                "Cumulative realised savings by exchange (VND)",
                f'SELECT cumulative_sum(sum("park_vnd")) FROM "savings" WHERE {SAVINGS_FILTER}'
                f' GROUP BY {DAYS}, "exchange" fill(none)',
                "$tag_exchange",
                "locale",
            ),
            monthly,
            _table(
                "Days the two sides' meters disagree, by exchange",
                'SELECT sum("disagrees") AS "days", mean("coverage") AS "coverage"'
                f' FROM "savings" WHERE {SAVINGS_FILTER} GROUP BY "exchange"',
            ),
            _note(
                "Projected savings (realised vs projected) are the agreed projection in the"
                " operational database: `/v1/exchanges`, `/v1/savings` and the pages show them."
            ),
        ],
        "Exchanges' realised savings, measured from the meters (IPMVP Option B).",
    )


def quality() -> db.Dashboard:
    return _board(
        "parkflow-quality",
        "parkflow: data quality and ingest health",
        [
            _series(
                "Quarantined records by reason (all parks)",
                'SELECT count("rid") FROM "quarantine" WHERE $timeFilter'
                ' GROUP BY time($__interval), "reason" fill(none)',
                "$tag_reason",
            ),
            _table(
                "Quarantined records over the range, by reason (all parks)",
                'SELECT count("rid") AS "records" FROM "quarantine" WHERE $timeFilter'
                ' GROUP BY "reason"',
            ),
            _table(
                "Coverage by meter (share of hours with data)",
                'SELECT mean("coverage") AS "coverage" FROM "flow_day"'
                f' WHERE {FLOW_FILTER} GROUP BY "tenant", "meter", "resource"',
            ),
            _table(
                "Last hour with data by meter (the time column: stale meters are old)",
                'SELECT last("quantity") AS "quantity" FROM "flow_hour"'
                f' WHERE {FLOW_FILTER} GROUP BY "tenant", "meter", "resource"',
            ),
            _note(
                "Ingest lag, batch sizes and store retries are the ingestors' Prometheus"
                " metrics (`/metrics`); add a Prometheus data source to chart them."
            ),
        ],
        "What was refused and why, how much of each meter's day is measured, which went quiet.",
    )


BOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "overview": overview,
    "flows": flows,
    "savings": savings,
    "quality": quality,
}
