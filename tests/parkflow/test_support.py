"""The test support itself: a missing server fails loudly with what to install."""

from __future__ import annotations

import pytest

from tests.support.influx import InfluxServer


def test_a_missing_server_binary_says_what_to_install() -> None:
    server = InfluxServer(binary="/nonexistent/influxd")
    try:
        with pytest.raises(RuntimeError, match="install the Debian package 'influxdb'"):
            server.start()
    finally:
        server.close()
