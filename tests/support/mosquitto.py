"""A real Mosquitto broker per test (or per session), on a free loopback port, in a temp dir.

It uses the same data-safety settings as deploy/mosquitto/parkflow.conf (persistence on, no
queue limits) so the tests exercise what operators run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port, wait_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONF = REPO / "deploy" / "mosquitto" / "parkflow.conf"


class MosquittoServer:
    def __init__(
        self,
        workdir: Path | None = None,
        passwords: dict[str, str] | None = None,
        acl: str | None = None,
        autosave_interval: int = 5,
    ) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        lines = []
        for line in DEPLOY_CONF.read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key in {"password_file", "acl_file", "allow_anonymous", "autosave_interval"}:
                continue
            lines.append(line)
        lines += [
            f"listener {self.port} 127.0.0.1",
            f"persistence_location {self.dir}/",
            f"autosave_interval {autosave_interval}",
            f"log_dest file {self.dir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if passwords:
            pwfile = self.dir / "passwd"
            pwfile.write_text("")
            for user, pw in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, pw], check=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines += ["allow_anonymous true"]
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            lines.append(f"acl_file {self.dir}/acl")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        os.chmod(self.dir, 0o777)

    @property
    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self) -> MosquittoServer:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),  # noqa: SIM115
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            self.kill()
            raise RuntimeError(
                f"mosquitto did not start: {(self.dir / 'stderr.log').read_text()}"
            ) from None
        return self

    def stop(self) -> None:
        """A clean shutdown: Mosquitto saves its persistence database."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[MosquittoServer]:
    server = MosquittoServer().start()
    try:
        yield server
    finally:
        server.close()


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` (a callable) until it is true; fail the test with a timeout otherwise."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
