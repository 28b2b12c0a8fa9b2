"""The printable page to PDF through headless Chromium's own print (Debian's ``chromium``
package): the same engine that renders the HTML lays out the pages, so what the operator
previews is what the authority gets. Chromium is met here only."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, chromium: str, timeout_s: float = 120.0) -> str | None:
    """Writes ``pdf``; returns None when it did, else why not (Chromium's last words)."""
    with tempfile.TemporaryDirectory(prefix="parkflow-chromium-") as profile:
        try:
            done = subprocess.run(
                [
                    chromium,
                    *_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--print-to-pdf={pdf}",
                    html.resolve().as_uri(),
                ],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{chromium} did not run: {exc}"
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return f"{chromium} exited {done.returncode}: {' | '.join(tail)}"
    return None
