"""What the benchmarks share: a measured step in a fresh process of its own (its last stdout
line one JSON object), and the digest of the code a cached set-up was made by, so a cache
made by older code is never measured as if it were this code's."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_child(module: str, args: Sequence[str]) -> dict[str, Any]:
    """``python -m module args`` from the repository root; its last line, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fingerprint(paths: Sequence[str]) -> str:
    """A digest of these files and folders' Python sources (paths from the repository root)."""
    digest = hashlib.sha256()
    for name in paths:
        path = REPO / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(f.relative_to(REPO)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]
