"""A real PostgreSQL for tests, from Debian's packages, plus the fixtures that give each test a
database on both backends the service supports.

One server per test session: ``initdb`` into a temp dir, ``postgres`` on a free loopback port
with its unix socket in the same dir, a fresh database per test. PostgreSQL refuses to run as
root, so as root the server runs as ``nobody`` with the temp dir given to it. Missing binaries
fail the test with how to install them, never skip it (``make test`` installs them as root).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from service.state import Database, upgrade
from tests.support.ports import free_port, require_binary
from tests.support.procs import die_with_parent

UNPRIVILEGED = "nobody"


def pg_bin_dir() -> Path:
    """The newest Debian PostgreSQL's binaries (``PARKFLOW_PG_BIN`` overrides)."""
    if "PARKFLOW_PG_BIN" in os.environ:
        return Path(os.environ["PARKFLOW_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    return Path(found[-1]) if found else Path("/usr/lib/postgresql/15/bin")


_LIVE: set[PostgresServer] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.close()


class PostgresServer:
    def __init__(self) -> None:
        self.bin = pg_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="parkflow-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = UNPRIVILEGED
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.log_path = self.root / "postgres.log"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            args, user=self._user, capture_output=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 60.0) -> PostgresServer:
        initdb = require_binary(str(self.bin / "initdb"), "PostgreSQL initdb", "postgresql")
        postgres = require_binary(str(self.bin / "postgres"), "PostgreSQL", "postgresql")
        if not self.data.exists():
            self._run(
                initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            )
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    postgres,
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=50",
                ],
                user=self._user,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),  # after the switch of user
            )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._proc.returncode}:\n{self.log}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.close()
        raise TimeoutError(f"postgres did not accept connections within {timeout}s")

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Shut the server down, keeping its data: ``start`` brings the same database back."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            self._proc.wait(20)
            self._proc = None

    def close(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        _LIVE.discard(self)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'operations.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def db_url(blank_db_url: str) -> str:
    """A database migrated to this code's revision, on each backend in turn."""
    db = Database(blank_db_url)
    try:
        upgrade(db)
    finally:
        db.close()
    return blank_db_url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.close()
