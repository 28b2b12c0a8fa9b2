"""The shipped InfluxDB configuration (deploy/influxdb/parkflow.conf), run by a real influxd with
only its paths and ports changed: nothing answers without credentials, a user's do."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

from tests.support.influx import INFLUXD
from tests.support.ports import free_port, require_binary

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "influxdb" / "parkflow.conf"


def test_the_shipped_settings() -> None:
    conf = tomllib.loads(SHIPPED.read_text())
    assert conf["http"]["auth-enabled"] is True
    assert conf["http"]["bind-address"].startswith("127.0.0.1:")
    assert conf["bind-address"].startswith("127.0.0.1:")
    assert conf["http"]["pprof-enabled"] is False
    assert conf["reporting-disabled"] is True


def test_influxd_with_the_shipped_file_refuses_anonymous_queries() -> None:
    require_binary(INFLUXD, "influxd", "influxdb")
    root = Path(tempfile.mkdtemp(prefix="parkflow-influx-conf-"))
    http, rpc = free_port(), free_port()
    text = SHIPPED.read_text()
    text = text.replace("/var/lib/influxdb", str(root))
    text = re.sub(
        r'^bind-address = "127.0.0.1:8088"', f'bind-address = "127.0.0.1:{rpc}"', text, flags=re.M
    )
    text = text.replace('bind-address = "127.0.0.1:8086"', f'bind-address = "127.0.0.1:{http}"')
    assert text.count(str(root)) == 3 and str(http) in text and str(rpc) in text
    (root / "influxdb.conf").write_text(text)
    proc = subprocess.Popen(
        [INFLUXD, "-config", str(root / "influxdb.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 204:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "influxd did not start with the shipped file"
            time.sleep(0.1)
        admin = "CREATE USER admin WITH PASSWORD 'a-long-admin-pw' WITH ALL PRIVILEGES"
        assert httpx.post(f"{base}/query", data={"q": admin}).status_code == 200  # first user
        anonymous = httpx.get(f"{base}/query", params={"q": "SHOW DATABASES"})
        assert anonymous.status_code == 401
        wrong = httpx.get(
            f"{base}/query", params={"q": "SHOW DATABASES", "u": "admin", "p": "wrong"}
        )
        assert wrong.status_code == 401
        ok = httpx.get(
            f"{base}/query", params={"q": "SHOW DATABASES", "u": "admin", "p": "a-long-admin-pw"}
        )
        assert ok.status_code == 200
        assert httpx.get(f"{base}/debug/pprof/", timeout=5).status_code == 404  # pprof off
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
