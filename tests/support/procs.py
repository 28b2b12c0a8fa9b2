"""Child processes that do not outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only;
    elsewhere nothing happens). Note: "parent" is the thread that forked it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when we die, so a
    test session or benchmark that is SIGKILLed leaves no servers behind."""
    return functools.partial(set_parent_death_signal, sig)
