"""The InfluxDB store (1.x, or 2.x/3.x through their v1 API)."""

from parkflow.store.influx.influxql import quote_ident, quote_literal
from parkflow.store.influx.store import InfluxStore

__all__ = ["InfluxStore", "quote_ident", "quote_literal"]
