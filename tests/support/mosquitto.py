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

from tests.support.ports import free_port, require_binary, wait_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO / "deploy" / "mosquitto"
DEPLOY_CONF = DEPLOY_DIR / "parkflow.conf"
DEPLOY_MAIN = DEPLOY_DIR / "compose-mosquitto.conf"
# Lines of the shipped files that name a port or a path: the only ones a test may change.
SITE_KEYS = {
    "listener",
    "password_file",
    "acl_file",
    "persistence_location",
    "log_dest",
    "include_dir",
}
_AUTH_KEYS = {"password_file", "acl_file", "allow_anonymous", "use_username_as_clientid"}


class MosquittoServer:
    """``deploy=True`` runs exactly the shipped files (deploy/mosquitto/), changing only the
    lines in ``SITE_KEYS``; ``replaced`` lists what was changed. Otherwise the shipped
    parkflow.conf without authentication (anonymous clients, client ids as given), for tests
    of other parts."""

    def __init__(
        self,
        workdir: Path | None = None,
        passwords: dict[str, str] | None = None,
        acl: str | None = None,
        autosave_interval: int = 5,
        *,
        deploy: bool = False,
        password_file: Path | None = None,
    ) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.replaced: list[tuple[str, str]] = []
        self.passwords = dict(passwords or {})
        pwfile, aclfile = self.dir / "passwd", self.dir / "acl"
        if self.passwords:
            pwfile.write_text("")
            for user, pw in self.passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, pw], check=True)
        elif password_file is not None:  # one an operator's command wrote
            pwfile.write_text("")
        if acl is not None:
            aclfile.write_text(acl)
        site = {
            "listener": f"listener {self.port} 127.0.0.1",
            "password_file": f"password_file {pwfile}",
            "acl_file": f"acl_file {aclfile}",
            "persistence_location": f"persistence_location {self.dir}/",
            "log_dest": f"log_dest file {self.dir}/mosquitto.log",
            "include_dir": f"include_dir {self.dir}/conf.d",
        }
        self.conf = self.dir / "mosquitto.conf"
        if deploy:
            if not ((self.passwords or password_file) and acl is not None):
                raise ValueError("the shipped configuration needs passwords and an ACL")
            (self.dir / "conf.d").mkdir(exist_ok=True)
            (self.dir / "conf.d" / "parkflow.conf").write_text(self._site(DEPLOY_CONF, site))
            self.conf.write_text(self._site(DEPLOY_MAIN, site))
        else:
            lines = []
            for line in DEPLOY_CONF.read_text().splitlines():
                key = line.split(" ", 1)[0]
                if key in _AUTH_KEYS or key in {"autosave_interval", "listener"}:
                    continue
                lines.append(line)
            lines += [
                site["listener"],
                site["persistence_location"],
                f"autosave_interval {autosave_interval}",
                site["log_dest"],
            ]
            if self.passwords or password_file is not None:
                lines += ["allow_anonymous false", site["password_file"]]
            else:
                lines += ["allow_anonymous true"]
            if acl is not None:
                lines.append(site["acl_file"])
            self.conf.write_text("\n".join(lines) + "\n")
        os.chmod(self.dir, 0o777)
        if password_file is not None:
            self.install_password_file(password_file)

    def _site(self, path: Path, site: dict[str, str]) -> str:
        out = []
        for line in path.read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key in site:
                self.replaced.append((line, site[key]))
                line = site[key]
            out.append(line)
        return "\n".join(out) + "\n"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self) -> MosquittoServer:
        assert self.proc is None
        require_binary(MOSQUITTO, "mosquitto", "mosquitto")
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

    def install_password_file(self, source: Path) -> None:
        """The broker's copy of an operator's password file, owned by the user Mosquitto drops
        to (as an operator's would be), so a reload can read it."""
        import pwd

        target = self.dir / "passwd"
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        try:
            user = pwd.getpwnam("mosquitto")
            os.chown(target, user.pw_uid, user.pw_gid)
        except (KeyError, PermissionError):
            pass

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password file and ACL, as ``systemctl reload`` does."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

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
