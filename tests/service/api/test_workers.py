"""``parkflow api --workers 2``: the API in worker processes of its own, over the same database
and pepper as serve's, each answering with the keys serve's operator made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from parkflow.registry import SAMPLE_REGISTRY
from service.api.context import pepper_of
from service.auth import KeyRepository
from service.settings import ServiceSettings
from service.state import Database, upgrade
from tests.support.ports import free_port


def test_api_workers_answer_with_the_shared_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    env = {
        **os.environ,
        "PARKFLOW_REGISTRY": str(SAMPLE_REGISTRY),
        "PARKFLOW_DATABASE_URL": url,
        "PARKFLOW_SQLITE_PATH": str(tmp_path / "park.sqlite"),
        "PARKFLOW_API_KEY_PEPPER_FILE": str(tmp_path / "pepper"),
    }
    db = Database(url)
    upgrade(db)
    settings = ServiceSettings(api_key_pepper_file=tmp_path / "pepper")
    key = KeyRepository(db, pepper_of(settings)).create(
        name="a", role="tenant", park="songlam", tenant="thep-an", by="test"
    )
    db.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "parkflow.cli", "api", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "api did not start"
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {key.secret}"}
        with httpx.Client(base_url=base, timeout=10) as client:
            answers = [client.get("/v1/me", headers=auth) for _ in range(20)]
            assert all(r.status_code == 200 and r.json()["tenant"] == "thep-an" for r in answers)
            assert client.get("/v1/me").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert key.secret.encode() not in out  # keys are never logged


def test_api_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PARKFLOW_REGISTRY": str(SAMPLE_REGISTRY),
        "PARKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}",
        "PARKFLOW_API_KEY_PEPPER_FILE": str(tmp_path / "pepper"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "parkflow.cli", "api", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "parkflow db upgrade" in out.stderr
