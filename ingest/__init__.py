"""parkflow ingest: meter readings from MQTT, validated and normalised, into a store.

Data flow, one module or folder per stage::

    mqtt/ (paho edge) -> parse/ (payload -> raw readings) -> validate.py (registry, units,
    limits -> Reading | Rejection) -> pipeline.py (batch, write, ack) -> store/ (SQLite | InfluxDB)
"""
