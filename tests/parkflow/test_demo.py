"""The README's first command: the demo runs the whole pipeline on embedded defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_ingests_detects_and_explains(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "parkflow.cli", "demo", "--days", "10", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "13 tenants' gateways published 10 days" in text
    assert "quarantined" in text and "out_of_range" in text  # the planted spikes
    assert "exchange opportunities" in text
    assert " 1 " in text.split("detection:", 1)[1]  # a ranked table follows
    assert "about" in text and "VND/yr for the park" in text  # the plain-language explanation
    assert (tmp_path / "parkflow.sqlite").exists()
    assert (tmp_path / "parkflow-operations.sqlite").exists()  # results, alerts
