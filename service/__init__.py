"""parkflow service: rollups, surplus detection, matching, alerts and savings, API and pages."""
