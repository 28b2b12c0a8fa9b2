"""A channel that keeps what it is sent, answering from a script: for unit tests of the code
that decides and records outcomes, where no real receiver is the point."""

from __future__ import annotations

from collections.abc import Iterable

from service.alerts.channels.base import Accepted, Delivery, Notification


class MemoryChannel:
    """Answers each ``send`` with the next scripted delivery (``Accepted`` once they run out);
    ``received`` holds every notification the channel accepted, ``attempts`` every one sent."""

    name = "memory"

    def __init__(self, script: Iterable[Delivery] = ()) -> None:
        self._script = list(script)
        self.attempts: list[Notification] = []
        self.received: list[Notification] = []

    def send(self, n: Notification) -> Delivery:
        self.attempts.append(n)
        answer = self._script.pop(0) if self._script else Accepted()
        if isinstance(answer, Accepted):
            self.received.append(n)
        return answer
