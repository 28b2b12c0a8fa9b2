"""The MQTT edge: paho in, frozen InboundMessage values out, acks back."""

from ingest.mqtt.source import InboundMessage, MqttSource

__all__ = ["InboundMessage", "MqttSource"]
