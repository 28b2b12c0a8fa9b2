"""The HTTP API (FastAPI, ``parkflow serve``): operators see the whole park, each tenant only
its own; routes only include routers, and every object is checked against the caller."""
