"""Alerts: tenants hear of their surpluses and opportunities, operators of bad data; each alert
and its notification are committed together (the outbox) and delivered over MQTT, signed
webhooks and e-mail by a dispatcher that marks them sent only once the channel accepted."""
