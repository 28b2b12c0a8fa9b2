"""A typed InfluxQL target for grafana-foundation-sdk, which ships query builders for other
data sources but none for InfluxDB: the JSON Grafana's InfluxDB data source keeps for a raw
InfluxQL query, as a ``Dataquery`` variant the SDK's panels accept."""

from __future__ import annotations

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

ResultFormat = typing.Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """``query`` is raw InfluxQL (``rawQuery``): the data source's query editor cannot express
    regex tag filters on template variables, ``GROUP BY time(.., offset)`` or ``cumulative_sum``
    of an aggregate, and raw text is what the tests run against a real InfluxDB."""

    def __init__(
        self,
        ref_id: str = "A",
        query: str = "",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builds an ``InfluxQLQuery`` in the SDK's fluent style."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> typing.Self:
        """Rows, not series: for panels that list (a table, a monthly grouping)."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> typing.Self:
        """The series' name, e.g. ``$tag_resource`` (Grafana replaces ``$tag_<name>``)."""
        self._internal.alias = alias
        return self

    def datasource(self, ref: DataSourceRef) -> typing.Self:
        self._internal.datasource = ref
        return self
