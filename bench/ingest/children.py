"""Process supervision: every process the bench starts is stopped whatever happens.

Forked helpers (publishers, the bare subscriber) report over a pipe: ``("ready", x)``, then
``("done", result)`` or ``("error", text)``; ``recv`` turns an error or silence into an
exception in the parent, which then stops everything.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from tests.support.ingestor_proc import IngestorProcess
from tests.support.procs import set_parent_death_signal


def log(text: str) -> None:
    print(text, flush=True)


def child_setup() -> None:
    """In a forked child: die with the parent, leave Ctrl-C to the parent (it stops everything)."""
    set_parent_death_signal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler came with the fork
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def recv(conn: Connection, what: str, timeout: float) -> Any:
    """The next report of a forked child; its error or a silence of ``timeout`` s raises."""
    if not conn.poll(timeout):
        raise TimeoutError(f"{what}: no answer within {timeout:.0f}s")
    kind, payload = conn.recv()
    if kind == "error":
        raise RuntimeError(f"{what} failed: {payload}")
    return payload


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stop_ingestors(procs: list[IngestorProcess], timeout: float = 20.0) -> None:
    """SIGTERM to all at once, then wait for each; one that does not stop in time is killed."""
    for p in procs:
        p.terminate()
    for p in procs:
        if p.proc is None:
            continue
        try:
            p.stop(timeout)
        except AssertionError:
            log(f"  WARNING: {p.name} did not stop within {timeout:.0f}s of SIGTERM: killed")


@dataclass
class Children:
    """Every process the bench started itself, stopped in reverse order whatever happens."""

    ctx: Any = field(default_factory=lambda: mp.get_context("fork"))
    procs: list[mp.process.BaseProcess] = field(default_factory=list)
    popen: list[subprocess.Popen[bytes]] = field(default_factory=list)  # py-spy
    ingestors: list[IngestorProcess] = field(default_factory=list)

    def fork(
        self, target: Callable[..., None], args: tuple[Any, ...], name: str
    ) -> tuple[mp.process.BaseProcess, Connection]:
        """Start ``target(conn, *args)`` in a forked child; returns it and the parent's end of
        the pipe it reports on."""
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=target, args=(child, *args), daemon=True, name=name)
        proc.start()
        child.close()
        self.procs.append(proc)
        return proc, parent

    def stop_all(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.procs.clear()
        for proc in reversed(self.popen):  # the profilers first: they watch the ingestors
            stop_process(proc)
        self.popen.clear()
        stop_ingestors([p for p in self.ingestors if p.alive])
        self.ingestors.clear()
